//! `sailbulk upload`: submit files as `update` or `import` jobs, journalled and resumable.

use super::api::{cancel_on_ctrl_c, ApiArgs};
use super::{error_chain, human_bytes, print_error, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sailbulk_build::{parse_size, part_cap};
use sailbulk_spec::JobKind;
use sailbulk_upload::{
    record_job_status, resolve_inputs, submit_once, upload_parts, wait_for_job, InputOptions,
    JobSpec, JobState, PartVerdict, SplitPolicy, UploadError, UploadEvent, UploadOptions,
    JOURNAL_FILE,
};
use serde_json::Value;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Arguments of `sailbulk upload`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files, directories (their manifest.json, or every file in them) or manifest.json files
    /// to upload, one job per file.
    #[arg(value_name = "FILE|DIR|manifest.json")]
    inputs: Vec<PathBuf>,

    /// The job type.
    #[arg(long, value_enum, default_value_t = JobArg::Update)]
    job: JobArg,

    /// For import jobs: the list to import into (created if missing).
    #[arg(long, value_name = "NAME")]
    list: Option<String>,

    /// Submit one job for these comma-separated addresses instead of files.
    #[arg(long, value_name = "A,B,...", conflicts_with_all = ["inputs", "query_json"])]
    emails: Option<String>,

    /// Submit one update job for the users a query selects, instead of files, as in
    /// '{"source_list":"Main"}'.
    #[arg(long, value_name = "JSON", conflicts_with = "inputs")]
    query_json: Option<String>,

    /// The `update` object applied to every user of an update job, as in
    /// '{"vars":{"source":"crm"},"lists":{"Main":1}}'.
    #[arg(long, value_name = "JSON", conflicts_with = "update_file")]
    update_json: Option<String>,

    /// Read the `update` object from a file.
    #[arg(long, value_name = "FILE")]
    update_file: Option<PathBuf>,

    /// An address that gets a short report when each job ends.
    #[arg(long, value_name = "EMAIL")]
    report_email: Option<String>,

    /// A URL that gets each job's status, signed, when it ends.
    #[arg(long, value_name = "URL")]
    postback_url: Option<String>,

    /// Send files without checking them first (they are checked by default, and none is sent
    /// if any is invalid).
    #[arg(long)]
    no_validate: bool,

    /// Split files over the job's limit into parts (in FILE.parts/, with a manifest) and upload
    /// the parts; without it such files are refused.
    #[arg(long)]
    split: bool,

    /// With --split: the cap per part (at most, and by default, the job's upload limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_size, requires = "split")]
    max_bytes: Option<u64>,

    /// Poll each job until it is completed, error or incomplete, and print its final status.
    #[arg(long)]
    wait: bool,

    /// Parts uploaded at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    concurrency: usize,

    /// The journal that makes re-runs resume (default: upload-journal.json beside the manifest,
    /// in the directory, or beside the first file).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,

    /// Do not show progress bars (they show only when stderr is a terminal).
    #[arg(long)]
    no_progress: bool,

    #[command(flatten)]
    api: ApiArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum JobArg {
    Update,
    Import,
}

/// Runs `sailbulk upload`; returns the exit status.
pub fn run(args: Args) -> u8 {
    match upload(&args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("sailbulk: error: {message}");
            EXIT_ERROR
        }
    }
}

