//! The documented limits and value sets of Sailthru's bulk APIs, in one place.
//!
//! Every other sailbulk crate takes its numbers and value sets from here; none writes them again.
//! The same holds for the signature rule ([`api::sign`]), which the client and the simulator share.
//! Each item names the documentation it comes from:
//!
//! - **job** — the `job` API page (`https://getstarted.sailthru.com/developers/api/job/`), seed
//!   `000_2b70c479ba2b6d9d.txt`;
//! - **job update** — the `job` update page, seed `001_d2cf55a9c5806873.txt`;
//! - **list** — the `list` API page, seed `004_bb52fbdc049124ac.txt`;
//! - **API notes** — facts gathered from the official clients (`API-NOTES.md`).
//!
//! Where the pages disagree, the union is accepted and the item says so.
//!
//! ```
//! use sailbulk_spec::{JobKind, var_name_problem, VarNameProblem, Optout};
//!
//! assert_eq!(JobKind::Update.max_file_bytes(), 1_000_000_000);
//! assert_eq!(var_name_problem("1color"), Some(VarNameProblem::LeadingDigit));
//! assert_eq!(Optout::parse("blast"), Some(Optout::Blast));
//! ```
#![deny(missing_docs)]

pub mod api;
mod rules;

pub use rules::{quoted, rules, rules_table_markdown, Rule};

/// The kind of bulk job a file is uploaded as. Each kind has its own file-size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JobKind {
    /// `job=update`: one JSON object per line, or one email per line.
    Update,
    /// `job=import`: one email per line (or a CSV with an email column), into one list.
    Import,
}

impl JobKind {
    /// The largest file the job accepts, in bytes.
    pub const fn max_file_bytes(self) -> u64 {
        match self {
            JobKind::Update => UPDATE_FILE_MAX_BYTES,
            JobKind::Import => IMPORT_FILE_MAX_BYTES,
        }
    }

    /// The `job` parameter value the API expects.
    pub const fn as_str(self) -> &'static str {
        match self {
            JobKind::Update => "update",
            JobKind::Import => "import",
        }
    }

    /// Parses the `job` parameter value (`update` or `import`).
    pub fn parse(s: &str) -> Option<JobKind> {
        match s {
            "update" => Some(JobKind::Update),
            "import" => Some(JobKind::Import),
            _ => None,
        }
    }
}

/// Largest update-job upload: "The maximum upload file size is 1 GB" (job update page, "General JSON
/// File Requirements"). Whether GB means 10^9 or 2^30 bytes is not documented; API notes take the
/// stricter 1,000,000,000 so that a file that passes here passes there.
pub const UPDATE_FILE_MAX_BYTES: u64 = 1_000_000_000;

/// Largest import-job upload: "Max upload file size for file parameter is 10 MB for now" (job page,
/// `import`). Taken as 10,000,000 bytes, the stricter reading.
pub const IMPORT_FILE_MAX_BYTES: u64 = 10_000_000;

/// The `optout` levels. The job page names `blast`, `all` and `none`; the job update page names
/// `all`, `basic` and `none`. The union of both is accepted (API notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Optout {
    /// Opt out of all communications.
    All,
    /// Opt out of campaigns (blasts) only.
    Blast,
    /// Opt out of everything except templates marked "basic".
    Basic,
    /// Opt back in.
    None,
}

/// Every accepted `optout` value, as written in a file (case-sensitive).
pub const OPTOUT_VALUES: [&str; 4] = ["all", "blast", "basic", "none"];

impl Optout {
    /// Parses an `optout` value; values are case-sensitive.
    pub fn parse(s: &str) -> Option<Optout> {
        match s {
            "all" => Some(Optout::All),
            "blast" => Some(Optout::Blast),
            "basic" => Some(Optout::Basic),
            "none" => Some(Optout::None),
            _ => None,
        }
    }

    /// The value as written in a file.
    pub const fn as_str(self) -> &'static str {
        match self {
            Optout::All => "all",
            Optout::Blast => "blast",
            Optout::Basic => "basic",
            Optout::None => "none",
        }
    }
}

/// List membership values: `1` subscribes, `0` unsubscribes ("1 means subscribe, and 0 means
/// unsubscribe", job update page, `update[lists]`). Nothing else is documented.
pub const LIST_VALUES: [u8; 2] = [0, 1];

