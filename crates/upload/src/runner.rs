//! The job runner: validate parts, submit each once as a job (journalled), and watch the jobs to
//! the end.

use crate::client::{
    epoch_now, locked, sleep_unless, Client, Error, FileUpload, JobState, JobStatus,
};
use crate::journal::Journal;
use sailbulk_parse::{FileReport, ValidatorBuilder};
use sailbulk_spec::JobKind;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One file to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartFile {
    /// The file.
    pub path: PathBuf,
    /// The SHA-256 a manifest recorded for it, checked before sending.
    pub expected_sha256: Option<String>,
}

/// What every job of an upload is: type, list, the `update` object, notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// `update` or `import`.
    pub job: JobKind,
    /// For `import`: the list to import into (created if missing).
    pub list: Option<String>,
    /// For `update`: the `update` object applied to every user (`vars`, `lists`, `optout`,
    /// `delete_vars`).
    pub update: Option<Value>,
    /// `report_email`: an address the platform mails a report to when the job ends.
    pub report_email: Option<String>,
    /// `postback_url`: a URL the platform POSTs the job's outcome to when it ends (see
    /// [`crate::verify_postback`] for checking what arrives there).
    pub postback_url: Option<String>,
}

/// Why a [`JobSpec`] is not a job the API takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// An import job names no list.
    #[error("an import job needs a list to import into")]
    ImportWithoutList,
    /// An update job names a list (the job page's `list` is an import's).
    #[error(
        "a list is for import jobs; an update job names lists in its lines or in its update object"
    )]
    ListOnUpdate,
    /// An import job has an update object.
    #[error("an update object is for update jobs")]
    UpdateOnImport,
    /// The update object is not a JSON object.
    #[error("the update object must be a JSON object, as in {{\"vars\":{{\"a\":1}}}}")]
    UpdateNotObject,
}

impl JobSpec {
    /// A spec for a job type, with nothing else set.
    pub fn new(job: JobKind) -> JobSpec {
        JobSpec {
            job,
            list: None,
            update: None,
            report_email: None,
            postback_url: None,
        }
    }

    /// Whether the spec is a job the API takes: an import has a list and no update object, an
    /// update has no list, and an update object is an object. [`upload_parts`] checks it before
    /// anything is sent.
    pub fn check(&self) -> Result<(), SpecError> {
        match self.job {
            JobKind::Import if self.list.is_none() => Err(SpecError::ImportWithoutList),
            JobKind::Import if self.update.is_some() => Err(SpecError::UpdateOnImport),
            JobKind::Update if self.list.is_some() => Err(SpecError::ListOnUpdate),
            _ if self.update.as_ref().is_some_and(|u| !u.is_object()) => {
                Err(SpecError::UpdateNotObject)
            }
            _ => Ok(()),
        }
    }

    /// The call's parameters, without a source (`file`, `emails`, `query`).
    pub fn params(&self) -> Map<String, Value> {
        let mut params = Map::new();
        params.insert("job".into(), self.job.as_str().into());
        if let Some(list) = &self.list {
            params.insert("list".into(), list.clone().into());
        }
        if let Some(update) = &self.update {
            params.insert("update".into(), update.clone());
        }
        if let Some(email) = &self.report_email {
            params.insert("report_email".into(), email.clone().into());
        }
        if let Some(url) = &self.postback_url {
            params.insert("postback_url".into(), url.clone().into());
        }
        params
    }
}

/// How to poll a job until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    /// The first wait between polls. Default 1 s.
    pub initial: Duration,
    /// The longest wait; waits grow by half each poll up to it. Default 30 s.
    pub max: Duration,
    /// Give up waiting after this long. Default: never.
    pub timeout: Option<Duration>,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            timeout: None,
        }
    }
}

/// How to run an upload.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadOptions {
    /// What the jobs are.
    pub spec: JobSpec,
    /// Check every file with the validator first, and send none if any is invalid. Default
    /// true.
    pub validate: bool,
    /// Parts sent at once. Default 1.
    pub concurrency: usize,
    /// Poll the jobs until they end. Default false.
    pub wait: bool,
    /// How to poll.
    pub poll: PollPolicy,
}

impl UploadOptions {
    /// Options for a job spec, with the defaults.
    pub fn new(spec: JobSpec) -> UploadOptions {
        UploadOptions {
            spec,
            validate: true,
            concurrency: 1,
            wait: false,
            poll: PollPolicy::default(),
        }
    }
}

