//! Upload files to Sailthru as `update` and `import` jobs, and watch them to the end.
//!
//! Three types do the work:
//!
//! - [`Client`], built by [`ClientBuilder`], makes signed calls to the `job`, `user` and `list`
//!   APIs: GET and DELETE in the query string, POST as a form, files as a multipart body streamed
//!   from disk with a known length. It retries what is safe to retry (connection failures before
//!   the request went out, 502/503/504, error 9), waits out rate limits, retries at most a few
//!   times what may already have been applied (and says so), and never shows the secret;
//! - [`upload_parts`] validates files, submits each once as a job, records every step in a
//!   [`Journal`] so that an interrupted run continues without sending anything twice, and polls
//!   the jobs until they end;
//! - [`verify_postback`] checks the signature of a job's postback.
//!
//! ```no_run
//! use sailbulk_spec::JobKind;
//! use sailbulk_upload::{upload_parts, ClientBuilder, JobSpec, PartFile, UploadOptions};
//! use std::sync::atomic::AtomicBool;
//!
//! let client = ClientBuilder::from_env()?.build()?;
//! let parts = [PartFile { path: "out/part-00001.json".into(), expected_sha256: None }];
//! let mut options = UploadOptions::new(JobSpec::new(JobKind::Update));
//! options.wait = true;
//! let outcomes = upload_parts(
//!     &client,
//!     &parts,
//!     "out/upload-journal.json".as_ref(),
//!     &options,
//!     &|event| eprintln!("{event:?}"),
//!     &AtomicBool::new(false),
//! )?;
//! for outcome in outcomes {
//!     println!("{}: {:?}", outcome.path.display(), outcome.status.map(|s| s.status));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod client;
mod inputs;
mod journal;
mod runner;
mod sign;

pub use client::{
    ApiError, Client, ClientBuilder, ClientEvent, Error, FileUpload, JobState, JobStatus,
    JobSubmitted, ListInfo, Method, RateLimit, Reply, RetryPolicy, Secret, User, DEFAULT_API_URL,
};
pub use inputs::{
    parts_dir, resolve_inputs, split_for_upload, InputOptions, InputsError, ResolvedInputs,
    SplitForUpload, SplitPolicy,
};
pub use journal::{Journal, JournalEntry, JOURNAL_FILE};
pub use runner::{
    record_job_status, submit_once, upload_parts, wait_for_job, JobSpec, PartFile, PartOutcome,
    PartVerdict, PollPolicy, SpecError, SubmittedOnce, UploadError, UploadEvent, UploadOptions,
};
pub use sign::{sign, verify_postback, verify_postback_json};