/// Most vars a list may hold ("The total number of vars cannot exceed 20", list page).
pub const LIST_VARS_MAX: usize = 20;

/// Longest var name, in characters ("The key name is too long ..., maximum is 32", list page). The
/// list page states it for list vars; for user vars it is a best practice (API notes), so the
/// validator warns.
pub const VAR_NAME_MAX_CHARS: usize = 32;

/// Longest var value, in characters ("The value for key ... is too long ... Maximum is 140", list
/// page). A best practice for user vars (API notes): the validator warns.
pub const VAR_VALUE_MAX_CHARS: usize = 140;

/// Most lists an account may have ("your account is allowed a maximum of 2000 lists", list page).
pub const MAX_LISTS_PER_ACCOUNT: usize = 2000;

/// Most primary lists an account may track ("You may only track up to 50 primary lists", list page).
pub const MAX_PRIMARY_LISTS: usize = 50;

/// The identity keys a user can be looked up by: `key` in an update line, and the names inside
/// `keys` (API notes, "What a line of an update file may hold"). `email` is the default.
pub const IDENTITY_KEYS: [&str; 4] = ["email", "extid", "sid", "sms"];

/// Whether `key` names an identity key.
pub fn is_identity_key(key: &str) -> bool {
    IDENTITY_KEYS.contains(&key)
}

/// The values of `keysconflict`: `merge` or `error` (API notes).
pub const KEYSCONFLICT_VALUES: [&str; 2] = ["merge", "error"];

/// The top-level fields an update-file line may hold. `email`, `vars`, `lists` and `optout` are on
/// the job page; `id`, `keys`, `fields` and `signup_date` in the job update page's example file;
/// `key`, `keysconflict` and `delete_vars` in the API notes (the user API fields an update line
/// passes through). Anything else is unknown: the platform ignores it, so it is worth a warning.
pub const UPDATE_LINE_FIELDS: [&str; 11] = [
    "email",
    "id",
    "key",
    "keys",
    "keysconflict",
    "fields",
    "vars",
    "lists",
    "optout",
    "signup_date",
    "delete_vars",
];

/// Longest email address, in octets: RFC 5321 §4.5.3.1.3 (a path of 256 octets less the angle
/// brackets), the practical limit every mail system applies.
pub const EMAIL_MAX_LEN: usize = 254;

/// Longest local part (before the `@`), in octets: RFC 5321 §4.5.3.1.1.
pub const EMAIL_LOCAL_MAX_LEN: usize = 64;

/// Longest domain label, in octets: RFC 1035 §2.3.4.
pub const DOMAIN_LABEL_MAX_LEN: usize = 63;

/// Characters allowed in an unquoted local part besides letters and digits (`atext`, RFC 5322
/// §3.2.3).
pub const EMAIL_ATEXT_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~";

/// Why a var name is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VarNameProblem {
    /// The name is empty.
    Empty,
    /// The name is all digits.
    AllDigits,
    /// The name starts with a digit ("The variable key name cannot start with a number", list page).
    LeadingDigit,
    /// The name holds a character other than a letter, digit or `_` ("The variable key must be
    /// combination of numbers/letters and underscore", list page). The platform silently rewrites
    /// such characters, so the value would land under another name (API notes).
    InvalidChar(char),
}

/// Checks a var name against the list page's rules; `None` means it is accepted.
///
/// Letters are ASCII letters: the page says "numbers/letters and underscore" and the platform
/// rewrites anything else.
pub fn var_name_problem(name: &str) -> Option<VarNameProblem> {
    let bytes = name.as_bytes();
    let Some(first) = bytes.first() else {
        return Some(VarNameProblem::Empty);
    };
    if let Some(i) = bytes.iter().position(|&b| !VAR_NAME_BYTES[usize::from(b)]) {
        // Every byte before `i` is ASCII, so `i` is a character boundary.
        let c = name[i..]
            .chars()
            .next()
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        Some(VarNameProblem::InvalidChar(c))
    } else if !first.is_ascii_digit() {
        None
    } else if bytes.iter().all(u8::is_ascii_digit) {
        Some(VarNameProblem::AllDigits)
    } else {
        Some(VarNameProblem::LeadingDigit)
    }
}

