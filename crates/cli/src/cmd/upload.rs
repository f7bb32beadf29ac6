//! `sailbulk upload`: submit files as `update` or `import` jobs, journalled and resumable.

use super::api::{cancel_on_ctrl_c, status_line, ApiArgs};
use super::{
    human_bytes, parent_dir, print_error, publish_dir, staging_dir, EXIT_ERROR, EXIT_FINDINGS,
    EXIT_OK,
};
use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sailbulk_build::{
    parse_size, part_cap, sha256_file, split_file, Manifest, SplitOptions, MANIFEST_FILE,
    REJECTS_FILE,
};
use sailbulk_spec::JobKind;
use sailbulk_upload::{
    submit_once, upload_parts, wait_for_job, JobSpec, JobState, PartFile, UploadError, UploadEvent,
    UploadOptions, JOURNAL_FILE,
};
use serde_json::Value;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
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
                // Refused by the API: the job failed. Not reached or cancelled: could not run.
                let refused = matches!(&e, UploadError::Submit(err) if err.api_error().is_some());
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
                println!("{}", status_line(&status));
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

    let (parts, default_journal) = resolve_inputs(args, job)?;
    let journal = args.journal.clone().unwrap_or(default_journal);
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
                println!("{name}  {}{note}", status_line(status));
                if matches!(status.status, JobState::Error | JobState::Incomplete)
                    || (args.wait && !status.status.is_final())
                {
                    code = code.max(EXIT_FINDINGS);
                }
            }
            (Some(id), None, error) => {
                let last = o.last_status.as_deref().unwrap_or("pending");
                println!("{name}  {id}  {last}{note}");
                if let Some(error) = error {
                    eprintln!("sailbulk: {name}: {error}");
                    code = code.max(EXIT_FINDINGS);
                }
            }
            (None, _, error) => {
                println!("{name}  not submitted");
                eprintln!(
                    "sailbulk: failed to submit `{name}` to {}: {}",
                    client.base_url(),
                    error.as_deref().unwrap_or("unknown error")
                );
                // Refused by the API: the job failed. Not sent (network, Ctrl-C): could not run.
                code = code.max(if o.refused { EXIT_FINDINGS } else { EXIT_ERROR });
            }
        }
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

/// The parts to upload and the default journal.
fn resolve_inputs(args: &Args, job: JobKind) -> Result<(Vec<PartFile>, PathBuf), String> {
    let mut parts = Vec::new();
    let mut journal = None;
    for input in &args.inputs {
        let (mut found, dir) = if input.is_dir() {
            let manifest = input.join(MANIFEST_FILE);
            if manifest.is_file() {
                (manifest_parts(&manifest, job)?, input.clone())
            } else {
                (dir_parts(input, args.journal.as_deref())?, input.clone())
            }
        } else if input.file_name().is_some_and(|n| n == MANIFEST_FILE) {
            (manifest_parts(input, job)?, parent_dir(input).to_path_buf())
        } else {
            let bytes = std::fs::metadata(input)
                .map_err(|e| format!("cannot read {}: {e}", input.display()))?
                .len();
            if bytes > job.max_file_bytes() && args.split {
                let dir = split_big(args, input, job)?;
                (manifest_parts(&dir.join(MANIFEST_FILE), job)?, dir)
            } else {
                (
                    vec![PartFile {
                        path: input.clone(),
                        expected_sha256: None,
                    }],
                    parent_dir(input).to_path_buf(),
                )
            }
        };
        let default = dir.join(JOURNAL_FILE);
        match &journal {
            None => journal = Some(default),
            // The journal is the first input's: with inputs whose journals would differ, another
            // order, or a run with some of them, would read another journal and send again what
            // this one records as sent.
            Some(first) if args.journal.is_none() && !same_dir(first, &default) => {
                return Err(format!(
                    "{} and {} would keep their upload journals in different places ({} and {}); name one for all of them with --journal FILE",
                    args.inputs[0].display(),
                    input.display(),
                    first.display(),
                    default.display()
                ));
            }
            Some(_) => {}
        }
        parts.append(&mut found);
    }
    Ok((
        parts,
        journal.unwrap_or_else(|| PathBuf::from(JOURNAL_FILE)),
    ))
}

/// Whether two journal paths name the same file (their directories compared canonically).
fn same_dir(a: &Path, b: &Path) -> bool {
    let dir = |p: &Path| {
        let parent = parent_dir(p);
        std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf())
    };
    a.file_name() == b.file_name() && dir(a) == dir(b)
}