/// Something an upload did, for progress display and logs.
#[derive(Debug)]
#[non_exhaustive]
pub enum UploadEvent<'a> {
    /// A part already has a job from an earlier run; it is not sent again.
    Resumed {
        /// The part.
        part: &'a Path,
        /// Its job.
        job_id: &'a str,
    },
    /// A part is being sent (`attempt` counts runs too: above 1, an earlier run sent it without
    /// getting a job id back).
    Sending {
        /// The part.
        part: &'a Path,
        /// Its size.
        bytes: u64,
        /// The how-manieth submission this is.
        attempt: u32,
        /// An earlier run sent the whole file and got no answer: the job may exist already, and
        /// the part is marked as possibly duplicated.
        after_full_send: bool,
    },
    /// Bytes of a part sent so far.
    Progress {
        /// The part.
        part: &'a Path,
        /// Bytes sent.
        sent: u64,
    },
    /// A part became a job.
    Submitted {
        /// The part.
        part: &'a Path,
        /// The job.
        job_id: &'a str,
    },
    /// A part could not be submitted.
    Failed {
        /// The part.
        part: &'a Path,
        /// Why.
        error: &'a Error,
    },
    /// A job's status was read.
    Status {
        /// The part.
        part: &'a Path,
        /// The status.
        status: &'a JobStatus,
    },
}

/// What became of one part.
#[derive(Debug, Clone, PartialEq)]
pub struct PartOutcome {
    /// The part.
    pub path: PathBuf,
    /// Its job, if it has one.
    pub job_id: Option<String>,
    /// Whether the job came from an earlier run (nothing was sent this time).
    pub resumed: bool,
    /// The status the journal last recorded (for a job from an earlier run, without `wait`).
    pub last_status: Option<String>,
    /// Whether the part may have been submitted twice (an answer was lost after the whole
    /// request was sent, and it was sent again).
    pub possibly_duplicated: bool,
    /// The job's last status read (final, with `wait`).
    pub status: Option<JobStatus>,
    /// Why it has no job, or why its status could not be read.
    pub error: Option<String>,
    /// Whether it has no job because the API refused it (an error answer), rather than because
    /// it could not be sent (network, cancellation).
    pub refused: bool,
    /// Whether it was not sent because the API refused another part of the run (what it
    /// refused once, it refuses again: the same job parameters, the same credentials).
    pub held_back: bool,
}

/// How a part's upload ended, for a caller that must decide whether the run succeeded (as
/// `sailbulk upload`'s exit status does: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PartVerdict {
    /// The part has its job, and the job did not fail (and ended, when waited for).
    Done,
    /// The job failed (`error`, `incomplete`) or did not end in the time waited; or the API
    /// refused the part, or another part of the run (so this one was held back).
    Failed,
    /// The run could not finish with the part: it could not be sent (network, cancellation), or
    /// its job's status could not be read when it was waited for.
    Unfinished,
}

impl PartOutcome {
    /// The verdict on this part; `waited` says whether the run waited for jobs to end (then a job
    /// still running is a failure to report).
    pub fn verdict(&self, waited: bool) -> PartVerdict {
        match (&self.job_id, &self.status) {
            (Some(_), Some(status)) => {
                let failed = matches!(status.status, JobState::Error | JobState::Incomplete)
                    || (waited && !status.status.is_final());
                if failed {
                    PartVerdict::Failed
                } else {
                    PartVerdict::Done
                }
            }
            (Some(_), None) if self.error.is_some() => PartVerdict::Unfinished,
            (Some(_), None) => PartVerdict::Done,
            (None, _) if self.refused || self.held_back => PartVerdict::Failed,
            (None, _) => PartVerdict::Unfinished,
        }
    }
}