fn upload(args: &Args) -> Result<u8, String> {
    let job = match args.job {
        JobArg::Update => JobKind::Update,
        JobArg::Import => JobKind::Import,
    };
    let mut spec = JobSpec::new(job);
    spec.report_email = args.report_email.clone();
    spec.postback_url = args.postback_url.clone();
    match job {
        JobKind::Import => {
            spec.list = Some(args.list.clone().ok_or("an import job needs --list NAME")?);
            if args.update_json.is_some() || args.update_file.is_some() || args.query_json.is_some()
            {
                return Err(
                    "--update-json, --update-file and --query-json are for update jobs".into(),
                );
            }
        }
        _ => {
            if args.list.is_some() {
                return Err("--list is for import jobs; an update job names lists in its lines or in --update-json".into());
            }
            spec.update = update_object(args)?;
        }
    }
    if args.inputs.is_empty() && args.emails.is_none() && args.query_json.is_none() {
        return Err("nothing to upload: give files, --emails or --query-json".into());
    }
    // Refused up front, whether or not a file turns out to need splitting.
    part_cap(job, args.max_bytes).map_err(|e| format!("--max-bytes: {e}"))?;
    let cancel = cancel_on_ctrl_c();
    let bars = Bars::new(!args.no_progress && std::io::stderr().is_terminal());
    let log = bars.clone_handle();
    let client = args.api.client(&cancel, move |event| {
        log.println(&format!("sailbulk: {event}"))
    })?;

    if args.emails.is_some() || args.query_json.is_some() {
        let mut params = spec.params();
        if let Some(emails) = &args.emails {
            params.insert("emails".into(), emails.clone().into());
        }
        if let Some(query) = &args.query_json {
            let query: Value = serde_json::from_str(query)
                .map_err(|e| format!("--query-json is not JSON: {e}"))?;
            params.insert("query".into(), query);
        }
        let journal = args
            .journal
            .clone()
            .unwrap_or_else(|| PathBuf::from(JOURNAL_FILE));
        let (job_id, resumed) = match submit_once(&client, &params, &journal) {
            Ok(done) => {
                if done.possibly_duplicated {
                    eprintln!(
                        "sailbulk: warning: job {} may have been made twice: an earlier send of this job was not answered (see journal {})",
                        done.job_id,
                        journal.display()
                    );
                }
                (done.job_id, done.resumed)
            }
            Err(e) => {
                print_error("", &e);
                if let UploadError::Journal { submitted, .. } = &e {
                    for (_, id) in submitted {
                        println!("job {id}  submitted (not in the journal)");
                    }
                }
                // Refused by the API: the job failed. Not reached, cancelled, or credentials the
                // API does not take (as a run with files finds them before sending): could not
                // run.
                let refused = matches!(&e, UploadError::Submit(err)
                    if err.api_error().is_some_and(|a| !a.refuses_credentials()));
                return Ok(if refused { EXIT_FINDINGS } else { EXIT_ERROR });
            }
        };
        if resumed {
            eprintln!(
                "sailbulk: this job was submitted before as {job_id} (journal {}); not sent again",
                journal.display()
            );
        }
        println!(
            "job {job_id}  {}",
            if resumed {
                "submitted before"
            } else {
                "pending"
            }
        );
        if !args.wait {
            return Ok(EXIT_OK);
        }
        return match wait_for_job(&client, &job_id, &args.api.poll(), &cancel, |_| {}) {
            Ok(_) if cancel.load(std::sync::atomic::Ordering::SeqCst) => {
                eprintln!(
                    "sailbulk: interrupted; `sailbulk status {job_id} --wait` follows the job"
                );
                Ok(EXIT_ERROR)
            }
            Ok(status) => {
                println!("{status}");
                if let Err(e) = record_job_status(&journal, &status) {
                    print_error("", &e);
                }
                Ok(if status.status == JobState::Completed {
                    EXIT_OK
                } else {
                    EXIT_FINDINGS
                })
            }
            Err(e) => {
                print_error(&format!("job {job_id}: "), &e);
                Ok(EXIT_ERROR)
            }
        };
    }

    let resolved = resolve_inputs(
        &args.inputs,
        &InputOptions {
            job,
            journal: args.journal.clone(),
            split: args.split.then_some(SplitPolicy {
                max_bytes: args.max_bytes,
                validate: !args.no_validate,
            }),
        },
    )
    .map_err(|e| error_chain(&e))?;
    for split in &resolved.splits {
        if split.reused {
            eprintln!(
                "sailbulk: using the parts already split from {} in {}",
                split.input.display(),
                split.dir.display()
            );
        } else {
            eprintln!(
                "sailbulk: split {} ({}) into {} parts in {}",
                split.input.display(),
                human_bytes(split.manifest.source.bytes),
                split.manifest.parts.len(),
                split.dir.display()
            );
        }
    }
    let (parts, journal) = (resolved.parts, resolved.journal);
    let mut options = UploadOptions::new(spec);
    options.validate = !args.no_validate;
    options.concurrency = args.concurrency.max(1);
    options.wait = args.wait;
    options.poll = args.api.poll();
    if args.wait {
        bars.track_jobs(parts.len());
    }
    let on_event = |event: &UploadEvent<'_>| bars.event(event);
    let outcomes = match upload_parts(&client, &parts, &journal, &options, &on_event, &cancel) {
        Ok(o) => o,
        Err(UploadError::Invalid(reports)) => {
            bars.clear();
            for report in &reports {
                for finding in &report.findings {
                    println!("{}:{finding}", report.path);
                }
                eprintln!(
                    "sailbulk: {}: {} error(s), {} warning(s)",
                    report.path, report.summary.errors, report.summary.warnings
                );
            }
            eprintln!(
                "sailbulk: {} file(s) failed validation; nothing was sent (--no-validate sends anyway)",
                reports.len()
            );
            return Ok(EXIT_FINDINGS);
        }
        Err(e @ UploadError::TooLarge { .. }) => {
            bars.clear();
            print_error("", &e);
            eprintln!("sailbulk: pass --split to upload it in parts");
            return Ok(EXIT_FINDINGS);
        }
        Err(e) => {
            bars.clear();
            print_error("", &e);
            if let UploadError::Journal { submitted, .. } = &e {
                for (path, id) in submitted {
                    println!("{}  {id}  submitted (not in the journal)", path.display());
                }
            }
            return Ok(EXIT_ERROR);
        }
    };
    bars.clear();
    let mut code = EXIT_OK;
    for o in &outcomes {
        let name = o.path.display();
        let note = if o.resumed {
            "  (from an earlier run)"
        } else {
            ""
        };
        if o.possibly_duplicated {
            eprintln!(
                "sailbulk: warning: {name} may have been submitted twice: an answer was lost after the whole file was sent, and it was sent again"
            );
        }
        match (&o.job_id, &o.status, &o.error) {
            (Some(_), Some(status), _) => {
                println!("{name}  {status}{note}");
            }
            (Some(id), None, error) => {
                let last = o.last_status.as_deref().unwrap_or("pending");
                println!("{name}  {id}  {last}{note}");
                if let Some(error) = error {
                    eprintln!("sailbulk: {name}: {error}");
                }
            }
            (None, _, error) => {
                println!("{name}  not submitted");
                eprintln!(
                    "sailbulk: failed to submit `{name}` to {}: {}",
                    client.base_url(),
                    error.as_deref().unwrap_or("unknown error")
                );
            }
        }
        // Refused (this part or another) or failed: exit 1. Not sent (network, Ctrl-C), or its
        // status unread when waited for: could not run.
        code = code.max(match o.verdict(args.wait) {
            PartVerdict::Done => EXIT_OK,
            PartVerdict::Failed => EXIT_FINDINGS,
            PartVerdict::Unfinished => EXIT_ERROR,
        });
    }
    let submitted = outcomes.iter().filter(|o| o.job_id.is_some()).count();
    eprintln!(
        "sailbulk: {submitted} of {} file(s) submitted as {} jobs; journal {}",
        outcomes.len(),
        job.as_str(),
        journal.display()
    );
    if cancel.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("sailbulk: interrupted; run the same command again to continue");
        code = EXIT_ERROR;
    }
    Ok(code)
}

