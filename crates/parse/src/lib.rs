//! Streaming, parallel validation of Sailthru bulk update and import files.
//!
//! Three types do the work:
//!
//! - [`Validator`], built by [`ValidatorBuilder`], checks a path (memory-mapped in windows, or
//!   read; gzip is decompressed as it streams), a reader, a byte slice, or a single line against
//!   every documented rule (see `sailbulk-spec`), in parallel, with results that do not depend on
//!   the thread count or block sizes (but for which findings past those a sink asks for whole,
//!   [`Sink::details_wanted`], come without their field and message);
//! - [`Finding`] is one problem, with its line (from 1), column (in characters, from 1), stable
//!   [`Code`], field path and message; findings go to a [`Sink`] in line order, or are collected
//!   into a [`FileReport`];
//! - [`UpdateRecord`] is a borrowed view of one valid update line, for code that builds, uploads or
//!   applies updates.
//!
//! ```
//! use sailbulk_parse::{Code, ValidatorBuilder};
//!
//! let file = b"{\"email\":\"ian@example.com\",\"vars\":{\"tier\":\"gold\"}}\n\
//!              {\"email\":\"joe@example\",\"lists\":{\"Main\":2}}\n";
//! let report = ValidatorBuilder::new().build().report_slice(file, 0);
//! assert!(!report.is_valid());
//! let codes: Vec<_> = report.findings.iter().map(|f| (f.line, f.code)).collect();
//! assert_eq!(codes, [(2, Code::InvalidEmail), (2, Code::InvalidListValue)]);
//! assert_eq!(report.summary.lines, 2);
//! ```
//!
//! A bad line is never an `Err`: it is a finding, and the run goes on. [`Error`] means the input
//! could not be read at all.
#![deny(missing_docs)]

mod check;
mod date;
mod email;
mod fast;
mod finding;
mod input;
mod json;
mod record;
mod report;
#[cfg(target_os = "linux")]
mod sigbus;
#[cfg(target_arch = "x86_64")]
mod simd;
mod spool;
mod validator;

pub use check::Format;
pub use date::{is_valid_unix_timestamp, parse_signup_date, DateFormat, ACCEPTED_FORMATS};
pub use email::{email_problem, EmailProblem};
pub use finding::{codes_table_markdown, Code, Finding, Severity};
pub use input::open_reader;
pub use json::plain_run as json_plain_run;
pub use record::{InvalidRecord, UpdateRecord};
pub use report::{
    counted, error_chain, finding_json, human_bytes, write_finding_text, Collect, FileReport,
    ListLimit, Report,
};
pub use spool::{Spool, SPOOL_MEMORY_BYTES};
pub use validator::{Error, LineBlock, Sink, Summary, Validator, ValidatorBuilder};
