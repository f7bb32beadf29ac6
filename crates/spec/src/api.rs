//! The request protocol of the API: error codes and texts, the signature rule and signing, rate
//! limits.
//!
//! Sources: the API notes (`API-NOTES.md`, gathered from the official clients), the public "API
//! Response Errors" page (`https://getstarted.sailthru.com/developers/api-basics/responses/`),
//! the **job update** page (seed `001_d2cf55a9c5806873.txt`) and the **list** page (seed
//! `004_bb52fbdc049124ac.txt`).

/// An API error code, as sent in `{"error": <code>, "errormsg": "..."}`.
pub type ErrorCode = u32;

/// 1: the call does not support this HTTP method. (API response errors page.)
pub const ERROR_UNSUPPORTED_METHOD: ErrorCode = 1;
/// 2: a required parameter is missing. (API response errors page; list page.)
pub const ERROR_MISSING_PARAMETER: ErrorCode = 2;
/// 3: the `api_key` is not known. (API response errors page.)
pub const ERROR_INVALID_API_KEY: ErrorCode = 3;
/// 4: the request came from an IP address the account does not allow.
pub const ERROR_DISALLOWED_IP: ErrorCode = 4;
/// 5: the `sig` is not the signature of the request; HTTP 401. (API notes.)
pub const ERROR_AUTHENTICATION_FAILED: ErrorCode = 5;
/// 6: a parameter value is not valid UTF-8. (API response errors page.)
pub const ERROR_INVALID_UTF8: ErrorCode = 6;
/// 9: internal error: "try giving it a delay and trying again" — the one code a client retries.
pub const ERROR_INTERNAL: ErrorCode = 9;
/// 11: an invalid email address.
pub const ERROR_INVALID_EMAIL: ErrorCode = 11;
/// 15: an unknown list; HTTP 404. (List page.)
pub const ERROR_UNKNOWN_LIST: ErrorCode = 15;
/// 43: too many requests in the rate-limit window; HTTP 429. (API notes.)
pub const ERROR_TOO_MANY_REQUESTS: ErrorCode = 43;
/// 99: every other error; the job and list pages give their texts. (API notes.)
pub const ERROR_OTHER: ErrorCode = 99;

/// Whether a client may send the same request again after a delay: 9 (internal error) and 43
/// (rate limited, after the reset time). (API response errors page; API notes.)
pub const fn is_retryable(code: ErrorCode) -> bool {
    matches!(code, ERROR_INTERNAL | ERROR_TOO_MANY_REQUESTS)
}

/// The general text of a global error code, as the API response errors page names it.
pub fn error_text(code: ErrorCode) -> &'static str {
    match code {
        ERROR_UNSUPPORTED_METHOD => "Unsupported HTTP method",
        ERROR_MISSING_PARAMETER => "Missing required parameter",
        ERROR_INVALID_API_KEY => "Invalid API key",
        ERROR_DISALLOWED_IP => "Disallowed IP",
        ERROR_AUTHENTICATION_FAILED => "Authentication failed",
        ERROR_INVALID_UTF8 => "Invalid UTF-8 characters for field",
        ERROR_INTERNAL => "Internal error",
        ERROR_INVALID_EMAIL => "Invalid email",
        ERROR_UNKNOWN_LIST => "Unknown list",
        ERROR_TOO_MANY_REQUESTS => "Too many requests",
        _ => "Error",
    }
}