/// Why an upload could not run at all. Nothing was sent when this comes back, except for
/// [`UploadError::Journal`], which lists what was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The journal could not be read or written. Jobs submitted before it failed are listed:
    /// the journal may not hold them.
    #[error("upload journal {}", path.display())]
    Journal {
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
        /// Parts submitted in this run, with their job ids.
        submitted: Vec<(PathBuf, String)>,
    },
    /// Another upload is using the journal.
    #[error("upload journal {} is in use by another upload ({}which holds {})", path.display(), pid.map(|p| format!("process {p}, ")).unwrap_or_default(), lock.display())]
    Busy {
        /// The journal.
        path: PathBuf,
        /// Its lock file.
        lock: PathBuf,
        /// The process that holds it, when its lock file says (a holder that has just taken the
        /// lock may not have written its id yet).
        pid: Option<u32>,
    },
    /// The API refused the credentials, or could not be reached, before anything was sent.
    #[error("before sending anything")]
    Unreachable(#[source] Error),
    /// Cancelled while parts were being checked; nothing was sent.
    #[error("cancelled before anything was sent")]
    Cancelled,
    /// A job without a file could not be submitted.
    #[error(transparent)]
    Submit(Error),
    /// A part could not be validated before sending: it could not be opened or read to its end,
    /// or it changed while it was read. The validator's error names the part (and the line
    /// after which a part is damaged).
    #[error(transparent)]
    Validate(sailbulk_parse::Error),
    /// A part could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The part.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A part changed since it was sent (or since its manifest was written): sending it would
    /// not be the upload the journal records.
    #[error("{} changed since {when}: its SHA-256 was {was}, now {now}; refusing to send it (start a new journal for new data)", path.display())]
    Changed {
        /// The part.
        path: PathBuf,
        /// `it was sent` or `the manifest was written`.
        when: &'static str,
        /// The recorded checksum.
        was: String,
        /// The checksum now.
        now: String,
    },
    /// A part was sent before as another kind of job, or with other parameters (`--update-json`,
    /// `--list`, ...): it is not the upload the journal records.
    #[error("{} was sent before as a {was} job with other parameters; refusing to send or skip it (start a new journal for another upload)", path.display())]
    OtherJob {
        /// The part.
        path: PathBuf,
        /// The job type it was sent as.
        was: String,
    },
    /// A part's content was sent before under another name (a file moved or renamed since, or
    /// a copy of it), with the same job parameters: sending it would submit the same data twice.
    #[error("{} holds the same data as {other}, which was sent before as the same job ({state}); refusing to send it twice (start a new journal to send it again on purpose)", path.display())]
    SentAs {
        /// The part.
        path: PathBuf,
        /// The journal's name for the file sent before.
        other: String,
        /// What became of that send: its job id, or that its answer was lost.
        state: String,
    },
    /// The job's parameters are not a job the API takes; nothing was sent.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Parts failed validation; nothing was sent.
    #[error("{} file(s) failed validation; nothing was sent", .0.len())]
    Invalid(Vec<FileReport>),
    /// A part is over the job's upload limit.
    #[error("{} is {bytes} bytes, over the {max}-byte limit of {job} jobs; split it first", path.display())]
    TooLarge {
        /// The part.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
        /// The job type.
        job: &'static str,
    },
}

/// A part, checked and ready: path as given (for display), absolute path, checksum, size.
struct Ready {
    given: PathBuf,
    path: PathBuf,
    key: String,
    sha256: String,
    bytes: u64,
}