fn manifest_parts(path: &Path, job: JobKind) -> Result<Vec<PartFile>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not a manifest: {e}", path.display()))?;
    if manifest.job != job.as_str() {
        return Err(format!(
            "{} was made for {} jobs, not {}",
            path.display(),
            manifest.job,
            job.as_str()
        ));
    }
    let dir = parent_dir(path);
    Ok(manifest
        .parts
        .iter()
        .map(|p| PartFile {
            path: dir.join(&p.file),
            expected_sha256: Some(p.sha256.clone()),
        })
        .collect())
}

fn dir_parts(dir: &Path, journal: Option<&Path>) -> Result<Vec<PartFile>, String> {
    let journal = journal.and_then(|j| std::path::absolute(j).ok());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let path = std::path::absolute(p).ok();
            let lock_of = |j: &Path| {
                let mut lock = j.as_os_str().to_owned();
                lock.push(".lock");
                PathBuf::from(lock)
            };
            !name.starts_with('.')
                && ![JOURNAL_FILE, MANIFEST_FILE, REJECTS_FILE].contains(&name.as_str())
                && name != format!("{JOURNAL_FILE}.lock")
                && journal.as_deref() != path.as_deref()
                && journal.as_deref().map(lock_of) != path
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{} holds no files to upload", dir.display()));
    }
    Ok(files
        .into_iter()
        .map(|path| PartFile {
            path,
            expected_sha256: None,
        })
        .collect())
}

/// Splits a file over the limit into FILE.parts/; a re-run reuses the parts of the same input.
fn split_big(args: &Args, input: &Path, job: JobKind) -> Result<PathBuf, String> {
    let mut name = input.as_os_str().to_owned();
    name.push(".parts");
    let dir = PathBuf::from(name);
    let input_bytes = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
    if let Ok(text) = std::fs::read(dir.join(MANIFEST_FILE)) {
        if let Ok(manifest) = serde_json::from_slice::<Manifest>(&text) {
            let changed = || {
                format!(
                    "{} changed after it was split into {}; remove that directory to split it again (its upload-journal.json records what was sent from the parts: keep a copy)",
                    input.display(),
                    dir.display()
                )
            };
            let cap = part_cap(job, args.max_bytes).map_err(|e| e.to_string())?;
            match &manifest.source.sha256 {
                // The input's checksum decides: a file rewritten to the same size, with its old
                // modification time (`cp -p`, `rsync -t`, an archive), is still a changed file.
                Some(split_from) => {
                    let now = sha256_file(input)
                        .map_err(|e| format!("cannot read {}: {e}", input.display()))?;
                    if now != *split_from {
                        return Err(changed());
                    }
                }
                // A manifest without it (written by an earlier version): the modification times.
                None => {
                    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
                    if modified(input) > modified(&dir.join(MANIFEST_FILE)) {
                        return Err(changed());
                    }
                }
            }
            if manifest.source.bytes == input_bytes
                && manifest.job == job.as_str()
                && manifest.max_bytes == cap
            {
                eprintln!(
                    "sailbulk: using the parts already split from {} in {}",
                    input.display(),
                    dir.display()
                );
                return Ok(dir);
            }
        }
        return Err(format!(
            "{} exists and does not hold parts of {} for this job and --max-bytes; remove it or split by hand (its upload-journal.json, if any, records what was sent from those parts: keep a copy)",
            dir.display(),
            input.display()
        ));
    }
    // The input's checksum goes into the manifest, for a re-run to compare with. It is taken
    // before the split, so a file that changes meanwhile makes the next run refuse the parts.
    let input_sha256 =
        sha256_file(input).map_err(|e| format!("cannot read {}: {e}", input.display()))?;
    let staging = staging_dir(input, &dir, false).map_err(|e| format!("{}: {e}", dir.display()))?;
    let options = SplitOptions {
        job,
        max_bytes: args.max_bytes,
        skip_invalid: false,
        validate: !args.no_validate,
        threads: 0,
    };
    let mut outcome = split_file(input, staging.path(), &options).map_err(|e| e.to_string())?;
    outcome.manifest.source.sha256 = Some(input_sha256);
    outcome
        .manifest
        .write(&staging.path().join(MANIFEST_FILE))
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    publish_dir(staging, &dir).map_err(|e| format!("cannot write {}: {e}", dir.display()))?;
    eprintln!(
        "sailbulk: split {} ({}) into {} parts in {}",
        input.display(),
        human_bytes(outcome.manifest.source.bytes),
        outcome.manifest.parts.len(),
        dir.display()
    );
    Ok(dir)
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
                    self.log(&format!(
                        "sailbulk: {}: {}",
                        part.display(),
                        status_line(status)
                    ));
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
