//! `sailbulk validate`: check files against every documented rule and report by line and column.

use super::{error_chain, print_error, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use clap::{Command, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use sailbulk_build::AtomicFile;
use sailbulk_parse::{
    write_finding_text, FileReport, Finding, Format, LineBlock, ListLimit, Sink, Spool,
    ValidatorBuilder, SPOOL_MEMORY_BYTES,
};
use sailbulk_spec::JobKind;
use serde_json::{json, Map, Value};
use std::io::{self, BufWriter, IsTerminal, Seek, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// Arguments of `sailbulk validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files to check; `-` reads standard input. Gzip files are decompressed as they are read.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// The job the files are for: sets the size limit.
    #[arg(long, value_enum, default_value_t = JobArg::Update)]
    job: JobArg,

    /// What each line holds; `auto` looks at the first non-blank line (`{` or `[` means JSON).
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,

    /// How to print the report on stdout.
    #[arg(long, value_enum, default_value_t = ReportArg::Text)]
    report: ReportArg,

    /// Findings listed per file (0 lists all); the counts are always complete.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_errors: usize,

    /// Treat warnings as errors.
    #[arg(long)]
    strict: bool,

    /// Threads to check with (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Write every valid line here, byte for byte (all files, in order).
    #[arg(long, value_name = "FILE")]
    valid_out: Option<PathBuf>,

    /// Write every line with an error here, byte for byte (all files, in order).
    #[arg(long, value_name = "FILE")]
    invalid_out: Option<PathBuf>,

    /// Read files instead of memory-mapping them.
    #[arg(long)]
    no_mmap: bool,

    /// Never show a progress bar (it shows only when stderr is a terminal).
    #[arg(long)]
    no_progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum JobArg {
    Update,
    Import,
}

impl From<JobArg> for JobKind {
    fn from(j: JobArg) -> JobKind {
        match j {
            JobArg::Update => JobKind::Update,
            JobArg::Import => JobKind::Import,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Auto,
    Json,
    Emails,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportArg {
    Text,
    Json,
}

/// Adds what the help text takes from `sailbulk-spec`.
pub fn augment(cmd: Command) -> Command {
    cmd.after_help(format!(
        "Size limits: update files at most {} bytes, import files at most {} bytes (decompressed).\n\
         Exit status: 0 every file valid (warnings allowed), 1 a file has errors, 2 could not run.",
        JobKind::Update.max_file_bytes(),
        JobKind::Import.max_file_bytes()
    ))
}

/// Writes valid and invalid lines to temporary files that replace their targets only when the
/// whole run succeeds.
struct Router {
    valid: Option<Output>,
    invalid: Option<Output>,
}

impl Router {
    /// The outputs `args` asks for; refused with a message, before any file is read: an output
    /// that cannot be created, both outputs on one file (one would replace the other), and an
    /// output that is one of the inputs (the lines it does not get would be lost).
    fn create(args: &Args) -> Result<Router, String> {
        let open = |flag: &str, target: &Option<PathBuf>| -> Result<Option<Output>, String> {
            let Some(target) = target else {
                return Ok(None);
            };
            let out = Output::create(target).map_err(|e| {
                format!(
                    "cannot create {} ({flag}): {}",
                    target.display(),
                    error_chain(&e)
                )
            })?;
            if let Some(input) = args.files.iter().find(|f| out.file.replaces(f)) {
                return Err(format!(
                    "{flag} {} is the input {}: writing it would lose the lines it does not get",
                    target.display(),
                    input.display()
                ));
            }
            Ok(Some(out))
        };
        let router = Router {
            valid: open("--valid-out", &args.valid_out)?,
            invalid: open("--invalid-out", &args.invalid_out)?,
        };
        if let (Some(v), Some(i)) = (&router.valid, &router.invalid) {
            if v.file.destination() == i.file.destination() || v.file.replaces(i.file.destination())
            {
                return Err(format!(
                    "--valid-out {} and --invalid-out {} are the same file",
                    v.file.target().display(),
                    i.file.target().display()
                ));
            }
        }
        Ok(router)
    }
}

struct Output {
    file: AtomicFile,
    /// The last byte written was not a line end (a file's last line without `\n`).
    open_line: bool,
    /// Nothing has been written yet.
    empty: bool,
}

/// UTF-8's byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Output {
    fn create(target: &Path) -> io::Result<Output> {
        Ok(Output {
            file: AtomicFile::create(target)?,
            open_line: false,
            empty: true,
        })
    }

    /// Writes a run of lines; `file_start` says that it starts an input file, whose byte-order
    /// mark is dropped when it would land in the middle of the output (where the mark is no
    /// longer one, and makes its line invalid).
    fn write(&mut self, bytes: &[u8], file_start: bool) -> io::Result<()> {
        let bytes = match bytes.strip_prefix(BOM) {
            Some(rest) if file_start && !self.empty => rest,
            _ => bytes,
        };
        if bytes.is_empty() {
            return Ok(());
        }
        self.file.write_all(bytes)?;
        self.open_line = bytes.last() != Some(&b'\n');
        self.empty = false;
        Ok(())
    }

    /// Starts a new input file: ends a last line left open by the previous one.
    fn next_file(&mut self) -> io::Result<()> {
        if self.open_line {
            self.file.write_all(b"\n")?;
            self.open_line = false;
        }
        Ok(())
    }
}

/// The sink of one file: prints or keeps findings, routes lines, moves the progress bar.
struct CliSink<'r> {
    path: String,
    /// The findings listed (`--max-errors`) and those only counted.
    limit: ListLimit,
    /// The findings the JSON report lists (none for the text report, which prints them).
    kept: Spool,
    /// Keeping a finding failed (its temporary file could not be written): the run stops.
    kept_error: Option<io::Error>,
    text: Option<&'r mut BufWriter<io::Stdout>>,
    broken_pipe: bool,
    router: &'r mut Router,
    progress: Option<ProgressBar>,
}

impl Sink for CliSink<'_> {
    fn finding(&mut self, finding: Finding) -> ControlFlow<()> {
        if !self.limit.take() {
            return ControlFlow::Continue(());
        }
        match &mut self.text {
            Some(out) => {
                let written = match &self.progress {
                    None => write_finding_text(out, &self.path, &finding),
                    Some(bar) => {
                        let mut line = Vec::new();
                        write_finding_text(&mut line, &self.path, &finding)
                            .and_then(|()| write_over_bar(out, bar, &line))
                    }
                };
                if let Err(e) = written {
                    if e.kind() == io::ErrorKind::BrokenPipe {
                        self.broken_pipe = true;
                        return ControlFlow::Break(());
                    }
                }
            }
            None => {
                if let Err(e) = self.kept.push(&finding) {
                    self.kept_error = Some(e);
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn wants_lines(&self) -> bool {
        self.router.valid.is_some() || self.router.invalid.is_some()
    }

    fn details_wanted(&self) -> u64 {
        self.limit.left()
    }

    fn lines(&mut self, block: &LineBlock<'_>) -> io::Result<()> {
        let router = &mut *self.router;
        // The first run of the file's first block starts with its first line.
        let mut file_start = block.first_line == 1;
        block.for_each_run(|bytes, valid| {
            let out = if valid {
                &mut router.valid
            } else {
                &mut router.invalid
            };
            let first = std::mem::take(&mut file_start);
            match out {
                Some(out) => out.write(bytes, first),
                None => Ok(()),
            }
        })
    }

    fn progress(&mut self, bytes: u64) {
        if let Some(bar) = &self.progress {
            bar.set_position(bytes);
        }
    }
}

/// Writes a line of the report while a progress bar shows on the terminal: the report reaches the
/// terminal only while the bar is hidden, so that the two never share a line. The buffer is
/// flushed out of the bar's way before it would fill (and flush itself in the middle of the bar).
fn write_over_bar(
    out: &mut BufWriter<io::Stdout>,
    bar: &ProgressBar,
    line: &[u8],
) -> io::Result<()> {
    if out.buffer().len() + line.len() <= out.capacity() {
        return out.write_all(line);
    }
    bar.suspend(|| {
        out.flush()?;
        out.write_all(line)
    })
}

fn progress_bar(path: &Path, enabled: bool) -> Option<ProgressBar> {
    if !enabled || !io::stderr().is_terminal() {
        return None;
    }
    let len = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let bar = match len {
        Some(len) => ProgressBar::new(len),
        None => ProgressBar::new_spinner(),
    };
    let style = ProgressStyle::with_template(
        "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(path.display().to_string());
    Some(bar)
}

/// Runs `sailbulk validate`; returns the exit status.
pub fn run(args: Args) -> u8 {
    let mut builder = ValidatorBuilder::new();
    builder
        .job(args.job.into())
        .format(match args.format {
            FormatArg::Auto => None,
            FormatArg::Json => Some(Format::Json),
            FormatArg::Emails => Some(Format::Emails),
        })
        .strict(args.strict)
        .threads(args.threads.unwrap_or(0))
        .mmap(!args.no_mmap);
    let validator = builder.build();

    // Standard input can be read once.
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        eprintln!(
            "sailbulk: error: `-` (standard input) is named more than once; it can be read once"
        );
        return EXIT_ERROR;
    }
    let mut router = match Router::create(&args) {
        Ok(router) => router,
        Err(message) => {
            eprintln!("sailbulk: error: {message}");
            return EXIT_ERROR;
        }
    };

    let mut stdout = BufWriter::new(io::stdout());
    let text = args.report == ReportArg::Text;
    let mut reports = Vec::new();
    // The JSON report's entries, each written as soon as its file is checked.
    let mut json_report = JsonReport::default();
    // Files that could not be checked to their end.
    let mut failed_files = 0;
    // The counts of the files whose reading failed part way, up to the failure.
    let mut failed_reports = Vec::new();
    // The text summaries' order, the files': each a report that ended (`Ok`) or failed part way.
    let mut order = Vec::new();
    let mut broken_pipe = false;
    for path in &args.files {
        for out in [&mut router.valid, &mut router.invalid]
            .into_iter()
            .flatten()
        {
            if let Err(e) = out.next_file() {
                print_error("cannot write lines: ", &e);
                return EXIT_ERROR;
            }
        }
        let shown = path.display().to_string();
        let bar = progress_bar(path, !args.no_progress);
        let mut sink = CliSink {
            path: shown.clone(),
            limit: ListLimit::new(args.max_errors),
            kept: Spool::new(),
            kept_error: None,
            text: text.then_some(&mut stdout),
            broken_pipe: false,
            router: &mut router,
            progress: bar.clone(),
        };
        let result = validator.validate_path(path, &mut sink);
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        broken_pipe |= sink.broken_pipe;
        let (kept, omitted) = (std::mem::take(&mut sink.kept), sink.limit.omitted());
        let kept_error = sink.kept_error.take();
        // The file's entry of the JSON report, and the last line whose findings it lists.
        let entry = match result {
            Ok(summary) => {
                order.push(Ok(reports.len()));
                let report = FileReport {
                    path: shown.clone(),
                    summary,
                    findings: Vec::new(),
                    omitted,
                };
                let entry = report.to_json();
                reports.push(report);
                Ok((entry, None))
            }
            Err(e) => {
                failed_files += 1;
                print_error("", &e);
                // A read that failed part way: what its lines held before the failure goes with
                // it (the text report has printed its findings already).
                let (mut entry, last_line) = match &e {
                    sailbulk_parse::Error::Read { checked, .. } => {
                        let report = FileReport {
                            path: shown.clone(),
                            summary: checked.as_ref().clone(),
                            findings: Vec::new(),
                            omitted,
                        };
                        let mut entry = report.to_json();
                        entry["valid"] = false.into();
                        entry["checked_lines"] = checked.lines.into();
                        // A file that failed before its first line has nothing to sum up.
                        if checked.lines > 0 {
                            order.push(Err(failed_reports.len()));
                            failed_reports.push(report);
                        }
                        (entry, checked.lines)
                    }
                    _ => (
                        json!({
                            "path": shown,
                            "checked_lines": null,
                            "issues": [],
                            "issues_omitted": omitted,
                        }),
                        0,
                    ),
                };
                entry["error"] = error_chain(&e).into();
                // Only the findings of the lines checked whole before the failure.
                Err((entry, Some(last_line)))
            }
        };
        if !text {
            let added = match kept_error {
                Some(e) => Err(e),
                None => json_report.add(entry, kept),
            };
            if let Err(e) = added {
                print_error(
                    &format!("cannot keep the findings of {shown} for the report: "),
                    &e,
                );
                return EXIT_ERROR;
            }
        }
        if broken_pipe {
            break;
        }
    }

    let all_valid = reports.iter().all(FileReport::is_valid);
    let any_failed = failed_files > 0;
    let incomplete = broken_pipe || reports.iter().any(|r| r.summary.stopped);
    let written = if text {
        order.iter().try_for_each(|&at| match at {
            Ok(i) => reports[i].write_text_summary(&mut stdout),
            Err(i) => failed_reports[i].write_failed_text_summary(&mut stdout),
        })
    } else {
        json_report.write(&mut stdout, all_valid && !any_failed)
    };
    if let Err(e) = written.and_then(|()| stdout.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            print_error("cannot write the report: ", &e);
            return EXIT_ERROR;
        }
    }

    if any_failed || incomplete {
        // The temporary outputs are dropped, and so removed: nothing partial replaces a target.
        if incomplete && (router.valid.is_some() || router.invalid.is_some()) {
            eprintln!(
                "sailbulk: the run stopped early; --valid-out and --invalid-out were not written"
            );
        }
        return if !any_failed && all_valid {
            EXIT_OK
        } else if !any_failed {
            EXIT_FINDINGS
        } else {
            EXIT_ERROR
        };
    }
    // One output of update lines and email lines together could be uploaded as neither.
    if router.valid.is_some() || router.invalid.is_some() {
        let mut formats = reports
            .iter()
            .filter_map(|r| r.summary.format.map(|f| (f, &r.path)));
        if let Some((first, first_path)) = formats.next() {
            if let Some((other, other_path)) = formats.find(|(f, _)| *f != first) {
                eprintln!(
                    "sailbulk: error: {first_path} holds {} lines and {other_path} {} lines: one output cannot hold both; --valid-out and --invalid-out were not written (check them in separate runs, or force one --format)",
                    first.as_str(),
                    other.as_str()
                );
                return EXIT_ERROR;
            }
        }
    }
    for out in [router.valid, router.invalid].into_iter().flatten() {
        let target = out.file.target().to_path_buf();
        if let Err(e) = out.file.commit() {
            print_error(&format!("cannot write {}: ", target.display()), &e);
            return EXIT_ERROR;
        }
    }
    if all_valid {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    }
}

/// The JSON report, `{"valid": ..., "files": [...], "failed": [...]}` (`failed` only when a file
/// failed), written as the files are checked: each file's entry goes to its section as soon as
/// its run ends, its `issues` streamed from its spool, so that no more than one file's findings
/// are kept at a time, and a report of millions of findings is never built in memory. The
/// document is put together once the run is over, when `valid` is known.
#[derive(Default)]
struct JsonReport {
    files: Section,
    failed: Section,
}

/// The entries of one of the report's arrays, as JSON text (in memory up to a bound, then in an
/// unnamed temporary file).
struct Section {
    text: BufWriter<tempfile::SpooledTempFile>,
    entries: usize,
}

impl Default for Section {
    fn default() -> Self {
        Section {
            text: BufWriter::new(tempfile::spooled_tempfile(SPOOL_MEMORY_BYTES)),
            entries: 0,
        }
    }
}

impl JsonReport {
    /// Adds a file's entry: its fields (`Ok` for a file checked to its end, `Err` for one that
    /// failed), the last line whose findings it lists (`None` for all), and the findings.
    fn add(
        &mut self,
        entry: Result<(Value, Option<u64>), (Value, Option<u64>)>,
        kept: Spool,
    ) -> io::Result<()> {
        let (section, (fields, last_line)) = match entry {
            Ok(entry) => (&mut self.files, entry),
            Err(entry) => (&mut self.failed, entry),
        };
        let Value::Object(fields) = fields else {
            return Err(io::Error::other("a report entry is not an object"));
        };
        let text = &mut section.text;
        text.write_all(if section.entries == 0 { b"\n" } else { b",\n" })?;
        write_entry(text, fields, kept, last_line)?;
        section.entries += 1;
        // A failure to write the temporary file shows now, before anything is printed.
        text.flush()
    }

    /// Writes the document.
    fn write(self, out: &mut impl Write, valid: bool) -> io::Result<()> {
        writeln!(out, "{{\n  \"valid\": {valid},")?;
        let any_failed = self.failed.entries > 0;
        self.files.write(out, "files")?;
        if any_failed {
            out.write_all(b",\n")?;
            self.failed.write(out, "failed")?;
        }
        out.write_all(b"\n}\n")
    }
}

impl Section {
    /// Writes `"name": [...]`.
    fn write(self, out: &mut impl Write, name: &str) -> io::Result<()> {
        write!(out, "  \"{name}\": [")?;
        let mut text = self
            .text
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        text.rewind()?;
        io::copy(&mut text, out)?;
        if self.entries > 0 {
            out.write_all(b"\n  ")?;
        }
        out.write_all(b"]")
    }
}

/// Writes a file's entry, each field on a line of its own and `issues` from its spool.
fn write_entry(
    out: &mut impl Write,
    fields: Map<String, Value>,
    kept: Spool,
    last_line: Option<u64>,
) -> io::Result<()> {
    out.write_all(b"    {")?;
    let mut kept = Some(kept);
    for (i, (key, value)) in fields.into_iter().enumerate() {
        out.write_all(if i == 0 { b"\n      " } else { b",\n      " })?;
        serde_json::to_writer(&mut *out, &key)?;
        out.write_all(b": ")?;
        match kept.take_if(|_| key == "issues") {
            Some(spool) => {
                out.write_all(b"[")?;
                if spool.write_json_elements(out, last_line, "        ")? > 0 {
                    out.write_all(b"      ")?;
                }
                out.write_all(b"]")?;
            }
            None => serde_json::to_writer(&mut *out, &value)?,
        }
    }
    out.write_all(b"\n    }")
}