fn update_object(args: &Args) -> Result<Option<Value>, String> {
    let text = match (&args.update_json, &args.update_file) {
        (Some(text), _) => text.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        (None, None) => return Ok(None),
    };
    let value: Value =
        serde_json::from_str(&text).map_err(|e| format!("the update object is not JSON: {e}"))?;
    if !value.is_object() {
        return Err("the update object must be a JSON object, as in {\"vars\":{\"a\":1}}".into());
    }
    Ok(Some(value))
}

/// Locks a mutex; the bars and statuses a panicked thread leaves behind are still usable.
fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Progress bars (bytes per part being sent) when stderr is a terminal; log lines either way.
struct Bars {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<PathBuf, ProgressBar>>,
    /// The last status logged per part, so that only changes are logged.
    statuses: Mutex<HashMap<PathBuf, String>>,
    /// Jobs finished, with --wait.
    jobs: Mutex<Option<ProgressBar>>,
}

/// A handle that prints above the bars.
#[derive(Clone)]
struct LogHandle(Option<MultiProgress>);

impl LogHandle {
    fn println(&self, line: &str) {
        match &self.0 {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }
}

impl Bars {
    fn new(enabled: bool) -> Bars {
        Bars {
            multi: enabled.then(MultiProgress::new),
            bars: Mutex::new(HashMap::new()),
            statuses: Mutex::new(HashMap::new()),
            jobs: Mutex::new(None),
        }
    }

