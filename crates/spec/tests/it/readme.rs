//! The README's rules table is generated from this crate: it must not go stale.

use std::path::PathBuf;

const BEGIN: &str = "<!-- rules:begin -->\n";
const END: &str = "<!-- rules:end -->";

fn readme_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../README.md")
}

/// Fails when the README's table differs from `rules_table_markdown()`. Run with
/// `SAILBULK_BLESS=1` to rewrite the table in place.
#[test]
fn readme_rules_table_is_current() {
    let path = readme_path();
    let readme = std::fs::read_to_string(&path).expect("README.md is readable");
    let start = readme.find(BEGIN).expect("README has a rules:begin marker") + BEGIN.len();
    let end = readme[start..]
        .find(END)
        .expect("README has a rules:end marker")
        + start;
    let expected = sailbulk_spec::rules_table_markdown();
    if readme[start..end] != expected {
        if std::env::var_os("SAILBULK_BLESS").is_some() {
            let updated = format!("{}{}{}", &readme[..start], expected, &readme[end..]);
            std::fs::write(&path, updated).expect("README.md is writable");
        } else {
            panic!(
                "README.md's rules table is stale; run `SAILBULK_BLESS=1 cargo test -p sailbulk-spec` \
                 to regenerate it. Expected:\n{expected}"
            );
        }
    }
}
