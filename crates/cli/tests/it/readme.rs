//! The README's generated tables (the rules from `sailbulk-spec`, the finding codes from
//! `sailbulk-parse`) must not go stale. `SAILBULK_BLESS=1` rewrites them in place.

use std::path::Path;

/// Checks the README section between `<!-- NAME:begin -->` and `<!-- NAME:end -->`.
fn check_section(name: &str, expected: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md is readable");
    let begin = format!("<!-- {name}:begin -->\n");
    let end_marker = format!("<!-- {name}:end -->");
    let start = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("README has {begin}"))
        + begin.len();
    let end = readme[start..]
        .find(&end_marker)
        .unwrap_or_else(|| panic!("README has {end_marker}"))
        + start;
    if readme[start..end] == *expected {
        return;
    }
    if std::env::var_os("SAILBULK_BLESS").is_some() {
        let updated = format!("{}{}{}", &readme[..start], expected, &readme[end..]);
        std::fs::write(&path, updated).expect("README.md is writable");
    } else {
        panic!(
            "README.md's {name} table is stale; run `SAILBULK_BLESS=1 cargo test -p sailbulk --test it readme` \
             to regenerate it. Expected:\n{expected}"
        );
    }
}

#[test]
fn readme_rules_table_is_generated_from_spec() {
    check_section("rules", &sailbulk_spec::rules_table_markdown());
}

#[test]
fn readme_codes_table_is_generated_from_the_codes() {
    check_section("codes", &sailbulk_parse::codes_table_markdown());
}