/// The texts of specific errors, with the HTTP status each comes with. Where a page gives no
/// text, the item says so and gives the one sailbulk uses.
pub mod messages {
    /// Job update page: an update job without exactly one source. HTTP 400, error 99.
    pub const UPDATE_SOURCE_REQUIRED: &str =
        "One of the following parameters is required: emails, url, file, or query";
    /// An import job without exactly one of `emails` and `file` ("You must pass one of the below,
    /// but not both", job page). The page gives no error text; sailbulk uses this one (HTTP 400,
    /// error 99).
    pub const IMPORT_SOURCE_REQUIRED: &str =
        "One of the following parameters is required, but not both: emails or file";
    /// Job update page: a list name with `$`. HTTP 400, error 99.
    pub const LIST_NAME_DOLLAR: &str = "List name cannot contain a $ character";
    /// Job update page: a `url` that is not a URL. HTTP 400, error 99.
    pub fn invalid_url(url: &str) -> String {
        format!("Invalid URL: {url}")
    }
    /// List page and job update page: a list name with no valid character. HTTP 400, error 99.
    pub fn list_name_failed_validation(name: &str) -> String {
        format!("List name: {name} failed validation")
    }
    /// List page: `Unknown list: NAME`. HTTP 404, error 15.
    pub fn unknown_list(name: &str) -> String {
        format!("Unknown list: {name}")
    }
    /// List page: `Missing required parameter: list` (HTTP 400, error 2); the same form for
    /// any other required parameter.
    pub fn missing_parameter(name: &str) -> String {
        format!("Missing required parameter: {name}")
    }
    /// List page: `primary` other than 0 or 1. HTTP 200, error 99.
    pub const PRIMARY_ZERO_OR_ONE: &str = "Primary parameter must be 0 or 1";
    /// List page: more than 20 list vars. HTTP 200, error 99.
    pub fn too_many_list_vars(max: usize) -> String {
        format!("The total number of vars cannot exceed {max}")
    }
    /// List page: a var name starting with a digit. HTTP 200, error 99.
    pub fn var_name_leading_digit(name: &str) -> String {
        format!("The variable key name cannot start with a number - '{name}'")
    }
    /// List page: a var name with characters other than letters, digits and `_`. HTTP 200, 99.
    pub fn var_name_characters(name: &str) -> String {
        format!("The variable key must be combination of numbers/letters and underscore - '{name}'")
    }
    /// List page: a var name over 32 characters. HTTP 200, error 99.
    pub fn var_name_too_long(name: &str, max: usize) -> String {
        format!("The key name is too long '{name}', maximum is {max}")
    }
    /// List page: a list var value over 140 characters. HTTP 200, error 99.
    pub fn var_value_too_long(name: &str, value: &str, max: usize) -> String {
        format!("The value for key '{name}' is too long '{value}'. Maximum is {max}")
    }
    /// List page: a 51st primary list. HTTP 200, error 99.
    pub fn too_many_primary_lists(max: usize) -> String {
        format!("You may only track up to {max} primary lists.")
    }
    /// List page: `copy_list` on a natural list. HTTP 400, error 99.
    pub const COPY_LIST_SMART_ONLY: &str = "Error: Copy list only supports smart list";
    /// List page: `copy_list` to a name that is taken. HTTP 400, error 99.
    pub const COPY_LIST_NAME_EXISTS: &str = "Error: New list name already exists";
    /// List page: a natural list turned smart or the reverse. HTTP 403, error 99.
    pub const LIST_TYPE_CHANGE: &str = "Cannot modify list type";
    /// List page: `query` given for a natural list. HTTP 403, error 99.
    pub const LIST_QUERY_ON_NATURAL: &str = "Cannot modify list query on natural list";
    /// List page: the `rename` parameter. HTTP 403, error 99.
    pub const LIST_RENAME_UNSUPPORTED: &str =
        "This feature is no longer supported, please use the /job API to make List Rename calls";
    /// List page: deleting a list a pending job relies on. HTTP 200, error 99.
    pub fn list_has_pending_job(name: &str) -> String {
        format!("List {name} has a pending job and can't be deleted at this time")
    }
    /// List page: "your account is allowed a maximum of 2000 lists". The page gives no error
    /// text; sailbulk uses this one (HTTP 400, error 99).
    pub fn too_many_lists(max: usize) -> String {
        format!("Your account is allowed a maximum of {max} lists")
    }
    /// Job import section of the job page: "Max upload file size for file parameter is 10 MB";
    /// the update page: "The maximum upload file size is 1 GB". No error text is documented;
    /// sailbulk uses this one (HTTP 400, error 99).
    pub fn file_too_large(bytes: u64, max: u64) -> String {
        format!("The upload is {bytes} bytes; the maximum upload file size is {max} bytes")
    }
    /// The user API's text for an unknown user, error 99.
    pub const USER_NOT_FOUND: &str = "User not found";
    /// No page gives the text for an unknown `job_id`; sailbulk uses this one (HTTP 400, 99).
    pub fn unknown_job_id(id: &str) -> String {
        format!("Invalid job_id: {id}")
    }
}

/// The string whose MD5 digest is a request's `sig`: the secret followed by the values of every
/// parameter but `sig` (and the file part), sorted by Unicode code point and concatenated. Keys are
/// not signed. In json mode the values are the API key, `json` and the JSON text as sent. (API
/// notes, from the official clients.)
///
/// Byte order of UTF-8 text is code-point order, so a plain sort of the strings is the rule.
///
/// ```
/// use sailbulk_spec::api::signature_base;
/// let base = signature_base("s", ["k", "json", r#"{"job":"update","list":"x"}"#]);
/// assert_eq!(base, r#"sjsonk{"job":"update","list":"x"}"#);
/// ```
pub fn signature_base<'a, I>(secret: &str, values: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    let mut values: Vec<&str> = values.into_iter().collect();
    values.sort_unstable();
    let mut base =
        String::with_capacity(secret.len() + values.iter().map(|v| v.len()).sum::<usize>());
    base.push_str(secret);
    for value in values {
        base.push_str(value);
    }
    base
}