/// Whether a var name may hold the byte `b`: an ASCII letter, digit or `_`.
#[inline]
pub fn is_var_name_byte(b: u8) -> bool {
    VAR_NAME_BYTES[usize::from(b)]
}

/// The bytes a var name may hold: ASCII letters, digits and `_`.
static VAR_NAME_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = (b as u8).is_ascii_alphanumeric() || b == b'_' as usize;
        b += 1;
    }
    t
};

/// Why a list name is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListNameProblem {
    /// "List name cannot contain a $ character" (job update page, error codes).
    Dollar,
    /// "List name: {LIST_NAME} failed validation" — "No valid characters in list name" (list page).
    /// A valid character is a letter or digit in any script; spaces and punctuation such as `!`
    /// and `/` are allowed beside them (the docs show `!! bar/foo`).
    NoValidChar,
}

/// Checks a list name; `None` means it is accepted.
pub fn list_name_problem(name: &str) -> Option<ListNameProblem> {
    if name.contains('$') {
        Some(ListNameProblem::Dollar)
    } else if !name.chars().any(char::is_alphanumeric) {
        Some(ListNameProblem::NoValidChar)
    } else {
        None
    }
}

/// Largest integer a JSON number can carry without losing precision in a double (2^53). The
/// platform's JSON readers use doubles, so larger integers may arrive changed.
pub const MAX_SAFE_INTEGER: u64 = 1 << 53;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_limits() {
        assert_eq!(JobKind::Update.max_file_bytes(), 1_000_000_000);
        assert_eq!(JobKind::Import.max_file_bytes(), 10_000_000);
        assert_eq!(JobKind::parse("update"), Some(JobKind::Update));
        assert_eq!(JobKind::parse("import"), Some(JobKind::Import));
        assert_eq!(JobKind::parse("Update"), None);
        assert_eq!(JobKind::Import.as_str(), "import");
    }

    #[test]
    fn optout_values_round_trip() {
        for v in OPTOUT_VALUES {
            assert_eq!(Optout::parse(v).map(Optout::as_str), Some(v));
        }
        assert_eq!(Optout::parse("ALL"), None);
        assert_eq!(Optout::parse(" all"), None);
        assert_eq!(Optout::parse(""), None);
    }

    #[test]
    fn var_names() {
        assert_eq!(var_name_problem(""), Some(VarNameProblem::Empty));
        assert_eq!(var_name_problem("123"), Some(VarNameProblem::AllDigits));
        assert_eq!(
            var_name_problem("1color"),
            Some(VarNameProblem::LeadingDigit)
        );
        assert_eq!(
            var_name_problem("first-name"),
            Some(VarNameProblem::InvalidChar('-'))
        );
        assert_eq!(
            var_name_problem("café"),
            Some(VarNameProblem::InvalidChar('é'))
        );
        assert_eq!(
            var_name_problem("a b"),
            Some(VarNameProblem::InvalidChar(' '))
        );
        assert_eq!(
            var_name_problem("$x"),
            Some(VarNameProblem::InvalidChar('$'))
        );
        assert_eq!(var_name_problem("color1"), None);
        assert_eq!(var_name_problem("_1"), None);
        assert_eq!(var_name_problem("_"), None);
        assert_eq!(var_name_problem("A"), None);
    }

    #[test]
    fn list_names() {
        assert_eq!(list_name_problem("Main"), None);
        assert_eq!(list_name_problem("!! bar/foo"), None);
        assert_eq!(list_name_problem("Weekly Deals"), None);
        assert_eq!(list_name_problem("東京"), None);
        assert_eq!(list_name_problem("a$b"), Some(ListNameProblem::Dollar));
        assert_eq!(list_name_problem("$"), Some(ListNameProblem::Dollar));
        assert_eq!(list_name_problem(""), Some(ListNameProblem::NoValidChar));
        assert_eq!(
            list_name_problem("!!! /"),
            Some(ListNameProblem::NoValidChar)
        );
        assert_eq!(list_name_problem("   "), Some(ListNameProblem::NoValidChar));
    }

    #[test]
    fn identity_keys() {
        for k in ["email", "extid", "sid", "sms"] {
            assert!(is_identity_key(k));
        }
        assert!(!is_identity_key("cookie"));
        assert!(!is_identity_key("Email"));
    }
}