/// Uploads `parts` as jobs, one job per part, recording each step in the journal at
/// `journal_path`.
///
/// Before anything is sent: the journal is locked against other runs; every part is hashed and
/// checked against the journal (a part sent before must be unchanged, and sent as the same kind of
/// job with the same parameters) and against its manifest's checksum; with `validate`, every part
/// is checked against every rule; and one signed read makes sure the credentials work. Parts that
/// already have a job id are not sent again (only polled, with `wait`); parts without one are
/// sent, each hashed again as it streams so that a file that changes in between is never
/// submitted. After the API refuses a part, the rest are not sent. `cancel` stops the run between
/// parts and abandons a part mid-upload (before its last byte, so no job comes of it); a part
/// already sent in full waits for its answer. The journal then holds what a re-run continues from.
pub fn upload_parts(
    client: &Client,
    parts: &[PartFile],
    journal_path: &Path,
    options: &UploadOptions,
    on_event: &(dyn Fn(&UploadEvent<'_>) + Sync),
    cancel: &AtomicBool,
) -> Result<Vec<PartOutcome>, UploadError> {
    options.spec.check()?;
    let journal_err = |source| journal_error(journal_path, source);
    let _lock = JournalLock::acquire(journal_path)?;
    let mut journal = Journal::load(journal_path).map_err(journal_err)?;
    let job = options.spec.job;
    let params = options.spec.params();
    let params_sha256 = sha256_hex(Value::Object(params.clone()).to_string().as_bytes());
    let mut ready: Vec<Ready> = Vec::with_capacity(parts.len());
    // The journal knows a file by its canonical path: the same file named another way
    // (`d/../d/p.json`, a symlink, a relative path from elsewhere) is the same part.
    let mut named = Vec::with_capacity(parts.len());
    for part in parts {
        match std::fs::canonicalize(&part.path) {
            Ok(path) => named.push((part, path)),
            Err(source) => {
                return Err(UploadError::Io {
                    path: part.path.clone(),
                    source,
                })
            }
        }
    }
    // This run's files: two of them may hold the same data (two equal parts of one split),
    // which is no part sent again under another name.
    let this_run: std::collections::HashSet<String> = named
        .iter()
        .map(|(_, path)| path.to_string_lossy().into_owned())
        .collect();
    for (part, path) in named {
        if cancel.load(Ordering::SeqCst) {
            return Err(UploadError::Cancelled);
        }
        let io_err = |source| UploadError::Io {
            path: part.path.clone(),
            source,
        };
        let key = path.to_string_lossy().into_owned();
        // The same file named twice (a directory and its manifest, say) is one part.
        if ready.iter().any(|r| r.key == key) {
            continue;
        }
        // Journals written before keys were canonical name files by their absolute path as
        // given: such an entry is taken over under the canonical key.
        let legacy = std::path::absolute(&part.path).map_err(io_err)?;
        let legacy = legacy.to_string_lossy();
        if legacy != key && journal.entry(&key).is_none() {
            if let Some(entry) = journal.parts.iter_mut().find(|e| e.file == legacy) {
                entry.file = key.clone();
            }
        }
        let bytes = std::fs::metadata(&path).map_err(io_err)?.len();
        let sha256 = sailbulk_build::sha256_file(&path).map_err(io_err)?;
        if let Some(expected) = &part.expected_sha256 {
            if *expected != sha256 {
                return Err(UploadError::Changed {
                    path: part.path.clone(),
                    when: "the manifest was written",
                    was: expected.clone(),
                    now: sha256,
                });
            }
        }
        // Only a send that may have been applied binds a part to its content and its job: after
        // sends that were all answered with a refusal, or never went out whole, the file may
        // be corrected and sent again.
        let sent_itself = journal.entry(&key).filter(|e| e.may_have_applied());
        if let Some(entry) = sent_itself {
            if entry.sha256 != sha256 {
                return Err(UploadError::Changed {
                    path: part.path.clone(),
                    when: "it was sent",
                    was: entry.sha256.clone(),
                    now: sha256,
                });
            }
            if entry.job != job.as_str() || entry.params_sha256 != params_sha256 {
                return Err(UploadError::OtherJob {
                    path: part.path.clone(),
                    was: entry.job.clone(),
                });
            }
        }
        // The same data sent before under another name, as the same job (a file moved or
        // copied since), when this file was not sent itself.
        let earlier = journal.parts.iter().find(|e| {
            sent_itself.is_none()
                && e.file != key
                && !this_run.contains(&e.file)
                && e.sha256 == sha256
                && e.job == job.as_str()
                && e.params_sha256 == params_sha256
                && e.may_have_applied()
        });
        if let Some(earlier) = earlier {
            return Err(UploadError::SentAs {
                path: part.path.clone(),
                other: earlier.file.clone(),
                state: match &earlier.job_id {
                    Some(id) => format!("job {id}"),
                    None => "its answer was lost, so the job may exist".into(),
                },
            });
        }
        ready.push(Ready {
            given: part.path.clone(),
            path,
            key,
            sha256,
            bytes,
        });
    }
    let to_send: Vec<&Ready> = ready
        .iter()
        .filter(|r| journal.entry(&r.key).is_none_or(|e| e.job_id.is_none()))
        .collect();
    if options.validate {
        let validator = ValidatorBuilder::new().job(job).build();
        let mut invalid = Vec::new();
        for r in &to_send {
            if cancel.load(Ordering::SeqCst) {
                return Err(UploadError::Cancelled);
            }
            let report = validator
                .report_path(&r.path, 100)
                .map_err(UploadError::Validate)?;
            if !report.is_valid() {
                invalid.push(report);
            }
        }
        if !invalid.is_empty() {
            return Err(UploadError::Invalid(invalid));
        }
    }
    for r in &to_send {
        if r.bytes > job.max_file_bytes() {
            return Err(UploadError::TooLarge {
                path: r.path.clone(),
                bytes: r.bytes,
                max: job.max_file_bytes(),
                job: job.as_str(),
            });
        }
    }
    if !to_send.is_empty() {
        // One signed read first: a wrong key or secret, or an API out of reach, is found before
        // gigabytes are sent to be refused.
        client.get_lists().map_err(|e| {
            if e.is_cancelled() {
                UploadError::Cancelled
            } else {
                UploadError::Unreachable(e)
            }
        })?;
    }
    let journal = Mutex::new(journal);
    let journal_failure: Mutex<Option<std::io::Error>> = Mutex::new(None);
    // Saves the journal; after a failure, no new part is started (a re-run could not know what
    // was sent).
    let save = |j: &Journal| {
        if let Err(e) = j.save(journal_path) {
            locked(&journal_failure).get_or_insert(e);
        }
    };
    {
        let mut j = locked(&journal);
        for r in &ready {
            let entry = j.entry_mut(&r.key);
            if !entry.may_have_applied() {
                entry.sha256 = r.sha256.clone();
                entry.bytes = r.bytes;
                entry.job = job.as_str().to_string();
                entry.params_sha256 = params_sha256.clone();
            }
        }
        save(&j);
    }
    if let Some(source) = locked(&journal_failure).take() {
        return Err(journal_err(source));
    }
    let mut outcomes: Vec<PartOutcome> = ready
        .iter()
        .map(|r| {
            let j = locked(&journal);
            let entry = j.entry(&r.key);
            let job_id = entry.and_then(|e| e.job_id.clone());
            if let Some(id) = &job_id {
                on_event(&UploadEvent::Resumed {
                    part: &r.given,
                    job_id: id,
                });
            }
            PartOutcome {
                path: r.given.clone(),
                resumed: job_id.is_some(),
                job_id,
                last_status: entry.and_then(|e| e.status.clone()),
                possibly_duplicated: entry.is_some_and(|e| e.possibly_duplicated),
                status: None,
                error: None,
                refused: false,
                held_back: false,
            }
        })
        .collect();

    // Send, `concurrency` parts at a time.
    let next = AtomicUsize::new(0);
    let stop: Mutex<Option<String>> = Mutex::new(None);
    // Per part sent: its job id, or why not and whether the API refused it.
    type Sent = (usize, Result<String, (String, bool)>);
    let results: Mutex<Vec<Sent>> = Mutex::new(Vec::new());
    let pending: Vec<usize> = (0..ready.len())
        .filter(|&i| outcomes[i].job_id.is_none())
        .collect();
    let base = Value::Object(params);
    let stopped = || {
        cancel.load(Ordering::SeqCst)
            || locked(&stop).is_some()
            || locked(&journal_failure).is_some()
    };
    std::thread::scope(|scope| {
        for _ in 0..options.concurrency.clamp(1, pending.len().max(1)) {
            scope.spawn(|| loop {
                if stopped() {
                    return;
                }
                let k = next.fetch_add(1, Ordering::SeqCst);
                let Some(&i) = pending.get(k) else { return };
                let r = &ready[i];
                let (attempt, after_full_send) = {
                    let mut j = locked(&journal);
                    let entry = j.entry_mut(&r.key);
                    if entry.job_id.is_some() {
                        continue;
                    }
                    // An earlier run sent the whole file and never heard back: the job may
                    // exist. It is sent again, as the journal is for, and marked.
                    let after_full_send = entry.body_sent_at.is_some();
                    entry.possibly_duplicated |= after_full_send;
                    entry.record_attempt();
                    entry.body_sent_at = None;
                    let attempt = entry.attempts;
                    save(&j);
                    (attempt, after_full_send)
                };
                if locked(&journal_failure).is_some() {
                    return;
                }
                on_event(&UploadEvent::Sending {
                    part: &r.given,
                    bytes: r.bytes,
                    attempt,
                    after_full_send,
                });
                let progress = |sent: u64| {
                    on_event(&UploadEvent::Progress {
                        part: &r.given,
                        sent,
                    });
                    if sent == r.bytes {
                        let mut j = locked(&journal);
                        j.entry_mut(&r.key).body_sent_at = Some(epoch_now());
                        save(&j);
                    }
                };
                let upload = FileUpload {
                    path: &r.path,
                    name: None,
                    progress: Some(&progress),
                    expected_sha256: Some(&r.sha256),
                    expected_len: Some(r.bytes),
                };
                let result = client.submit_job(&base, Some(&upload));
                let mut j = locked(&journal);
                let entry = j.entry_mut(&r.key);
                let outcome = match result {
                    Ok(submitted) => {
                        entry.record_submitted(&submitted);
                        on_event(&UploadEvent::Submitted {
                            part: &r.given,
                            job_id: &submitted.job_id,
                        });
                        Ok(submitted.job_id)
                    }
                    Err(error) => {
                        entry.record_failure(&error);
                        let refused = error.api_error().is_some();
                        if !error.possibly_applied() {
                            // The last send was answered, or did not go out whole: nothing of
                            // it was applied.
                            entry.body_sent_at = None;
                        }
                        if refused {
                            // What the API refused once, it refuses for the next part too (the
                            // same job parameters, the same credentials): stop here.
                            locked(&stop).get_or_insert_with(|| {
                                format!("not sent: the API refused {}", r.given.display())
                            });
                        }
                        if !error.is_cancelled() {
                            on_event(&UploadEvent::Failed {
                                part: &r.given,
                                error: &error,
                            });
                        }
                        Err((sailbulk_parse::error_chain(&error), refused))
                    }
                };
                save(&j);
                drop(j);
                locked(&results).push((i, outcome));
            });
        }
    });
    for (i, result) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let entry_dup = locked(&journal)
            .entry(&ready[i].key)
            .is_some_and(|e| e.possibly_duplicated);
        outcomes[i].possibly_duplicated = entry_dup;
        match result {
            Ok(id) => {
                outcomes[i].job_id = Some(id);
                outcomes[i].last_status = Some("pending".into());
            }
            Err((e, refused)) => {
                outcomes[i].error = Some(e);
                outcomes[i].refused = refused;
            }
        }
    }
    if let Some(source) = journal_failure
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
    {
        let submitted = outcomes
            .iter()
            .filter(|o| !o.resumed)
            .filter_map(|o| Some((o.path.clone(), o.job_id.clone()?)))
            .collect();
        return Err(UploadError::Journal {
            path: journal_path.to_path_buf(),
            source,
            submitted,
        });
    }
    let stop_reason = stop.into_inner().unwrap_or_else(|e| e.into_inner());
    for outcome in outcomes.iter_mut() {
        if outcome.job_id.is_none() && outcome.error.is_none() {
            let cancelled = cancel.load(Ordering::SeqCst);
            outcome.held_back = !cancelled && stop_reason.is_some();
            outcome.error = Some(match &stop_reason {
                _ if cancelled => "not sent: the upload was cancelled".into(),
                Some(reason) => reason.clone(),
                None => "not sent".into(),
            });
        }
    }

    if options.wait {
        // Consecutive failures to read a job's status before it is left to `sailbulk status`.
        const MAX_STATUS_FAILURES: u32 = 5;
        let mut open: Vec<(usize, u32)> = (0..outcomes.len())
            .filter(|&i| outcomes[i].job_id.is_some())
            .map(|i| (i, 0))
            .collect();
        let started = Instant::now();
        let mut interval = options.poll.initial;
        while !open.is_empty() && !cancel.load(Ordering::SeqCst) {
            let mut still = Vec::new();
            for (i, failures) in open {
                let id = outcomes[i].job_id.clone().unwrap_or_default();
                match client.job_status(&id) {
                    Ok(status) => {
                        on_event(&UploadEvent::Status {
                            part: &ready[i].given,
                            status: &status,
                        });
                        let mut j = locked(&journal);
                        j.entry_mut(&ready[i].key).record_status(&status.status);
                        j.save(journal_path).map_err(journal_err)?;
                        let done = status.status.is_final();
                        outcomes[i].last_status = Some(status.status.as_str().to_string());
                        outcomes[i].status = Some(status);
                        outcomes[i].error = None;
                        if !done {
                            still.push((i, 0));
                        }
                    }
                    Err(e) if e.is_cancelled() => break,
                    Err(e) => {
                        // Kept for the next round; after too many failures in a row the job is
                        // left, with why: the journal keeps its id for `sailbulk status`.
                        outcomes[i].error = Some(format!(
                            "cannot read the status of job {id}: {}",
                            sailbulk_parse::error_chain(&e)
                        ));
                        if failures + 1 < MAX_STATUS_FAILURES {
                            still.push((i, failures + 1));
                        }
                    }
                }
            }
            open = still;
            if open.is_empty() {
                break;
            }
            if options.poll.timeout.is_some_and(|t| started.elapsed() >= t) {
                for &(i, _) in &open {
                    outcomes[i].error = Some("still running when the wait ended".into());
                }
                break;
            }
            if !sleep(interval, cancel) {
                break;
            }
            interval = (interval * 3 / 2).min(options.poll.max);
        }
    }
    Ok(outcomes)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    sailbulk_spec::api::hex(&Sha256::digest(bytes))
}

/// The error for a journal that cannot be read, written or locked before anything was sent.
fn journal_error(path: &Path, source: std::io::Error) -> UploadError {
    UploadError::Journal {
        path: path.to_path_buf(),
        source,
        submitted: Vec::new(),
    }
}

/// The lock file of a journal: `JOURNAL.lock`, beside it.
pub(crate) fn lock_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// The lock file beside a journal, held for a run: two runs over one journal would both send.
struct JournalLock {
    path: PathBuf,
    /// The open lock file, which holds the lock (Unix: an exclusive `flock`) while it is open.
    #[cfg(unix)]
    _file: std::fs::File,
}

impl JournalLock {
    /// Takes the journal's lock, `JOURNAL.lock`. On Unix it is an exclusive `flock` on that file,
    /// which the system releases when its holder ends however it ends, so no lock is ever left
    /// stale and two runs can never both hold it; the file holds the holder's process id for the
    /// message of the one refused. Elsewhere the file's existence is the lock, and a file naming
    /// a process that is gone is taken over.
    fn acquire(journal: &Path) -> Result<JournalLock, UploadError> {
        Self::acquire_at(journal, lock_path(journal))
    }

    #[cfg(unix)]
    fn acquire_at(journal: &Path, path: PathBuf) -> Result<JournalLock, UploadError> {
        use std::io::{Read, Seek, Write};
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::io::AsRawFd;
        let io_err = |source| journal_error(journal, source);
        // A holder removes the file as it lets go: a lock taken on a file that was removed
        // meanwhile is no lock, and is taken again on the new file.
        for _ in 0..100 {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err)?;
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    return Err(io_err(e));
                }
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                return Err(UploadError::Busy {
                    path: journal.to_path_buf(),
                    lock: path,
                    pid: text.trim().parse().ok(),
                });
            }
            let same = match (file.metadata(), std::fs::metadata(&path)) {
                (Ok(held), Ok(now)) => held.dev() == now.dev() && held.ino() == now.ino(),
                _ => false,
            };
            if same {
                file.set_len(0).map_err(io_err)?;
                file.rewind().map_err(io_err)?;
                writeln!(file, "{}", std::process::id()).map_err(io_err)?;
                return Ok(JournalLock { path, _file: file });
            }
        }
        Err(io_err(std::io::Error::other(
            "cannot take the journal's lock",
        )))
    }

    #[cfg(not(unix))]
    fn acquire_at(journal: &Path, path: PathBuf) -> Result<JournalLock, UploadError> {
        let io_err = |source| journal_error(journal, source);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    use std::io::Write;
                    writeln!(file, "{}", std::process::id()).map_err(io_err)?;
                    return Ok(JournalLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    match pid {
                        // Held by a live process (where its existence can be told).
                        Some(pid) if Path::new(&format!("/proc/{pid}")).exists() => {
                            return Err(UploadError::Busy {
                                path: journal.to_path_buf(),
                                lock: path,
                                pid: Some(pid),
                            })
                        }
                        // Left by a run that ended without cleaning up: taken over.
                        _ => std::fs::remove_file(&path).map_err(io_err)?,
                    }
                }
                Err(e) => return Err(io_err(e)),
            }
        }
        Err(io_err(std::io::Error::other(
            "cannot take the journal's lock",
        )))
    }
}