    /// Shows a bar of jobs finished out of `total`.
    fn track_jobs(&self, total: usize) {
        if let Some(multi) = &self.multi {
            let bar = multi.add(ProgressBar::new(total as u64));
            bar.set_style(
                ProgressStyle::with_template("{msg:30!} [{bar:30}] {pos}/{len} jobs finished")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message("jobs");
            bar.enable_steady_tick(std::time::Duration::from_millis(250));
            *locked(&self.jobs) = Some(bar);
        }
    }

    fn clone_handle(&self) -> LogHandle {
        LogHandle(self.multi.clone())
    }

    fn log(&self, line: &str) {
        self.clone_handle().println(line);
    }

    fn event(&self, event: &UploadEvent<'_>) {
        match event {
            UploadEvent::Resumed { part, job_id } => self.log(&format!(
                "sailbulk: {}: already submitted as job {job_id}; not sent again",
                part.display()
            )),
            UploadEvent::Sending {
                part,
                bytes,
                attempt,
                after_full_send,
            } => {
                if *after_full_send {
                    self.log(&format!(
                        "sailbulk: warning: {}: an earlier run sent all of it and got no answer; the job may exist, and sending it again may duplicate it (marked in the journal)",
                        part.display()
                    ));
                } else if *attempt > 1 {
                    self.log(&format!(
                        "sailbulk: {}: sent before without a job id coming back; sending again (submission {attempt})",
                        part.display()
                    ));
                }
                if let Some(multi) = &self.multi {
                    let bar = multi.add(ProgressBar::new(*bytes));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_message(
                        part.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    );
                    locked(&self.bars).insert(part.to_path_buf(), bar);
                }
            }
            UploadEvent::Progress { part, sent } => {
                if let Some(bar) = locked(&self.bars).get(*part) {
                    bar.set_position(*sent);
                }
            }
            UploadEvent::Submitted { part, job_id } => {
                if let Some(bar) = locked(&self.bars).remove(*part) {
                    bar.finish_and_clear();
                }
                self.log(&format!(
                    "sailbulk: {}: submitted as job {job_id}",
                    part.display()
                ));
            }
            UploadEvent::Failed { part, error } => {
                if let Some(bar) = locked(&self.bars).remove(*part) {
                    bar.abandon();
                }
                self.log(&format!("sailbulk: {}: {error}", part.display()));
            }
            UploadEvent::Status { part, status } => {
                let changed = locked(&self.statuses)
                    .insert(part.to_path_buf(), status.status.to_string())
                    .is_none_or(|last| last != status.status.as_str());
                if changed && status.status.is_final() {
                    if let Some(bar) = &*locked(&self.jobs) {
                        bar.inc(1);
                    }
                }
                if changed && !status.status.is_final() {
                    self.log(&format!("sailbulk: {}: {status}", part.display()));
                }
            }
            _ => {}
        }
    }

    fn clear(&self) {
        for (_, bar) in locked(&self.bars).drain() {
            bar.finish_and_clear();
        }
        if let Some(bar) = locked(&self.jobs).take() {
            bar.finish_and_clear();
        }
    }
}
