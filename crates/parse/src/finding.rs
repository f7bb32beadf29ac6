//! Findings: what the validator says about a line or a file.

use std::fmt;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The line or file would be rejected, or would change data in a way the user did not mean.
    Error,
    /// Accepted by the platform, but probably not what was meant. Errors under `strict`.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $sev:ident, $summary:literal; )*) => {
        /// A stable identifier for each kind of finding.
        ///
        /// The snake_case names ([`Code::as_str`]) are part of the JSON report and never change
        /// meaning; new codes may be added.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in the order of the README's table.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The stable snake_case name.
            pub const fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $name, )* }
            }

            /// The severity the finding has unless `strict` turns warnings into errors.
            pub const fn default_severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$sev, )* }
            }

            /// One sentence saying what the code means.
            pub const fn summary(self) -> &'static str {
                match self { $( Code::$variant => $summary, )* }
            }

            /// Looks a code up by its snake_case name.
            pub fn from_name(name: &str) -> Option<Code> {
                match name { $( $name => Some(Code::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    /// The file is larger than the job's upload limit.
    FileTooLarge = "file_too_large", Error, "the file (decompressed) is larger than the job's upload limit; the line named is where the limit is crossed";
    /// The line is not valid UTF-8.
    InvalidUtf8 = "invalid_utf8", Error, "the line is not valid UTF-8";
    /// The line holds a NUL byte.
    NulByte = "nul_byte", Error, "the line holds a raw NUL byte";
    /// The line holds a carriage return that is not part of a CRLF ending.
    BareCr = "bare_cr", Error, "a carriage return that is not part of a CRLF line ending";
    /// The line is not valid JSON.
    InvalidJson = "invalid_json", Error, "the line is not one valid JSON value (RFC 8259, as serde_json reads it)";
    /// The line holds more than one JSON value.
    MultipleValues = "multiple_values", Error, "more than one JSON value on one line";
    /// The line's JSON value is not an object.
    NotAnObject = "not_an_object", Error, "the line is valid JSON but not an object";
    /// Neither `email` nor `id` is present.
    MissingIdentity = "missing_identity", Error, "the object has neither `email` nor `id`";
    /// An email address is not valid.
    InvalidEmail = "invalid_email", Error, "an email address that is not valid (practical RFC 5321 syntax)";
    /// `id` is not a non-empty string.
    InvalidId = "invalid_id", Error, "`id` is not a non-empty string";
    /// `key`, or a name in `keys`, is not an identity key.
    UnknownKey = "unknown_key", Error, "`key`, or a name inside `keys`, is not one of the identity keys";
    /// `keys` is not an object of string values.
    InvalidKeys = "invalid_keys", Error, "`keys` is not an object of string values";
    /// `keysconflict` is not `merge` or `error`.
    InvalidKeysconflict = "invalid_keysconflict", Error, "`keysconflict` is not one of its values";
    /// `vars` is not an object.
    VarsNotObject = "vars_not_object", Error, "`vars` is not an object";
    /// A var name is empty.
    VarNameEmpty = "var_name_empty", Error, "a var name is empty";
    /// A var name is all digits.
    VarNameAllDigits = "var_name_all_digits", Error, "a var name is all digits";
    /// A var name starts with a digit.
    VarNameLeadingDigit = "var_name_leading_digit", Error, "a var name starts with a digit";
    /// A var name holds a character other than letters, digits and `_`.
    VarNameInvalidChar = "var_name_invalid_char", Error, "a var name holds a character other than ASCII letters, digits and `_` (the platform would rename it)";
    /// `lists` is not an object.
    ListsNotObject = "lists_not_object", Error, "`lists` is not an object";
    /// A list value is not 0 or 1.
    InvalidListValue = "invalid_list_value", Error, "a list value other than 0 or 1";
    /// A list name holds `$`.
    ListNameDollar = "list_name_dollar", Error, "a list name holds a `$`";
    /// A list name holds no letter or digit.
    ListNameNoValidChar = "list_name_no_valid_char", Error, "a list name holds no letter or digit";
    /// `optout` is not one of the four levels.
    InvalidOptout = "invalid_optout", Error, "`optout` is not one of its four values";
    /// `signup_date` is not a date in an accepted format.
    InvalidSignupDate = "invalid_signup_date", Error, "`signup_date` is not a real date in an accepted format";
    /// `delete_vars` is not an array of strings.
    InvalidDeleteVars = "invalid_delete_vars", Error, "`delete_vars` is not an array of strings";
    /// A line of an email file is not one address.
    NotOneAddress = "not_one_address", Error, "a line of an email file holds more than one address";
    /// A byte-order mark starts the file.
    Bom = "bom", Warning, "a UTF-8 byte-order mark starts the file (tolerated)";
    /// The line is empty or only whitespace.
    BlankLine = "blank_line", Warning, "the line is empty or only whitespace";
    /// A top-level field the platform does not know.
    UnknownField = "unknown_field", Warning, "a top-level field the update job does not know (ignored by the platform)";
    /// The same key twice in one object.
    DuplicateKey = "duplicate_key", Warning, "the same key twice in one object (the last one wins on the platform; each value is still checked)";
    /// A var name over the documented length.
    VarNameTooLong = "var_name_too_long", Warning, "a var name longer than the documented limit";
    /// A string var value over the documented length.
    VarValueTooLong = "var_value_too_long", Warning, "a string var value longer than the documented limit";
    /// Spaces around an email address.
    EmailWhitespace = "email_whitespace", Warning, "leading or trailing ASCII whitespace around an email address (a no-break space or other makes it invalid)";
    /// More distinct list names in the file than an account may have.
    TooManyLists = "too_many_lists", Warning, "the file names more distinct lists than an account may have";
    /// An integer that a double cannot hold exactly.
    IntegerPrecision = "integer_precision", Warning, "an integer beyond 2^53, which may lose precision on the platform";
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found in a file.
///
/// Positions: `line` counts from 1 in the original file (a line ends at `\n`); `column` counts
/// characters (Unicode scalar values, or bytes where the line is not UTF-8) from 1 within the line.
/// A file-level finding such as [`Code::FileTooLarge`] names the line where the problem starts and
/// has no column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Line number, from 1.
    pub line: u64,
    /// Column in characters, from 1, where the position is meaningful.
    pub column: Option<u32>,
    /// Error or warning (after `strict` is applied).
    pub severity: Severity,
    /// The stable code.
    pub code: Code,
    /// The field path, such as `vars.1color` or `lists.Main`. `None` also for a finding past
    /// those its sink asked for whole ([`crate::Sink::details_wanted`]).
    pub field: Option<String>,
    /// A sentence for a person; empty for a finding past those its sink asked for whole.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.line)?;
        if let Some(col) = self.column {
            write!(f, "{col}:")?;
        }
        write!(f, " {}[{}]: {}", self.severity, self.code, self.message)
    }
}

/// Renders the Markdown table of codes the README shows between `<!-- codes:begin -->` and
/// `<!-- codes:end -->`.
pub fn codes_table_markdown() -> String {
    let mut out = String::from("| Code | Severity | Meaning |\n|---|---|---|\n");
    for code in Code::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            code.as_str(),
            code.default_severity(),
            code.summary()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &code in Code::ALL {
            let name = code.as_str();
            assert!(seen.insert(name), "{name} twice");
            assert!(name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert_eq!(Code::from_name(name), Some(code));
        }
        assert_eq!(Code::from_name("nope"), None);
    }

    #[test]
    fn display_says_where() {
        let f = Finding {
            line: 3,
            column: Some(7),
            severity: Severity::Error,
            code: Code::InvalidEmail,
            field: Some("email".into()),
            message: "bad".into(),
        };
        assert_eq!(f.to_string(), "3:7: error[invalid_email]: bad");
    }
}