/// A request's or postback's `sig`: the MD5 digest of [`signature_base`], in lower-case hex. (API
/// notes.) The client signs with it, and the simulator checks and signs with it.
///
/// ```
/// // The first worked example of the API notes: api key `k`, secret `s`.
/// let sig = sailbulk_spec::api::sign("s", ["k", "json", r#"{"job": "update", "list": "x"}"#]);
/// assert_eq!(sig, "4da4c9975bf77b015f1bd28652080cb2");
/// ```
pub fn sign<'a>(secret: &str, values: impl IntoIterator<Item = &'a str>) -> String {
    use md5::{Digest, Md5};
    hex(&Md5::digest(signature_base(secret, values).as_bytes()))
}

/// Whether a received signature equals the expected one, compared in time that does not depend on
/// where they differ.
pub fn same_signature(expected: &str, received: &str) -> bool {
    let (a, b) = (expected.as_bytes(), received.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Bytes in lower-case hex, the form of a `sig` (and of the SHA-256 checksums the manifests and
/// journals record).
///
/// ```
/// assert_eq!(sailbulk_spec::api::hex(&[0, 15, 255]), "000fff");
/// ```
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Response headers that carry the rate limit of the endpoint and method. (API notes.)
pub const RATE_LIMIT_HEADERS: [&str; 3] = [
    "X-Rate-Limit-Limit",
    "X-Rate-Limit-Remaining",
    "X-Rate-Limit-Reset",
];

/// The length of a rate-limit window: limits are per minute, per endpoint and method. The reset
/// header is the epoch second the window ends. (API notes.)
pub const RATE_LIMIT_WINDOW_SECS: u64 = 60;

/// Requests per minute for POST `/job` (*unconfirmed* figure: "about 40 a minute", API notes).
pub const JOB_POST_PER_MINUTE: u32 = 40;

/// Requests per minute for every other endpoint and method. No page gives a figure; sailbulk's
/// simulator takes 1000 as a default a user can override.
pub const DEFAULT_PER_MINUTE: u32 = 1000;

/// The states a job goes through: `pending` -> `running` -> `completed`, or `error` or
/// `incomplete` (job page; job update page).
pub const JOB_STATUSES: [&str; 5] = ["pending", "running", "completed", "error", "incomplete"];

/// Whether a job status is final: `completed`, `error` or `incomplete`.
pub fn is_final_job_status(status: &str) -> bool {
    matches!(status, "completed" | "error" | "incomplete")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_sorts_values_by_code_point() {
        assert_eq!(
            signature_base("s", ["x", "update", "k", "json"]),
            "sjsonkupdatex"
        );
        // Upper case sorts before lower case, and multi-byte text after ASCII.
        assert_eq!(signature_base("", ["é", "b", "B"]), "Bbé");
    }

    /// The worked examples of the API notes, api key `k` and secret `s`.
    #[test]
    fn signs_the_worked_examples() {
        assert_eq!(
            sign("s", ["k", "json", r#"{"job": "update", "list": "x"}"#]),
            "4da4c9975bf77b015f1bd28652080cb2"
        );
        assert_eq!(
            sign("s", ["k", "json", r#"{"job":"update","list":"x"}"#]),
            "c3aebca25540ce42b599b17c61b13791"
        );
        // Flat form fields job=update, list=x: the values in any order give the same sig.
        assert_eq!(
            sign("s", ["x", "update", "json", "k"]),
            "5e21f66c7fd70adbaa49728364ff3e72"
        );
        assert_eq!(
            sign("s", ["k", "json", "update", "x"]),
            "5e21f66c7fd70adbaa49728364ff3e72"
        );
    }

    #[test]
    fn compares_signatures() {
        assert!(same_signature("abc", "abc"));
        assert!(!same_signature("abc", "abd"));
        assert!(!same_signature("abc", "ab"));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn retryable_codes() {
        assert!(is_retryable(ERROR_INTERNAL));
        assert!(is_retryable(ERROR_TOO_MANY_REQUESTS));
        assert!(!is_retryable(ERROR_AUTHENTICATION_FAILED));
        assert!(!is_retryable(ERROR_OTHER));
    }
}
