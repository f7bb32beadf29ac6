//! The table of documented rules, rendered for the README from the constants themselves.

use crate::*;

/// One documented rule: what it governs, the value (rendered from the constants), and where it is
/// documented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// What the rule governs, e.g. "update file size".
    pub subject: &'static str,
    /// The rule, rendered from the constants in this crate.
    pub value: String,
    /// The documentation the rule comes from.
    pub source: &'static str,
}

/// A value set as messages and the README show it: `` `a`, `b`, `c` ``.
///
/// ```
/// assert_eq!(sailbulk_spec::quoted(&["merge", "error"]), "`merge`, `error`");
/// ```
pub fn quoted(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Every documented rule sailbulk checks, in the order the README shows them.
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            subject: "update file size",
            value: format!("at most {} bytes", thousands(UPDATE_FILE_MAX_BYTES)),
            source: "job update page: \"The maximum upload file size is 1 GB\" (10^9, the stricter reading)",
        },
        Rule {
            subject: "import file size",
            value: format!("at most {} bytes", thousands(IMPORT_FILE_MAX_BYTES)),
            source: "job page, import: \"Max upload file size for file parameter is 10 MB\"",
        },
        Rule {
            subject: "file format",
            value: "UTF-8 text, one JSON object per line, or one email per line".into(),
            source: "job update page: \"General JSON File Requirements\"",
        },
        Rule {
            subject: "identity",
            value: "`email`, or `id` with optional `key`".into(),
            source: "job page (email element); job update page example file (id, keys)",
        },
        Rule {
            subject: "identity keys (`key`, names in `keys`)",
            value: quoted(&IDENTITY_KEYS),
            source: "API notes (user API)",
        },
        Rule {
            subject: "`keysconflict`",
            value: quoted(&KEYSCONFLICT_VALUES),
            source: "API notes (user API)",
        },
        Rule {
            subject: "email syntax",
            value: format!(
                "one `@`; dot-atom local part of at most {EMAIL_LOCAL_MAX_LEN} octets; domain of at least two letter/digit/hyphen labels of at most {DOMAIN_LABEL_MAX_LEN} octets, TLD not all digits; at most {EMAIL_MAX_LEN} octets"
            ),
            source: "RFC 5321 / RFC 5322 (practical subset)",
        },
        Rule {
            subject: "`optout`",
            value: quoted(&OPTOUT_VALUES),
            source: "job page names blast, all, none; job update page names all, basic, none: the union",
        },
        Rule {
            subject: "list values",
            value: LIST_VALUES
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" or "),
            source: "job update page: \"1 means subscribe, and 0 means unsubscribe\"",
        },
        Rule {
            subject: "list names",
            value: "no `$`; at least one letter or digit".into(),
            source: "job update page and list page error codes",
        },
        Rule {
            subject: "lists per account",
            value: format!("at most {MAX_LISTS_PER_ACCOUNT} ({MAX_PRIMARY_LISTS} primary)"),
            source: "list page",
        },
        Rule {
            subject: "var names",
            value: format!(
                "letters, digits and `_`; not empty, not all digits, no leading digit; at most {VAR_NAME_MAX_CHARS} characters (warning)"
            ),
            source: "list page error codes; API notes (the platform rewrites other characters)",
        },
        Rule {
            subject: "var values",
            value: format!("strings at most {VAR_VALUE_MAX_CHARS} characters (warning)"),
            source: "list page (list vars); a best practice for user vars (API notes)",
        },
        Rule {
            subject: "vars per list",
            value: format!(
                "at most {LIST_VARS_MAX} (list vars, set through the list API; a line's `vars` are user vars, not limited in number)"
            ),
            source: "list page",
        },
        Rule {
            subject: "integers",
            value: format!("magnitude at most 2^53 = {} (warning)", thousands(MAX_SAFE_INTEGER)),
            source: "JSON numbers read as doubles (RFC 8259 §6)",
        },
        Rule {
            subject: "known line fields",
            value: quoted(&UPDATE_LINE_FIELDS),
            source: "job page, job update page example file, API notes",
        },
    ]
}

/// Renders [`rules`] as the Markdown table the README shows between its
/// `<!-- rules:begin -->` and `<!-- rules:end -->` markers.
pub fn rules_table_markdown() -> String {
    let mut out = String::from("| Rule | Value | Source |\n|---|---|---|\n");
    for rule in rules() {
        out.push_str(&format!(
            "| {} | {} | {} |\n",
            rule.subject, rule.value, rule.source
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_000_000_000), "1,000,000,000");
    }

    #[test]
    fn table_has_a_row_per_rule() {
        let table = rules_table_markdown();
        assert_eq!(table.lines().count(), rules().len() + 2);
        assert!(table.contains("1,000,000,000 bytes"));
        assert!(table.contains("`all`, `blast`, `basic`, `none`"));
    }
}
