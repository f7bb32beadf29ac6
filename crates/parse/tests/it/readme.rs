//! The README's table of finding codes is generated from `Code`: it must not go stale.

const BEGIN: &str = "<!-- codes:begin -->\n";
const END: &str = "<!-- codes:end -->";

#[test]
fn readme_codes_table_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md is readable");
    let start = readme.find(BEGIN).expect("README has a codes:begin marker") + BEGIN.len();
    let end = readme[start..]
        .find(END)
        .expect("README has a codes:end marker")
        + start;
    let expected = sailbulk_parse::codes_table_markdown();
    if readme[start..end] != expected {
        if std::env::var_os("SAILBULK_BLESS").is_some() {
            let updated = format!("{}{}{}", &readme[..start], expected, &readme[end..]);
            std::fs::write(&path, updated).expect("README.md is writable");
        } else {
            panic!(
                "README.md's codes table is stale; run `SAILBULK_BLESS=1 cargo test -p sailbulk-parse` \
                 to regenerate it. Expected:\n{expected}"
            );
        }
    }
}