impl Drop for JournalLock {
    fn drop(&mut self) {
        // Removed while still held (the file closes after this), so that nobody takes a lock
        // on it that a newer file would not know of: `acquire_at` checks for that.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What [`submit_once`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedOnce {
    /// The job's id.
    pub job_id: String,
    /// The job was in the journal already: nothing was sent.
    pub resumed: bool,
    /// The job may have been made twice: an earlier run sent the call and ended before its
    /// answer was journalled (killed, say), or an answer was lost and the call sent again.
    pub possibly_duplicated: bool,
}

/// Submits one job without a file (`emails`, `query`), once: the journal at `journal_path`
/// records it under a key made of its parameters, so the same call made again returns the job
/// it already made instead of submitting another.
pub fn submit_once(
    client: &Client,
    params: &Map<String, Value>,
    journal_path: &Path,
) -> Result<SubmittedOnce, UploadError> {
    let journal_err = |source| journal_error(journal_path, source);
    let _lock = JournalLock::acquire(journal_path)?;
    let mut journal = Journal::load(journal_path).map_err(journal_err)?;
    let text = Value::Object(params.clone()).to_string();
    let key = format!("params:{}", sha256_hex(text.as_bytes()));
    let entry = journal.entry_mut(&key);
    if let Some(id) = &entry.job_id {
        return Ok(SubmittedOnce {
            job_id: id.clone(),
            resumed: true,
            possibly_duplicated: entry.possibly_duplicated,
        });
    }
    // An attempt with neither an answer nor a failure recorded: the run that made it ended
    // while the call was out (the small form of a job without a file goes out whole at once),
    // so its job may exist.
    entry.possibly_duplicated |= entry.attempts > 0 && entry.last_error.is_none();
    entry.job = params
        .get("job")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    entry.params_sha256 = sha256_hex(text.as_bytes());
    entry.bytes = text.len() as u64;
    entry.record_attempt();
    journal.save(journal_path).map_err(journal_err)?;
    let result = client.submit_job(&Value::Object(params.clone()), None);
    let entry = journal.entry_mut(&key);
    let outcome = match result {
        Ok(submitted) => {
            entry.record_submitted(&submitted);
            Ok(SubmittedOnce {
                job_id: submitted.job_id,
                resumed: false,
                possibly_duplicated: entry.possibly_duplicated,
            })
        }
        Err(e) => {
            entry.record_failure(&e);
            Err(e)
        }
    };
    let saved = journal.save(journal_path);
    match (outcome, saved) {
        (Ok(done), Err(source)) => Err(UploadError::Journal {
            path: journal_path.to_path_buf(),
            source,
            submitted: vec![(PathBuf::from(key), done.job_id)],
        }),
        (Ok(ok), Ok(())) => Ok(ok),
        (Err(e), _) => Err(UploadError::Submit(e)),
    }
}

/// Records a job's status in the journal at `journal_path`, in the entry that holds its id (for
/// a job [`submit_once`] made and the caller then watched with [`wait_for_job`]; `upload_parts`
/// records its parts' statuses itself). A job the journal does not hold is left alone.
pub fn record_job_status(journal_path: &Path, status: &JobStatus) -> Result<(), UploadError> {
    let journal_err = |source| journal_error(journal_path, source);
    let _lock = JournalLock::acquire(journal_path)?;
    let mut journal = Journal::load(journal_path).map_err(journal_err)?;
    let Some(entry) = journal
        .parts
        .iter_mut()
        .find(|e| e.job_id.as_deref() == Some(status.job_id.as_str()))
    else {
        return Ok(());
    };
    entry.record_status(&status.status);
    journal.save(journal_path).map_err(journal_err)
}

/// Polls a job until it ends (or `poll.timeout`, or `cancel`); `on_status` sees every status.
pub fn wait_for_job(
    client: &Client,
    job_id: &str,
    poll: &PollPolicy,
    cancel: &AtomicBool,
    mut on_status: impl FnMut(&JobStatus),
) -> Result<JobStatus, Error> {
    let started = Instant::now();
    let mut interval = poll.initial;
    loop {
        let status = client.job_status(job_id)?;
        on_status(&status);
        if status.status.is_final()
            || poll.timeout.is_some_and(|t| started.elapsed() >= t)
            || !sleep(interval, cancel)
        {
            return Ok(status);
        }
        interval = (interval * 3 / 2).min(poll.max);
    }
}

fn sleep(d: Duration, cancel: &AtomicBool) -> bool {
    sleep_unless(d, || cancel.load(Ordering::SeqCst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_becomes_the_call_parameters() {
        let mut spec = JobSpec::new(JobKind::Import);
        spec.list = Some("Main".into());
        spec.report_email = Some("ops@example.com".into());
        assert_eq!(
            Value::Object(spec.params()),
            serde_json::json!({"job": "import", "list": "Main", "report_email": "ops@example.com"})
        );
    }
}
