//! The file validator: reads a path, a reader or a slice in blocks that end on line boundaries,
//! checks each block's lines in parallel, and hands findings to a sink in line order.

use crate::check::{check_line, Format, LineKind, LineOut, LineRules, ListNames, Scratch};
use crate::finding::{Code, Finding, Severity};
use crate::input::{self, Block, Input};
use rayon::prelude::*;
use sailbulk_spec::{JobKind, MAX_LISTS_PER_ACCOUNT};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the validator sends what it finds, in line order.
///
/// The validator checks blocks of lines in parallel and calls the sink from one thread, in the
/// order of the input, so a sink never sees line 10's findings before line 9's.
pub trait Sink {
    /// Receives one finding. Return `ControlFlow::Break(())` to stop the run early; the summary
    /// then says `stopped`.
    fn finding(&mut self, finding: Finding) -> ControlFlow<()>;

    /// Whether [`Sink::lines`] should be called (it costs a pass over the data).
    fn wants_lines(&self) -> bool {
        false
    }

    /// Receives every block of input lines with the byte ranges of its invalid lines, to route
    /// valid and invalid lines elsewhere. Called after the block's findings.
    fn lines(&mut self, block: &LineBlock<'_>) -> io::Result<()> {
        let _ = block;
        Ok(())
    }

    /// Called after each block with the number of input bytes checked so far.
    fn progress(&mut self, bytes: u64) {
        let _ = bytes;
    }
}

/// A run of complete lines and which of them are invalid.
#[derive(Debug)]
pub struct LineBlock<'a> {
    /// The bytes, each line with its `\n` (the last line of the input may lack one).
    pub bytes: &'a [u8],
    /// The line number of the first line, from 1.
    pub first_line: u64,
    /// Byte ranges within `bytes` of the lines that have errors, line ending included, in order.
    pub invalid: &'a [Range<usize>],
}

impl LineBlock<'_> {
    /// Calls `f(bytes, valid)` for alternating runs of valid and invalid lines, in order, so that
    /// a router can write each run with one call.
    pub fn for_each_run<F>(&self, mut f: F) -> io::Result<()>
    where
        F: FnMut(&[u8], bool) -> io::Result<()>,
    {
        let mut at = 0;
        for range in self.invalid {
            if range.start > at {
                f(&self.bytes[at..range.start], true)?;
            }
            f(&self.bytes[range.clone()], false)?;
            at = range.end;
        }
        if at < self.bytes.len() {
            f(&self.bytes[at..], true)?;
        }
        Ok(())
    }
}

/// What a run found, counted over the whole input (even when the sink kept only some findings).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The format the lines were checked as; `None` when the input had no non-blank line.
    pub format: Option<Format>,
    /// Bytes of input (decompressed, for gzip): the size that would be uploaded.
    pub bytes: u64,
    /// Whether the input was gzip-compressed.
    pub gzip: bool,
    /// Lines, counted from 1 (a last line without `\n` counts).
    pub lines: u64,
    /// Lines that are not blank.
    pub records: u64,
    /// Lines with at least one error.
    pub invalid_lines: u64,
    /// Findings of severity error.
    pub errors: u64,
    /// Findings of severity warning.
    pub warnings: u64,
    /// Findings by code.
    pub by_code: BTreeMap<Code, u64>,
    /// Whether the sink stopped the run before the end of the input.
    pub stopped: bool,
}

impl Summary {
    /// No errors (warnings allowed) and the whole input was read.
    pub fn is_valid(&self) -> bool {
        self.errors == 0 && !self.stopped
    }
}

/// Why a run could not be completed. A bad line is never an error: it is a [`Finding`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Reading (or decompressing) failed: before the first line, or part way (a damaged gzip
    /// member, a disk error), when the lines read whole before the failure were checked and
    /// their findings delivered.
    #[error("cannot read {}{}", path.display(), after_line(checked.lines))]
    Read {
        /// The path, or `-` for a reader.
        path: PathBuf,
        /// The counts of the lines that were read whole, found to be the file's and checked
        /// before the failure (their findings were delivered): the input is damaged after line
        /// `checked.lines`. Empty when the failure came before any line, and from
        /// [`Validator::for_each_block`], which checks nothing.
        checked: Box<Summary>,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file changed size while it was read: the result would describe neither version.
    #[error("{} changed size while it was read (from {before} to {after} bytes)", path.display())]
    FileChanged {
        /// The path.
        path: PathBuf,
        /// Size when the run began.
        before: u64,
        /// Size when the change was seen.
        after: u64,
    },
    /// The sink failed to take lines.
    #[error("cannot write lines")]
    Sink(#[source] io::Error),
}

impl Error {
    /// The error for a read of `path` that failed before any line was checked.
    pub(crate) fn read_failed(path: &Path) -> impl Fn(io::Error) -> Error + Copy + '_ {
        move |source| Error::Read {
            path: path.to_path_buf(),
            checked: Box::default(),
            source,
        }
    }
}

/// Configures a [`Validator`].
///
/// ```
/// use sailbulk_parse::{ValidatorBuilder, Format};
/// use sailbulk_spec::JobKind;
///
/// let validator = ValidatorBuilder::new()
///     .job(JobKind::Update)
///     .format(Some(Format::Json))
///     .strict(true)
///     .threads(2)
///     .build();
/// let report = validator.report_slice(b"{\"email\":\"a@example.com\"}\n", 0);
/// assert!(report.summary.is_valid());
/// ```
#[derive(Debug, Clone)]
pub struct ValidatorBuilder {
    job: JobKind,
    format: Option<Format>,
    strict: bool,
    threads: usize,
    chunk_size: usize,
    block_size: usize,
    mmap: bool,
}

impl Default for ValidatorBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ValidatorBuilder {
    /// A builder with the defaults below.
    pub fn new() -> Self {
        ValidatorBuilder {
            job: JobKind::Update,
            format: None,
            strict: false,
            threads: 0,
            chunk_size: 1 << 20,
            block_size: 16 << 20,
            mmap: true,
        }
    }

    /// The job the file is for, which sets the size limit. Default: [`JobKind::Update`].
    pub fn job(&mut self, job: JobKind) -> &mut Self {
        self.job = job;
        self
    }

    /// The format to check lines as; `None` detects it from the first non-blank line (a `{` or
    /// a `[` means JSON). Default: `None`.
    pub fn format(&mut self, format: Option<Format>) -> &mut Self {
        self.format = format;
        self
    }

    /// Whether warnings count as errors. Default: `false`.
    pub fn strict(&mut self, yes: bool) -> &mut Self {
        self.strict = yes;
        self
    }

    /// Threads to check with; 0 uses rayon's global pool (one per core). Default: 0.
    ///
    /// A block is checked as pieces of `chunk_size`, so [`ValidatorBuilder::build`] starts no more
    /// threads than a block has pieces (16 with the default sizes): more would have nothing to do.
    pub fn threads(&mut self, n: usize) -> &mut Self {
        self.threads = n;
        self
    }

    /// The target size in bytes of the pieces that threads take (extended to the next line end).
    /// Smaller pieces spread work more evenly; results are the same for any size. Default: 1 MiB.
    pub fn chunk_size(&mut self, bytes: usize) -> &mut Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// The size of the blocks read (or mapped) at a time: this bounds memory, apart from a
    /// single line longer than the block. Default: 16 MiB.
    pub fn block_size(&mut self, bytes: usize) -> &mut Self {
        self.block_size = bytes.max(1);
        self
    }

    /// Whether files may be memory-mapped (in windows of `block_size`); when mapping fails, or for
    /// anything but a regular file, they are read instead. Default: `true`.
    pub fn mmap(&mut self, yes: bool) -> &mut Self {
        self.mmap = yes;
        self
    }

    /// Builds the validator (and its thread pool, when `threads` is set).
    pub fn build(&self) -> Validator {
        let mut config = self.clone();
        // No more threads than a block has pieces: a count beyond that (a mistyped
        // `--threads 4294967296`) would only start threads that sit idle, by the million.
        config.threads = config
            .threads
            .min(config.block_size.div_ceil(config.chunk_size));
        // A pool that cannot be built (no threads left) falls back to rayon's global one.
        let pool = (config.threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(config.threads)
                    .build()
                    .ok()
            })
            .flatten()
            .map(Arc::new);
        Validator { config, pool }
    }
}

/// Checks update and email files against every documented rule.
///
/// Build one with [`ValidatorBuilder`]; it can be shared and reused.
#[derive(Debug, Clone)]
pub struct Validator {
    config: ValidatorBuilder,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Default for Validator {
    fn default() -> Self {
        ValidatorBuilder::new().build()
    }
}

impl Validator {
    /// The configured job kind.
    pub fn job(&self) -> JobKind {
        self.config.job
    }

    /// The threads it checks with: the configured count, capped at the pieces of a block (see
    /// [`ValidatorBuilder::threads`]); 0 means rayon's global pool.
    pub fn threads(&self) -> usize {
        self.config.threads
    }

    /// Checks a file, sending findings to `sink`. `-` reads standard input. Gzip input (by its
    /// magic bytes) is decompressed as it is read.
    pub fn validate_path<S: Sink>(&self, path: &Path, sink: &mut S) -> Result<Summary, Error> {
        let input = input::open(path, self.config.mmap, self.config.block_size)?;
        self.run(input, path, sink)
    }

    /// Checks what a reader yields (gzip is detected and decompressed).
    pub fn validate_reader<R: Read + Send + 'static, S: Sink>(
        &self,
        reader: R,
        sink: &mut S,
    ) -> Result<Summary, Error> {
        let input = input::from_reader(Box::new(reader), self.config.block_size)
            .map_err(Error::read_failed(Path::new("-")))?;
        self.run(input, Path::new("-"), sink)
    }

    /// Checks bytes in memory (not decompressed: pass gzip through [`Validator::validate_reader`]).
    pub fn validate_slice<S: Sink>(&self, bytes: &[u8], sink: &mut S) -> Summary {
        let mut run = Run::new(self, sink);
        run.block(bytes);
        run.finish()
    }

    /// Checks a file and collects a [`crate::FileReport`] keeping at most `max_findings` findings
    /// (0 keeps all; the counts are always complete).
    pub fn report_path(
        &self,
        path: &Path,
        max_findings: usize,
    ) -> Result<crate::FileReport, Error> {
        let mut sink = crate::report::Collect::new(max_findings);
        let summary = self.validate_path(path, &mut sink)?;
        Ok(sink.into_report(path.display().to_string(), summary))
    }

    /// Checks bytes in memory and collects a report, as [`Validator::report_path`] does.
    pub fn report_slice(&self, bytes: &[u8], max_findings: usize) -> crate::FileReport {
        let mut sink = crate::report::Collect::new(max_findings);
        let summary = self.validate_slice(bytes, &mut sink);
        sink.into_report("-".into(), summary)
    }

    /// Checks one line on its own (without its `\n`), for callers that already have lines.
    /// `number` is its line number from 1; line 1 may start with a byte-order mark. The format is
    /// the configured one, or detected from this line. File-level rules (size, distinct lists)
    /// need the whole file and are not applied.
    ///
    /// ```
    /// use sailbulk_parse::{Validator, Code};
    /// let findings = Validator::default().check_line(br#"{"email":"a@example.com","vars":{"1color":"red"}}"#, 7);
    /// assert_eq!(findings[0].code, Code::VarNameLeadingDigit);
    /// assert_eq!(findings[0].line, 7);
    /// assert_eq!(findings[0].field.as_deref(), Some("vars.1color"));
    /// ```
    pub fn check_line(&self, line: &[u8], number: u64) -> Vec<Finding> {
        let format = self
            .config
            .format
            .or_else(|| Format::detect_block(line, number == 1))
            .unwrap_or(Format::Json);
        let mut findings = Vec::new();
        let mut out = LineOut {
            findings: &mut findings,
            strict: self.config.strict,
            errors: false,
        };
        let offset = (number == 1).then_some(0);
        thread_local! {
            // Callers check line after line (a converter verifying each record): the buffers
            // are kept per thread, so that a valid line allocates nothing.
            static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
        }
        SCRATCH.with_borrow_mut(|scratch| {
            check_line(
                LineRules {
                    format,
                    strict: self.config.strict,
                },
                number,
                offset,
                line,
                &mut out,
                &mut ListNames::unused(),
                scratch,
            )
        });
        findings
    }

    /// Reads a path as the validator does (memory-mapped windows or a reader thread; `-` is
    /// standard input; gzip is decompressed) without checking anything: `f` gets each block of
    /// whole lines in order (the input's last line may lack its `\n`). For tools that copy or
    /// split files at the speed of reading. Returns the bytes read and whether the input was gzip.
    pub fn for_each_block<F>(&self, path: &Path, mut f: F) -> Result<(u64, bool), Error>
    where
        F: FnMut(&[u8]) -> io::Result<()>,
    {
        let mut input = input::open(path, self.config.mmap, self.config.block_size)?;
        let mut bytes = 0;
        while let Some(block) = input
            .next_block()
            .map_err(|e| input_error(path, Summary::default(), e))?
        {
            bytes += block.bytes().len() as u64;
            f(block.bytes()).map_err(Error::Sink)?;
            // What `f` got was not all the file's: the caller must not keep it.
            if block.faulted() {
                return Err(input_error(path, Summary::default(), input.fault()));
            }
        }
        Ok((bytes, input.is_gzip()))
    }

    fn run<S: Sink>(&self, mut input: Input, path: &Path, sink: &mut S) -> Result<Summary, Error> {
        let gzip = input.is_gzip();
        let mut run = Run::new(self, sink);
        // The counts so far, as a read error reports them.
        let so_far = |run: &Run<'_, '_, S>| {
            let mut summary = run.summary.clone();
            summary.format = run.format;
            summary.gzip = gzip;
            summary
        };
        // A checked block whose lines the sink gets while the next one is checked, with the
        // counts from before it.
        let mut pending: Option<(Block, Checked, Summary)> = None;
        loop {
            if run.stopped {
                break;
            }
            match input.next_block() {
                Ok(Some(block)) => {
                    let earlier = pending.as_ref().map(|(b, c, _)| (b.bytes(), c));
                    let before = so_far(&run);
                    let checked = run.check(block.bytes(), earlier);
                    // Bytes that were not the file's were read, in this block or in the one
                    // before as the sink took its lines: the run ends with the file's change,
                    // whatever the check or the sink made of those bytes (a sink's error among
                    // them). The lines before that block were the file's, and their counts are
                    // the ones from before it.
                    if let Some((b, _, before_it)) = &pending {
                        if b.faulted() {
                            return Err(input_error(path, before_it.clone(), input.fault()));
                        }
                    }
                    if block.faulted() {
                        return Err(input_error(path, before, input.fault()));
                    }
                    if let Some(e) = run.sink_error.take() {
                        return Err(Error::Sink(e));
                    }
                    // The block before is done with (its lines were handed over) and unmapped
                    // or recycled here.
                    pending = checked.map(|c| (block, c, before));
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some((block, checked, _)) = pending.take() {
                        run.lines(block.bytes(), &checked);
                    }
                    return Err(input_error(path, so_far(&run), e));
                }
            }
        }
        if let Some((block, checked, before)) = pending.take() {
            run.lines(block.bytes(), &checked);
            if block.faulted() {
                return Err(input_error(path, before, input.fault()));
            }
            if let Some(e) = run.sink_error.take() {
                return Err(Error::Sink(e));
            }
        }
        let mut summary = run.finish();
        summary.gzip = gzip;
        Ok(summary)
    }

    fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    fn single_threaded(&self) -> bool {
        self.config.threads == 1
    }
}

/// `Error::Read`'s words for where the input is damaged.
fn after_line(checked_lines: u64) -> String {
    if checked_lines == 0 {
        String::new()
    } else {
        format!(" after line {checked_lines}")
    }
}

/// The error for a failure while reading `path`, after the lines `checked` counts were checked.
fn input_error(path: &Path, checked: Summary, e: input::InputError) -> Error {
    match e {
        input::InputError::Io(source) => Error::Read {
            path: path.to_path_buf(),
            checked: Box::new(checked),
            source,
        },
        input::InputError::Changed { before, after } => Error::FileChanged {
            path: path.to_path_buf(),
            before,
            after,
        },
    }
}

/// What one piece of a block yields, with line numbers local to the piece (from 1).
#[derive(Default)]
struct Piece {
    lines: u64,
    records: u64,
    invalid_lines: u64,
    findings: Vec<Finding>,
    /// Ranges of the invalid lines, when the sink wants lines.
    invalid: Vec<Range<usize>>,
    lists: ListNames,
}

fn check_piece(
    rules: LineRules,
    data: &[u8],
    offset: u64,
    limit: u64,
    job: JobKind,
    want_ranges: bool,
) -> Piece {
    let mut piece = Piece::default();
    let mut scratch = Scratch::for_block(data, rules.format);
    let mut fast = scratch.take_fast(rules.format);
    let mut each = |start: usize, end: usize, clean: Option<&[(u32, u32)]>| {
        let next = (end + 1).min(data.len());
        piece.lines += 1;
        let line_offset = offset + start as u64;
        if (line_offset..offset + next as u64).contains(&limit) {
            piece.findings.push(too_large(piece.lines, job));
        }
        if let Some(lists) = clean {
            // The fast path found the line clean: a record, with these list names.
            let line = &data[start..end];
            for &(a, b) in lists {
                piece.lists.add(&line[a as usize..b as usize], piece.lines);
            }
            piece.records += 1;
            return;
        }
        let mut out = LineOut {
            findings: &mut piece.findings,
            strict: rules.strict,
            errors: false,
        };
        let kind = check_line(
            rules,
            piece.lines,
            Some(line_offset),
            &data[start..end],
            &mut out,
            &mut piece.lists,
            &mut scratch,
        );
        if kind == LineKind::Record {
            piece.records += 1;
        }
        if out.errors {
            piece.invalid_lines += 1;
            if want_ranges {
                piece.invalid.push(start..next);
            }
        }
    };
    match &mut fast {
        // Lines the fast path is sure of skip the per-line check; the rest take it.
        Some(fast) => crate::fast::clean_lines(data, fast, &mut each),
        None => {
            let mut start = 0;
            while start < data.len() {
                let end = memchr::memchr(b'\n', &data[start..]).map_or(data.len(), |i| start + i);
                each(start, end, None);
                start = end + 1;
            }
        }
    }
    piece
}

fn too_large(line: u64, job: JobKind) -> Finding {
    Finding {
        line,
        column: None,
        severity: Severity::Error,
        code: Code::FileTooLarge,
        field: None,
        message: format!(
            "the file is larger than the {} job's limit of {} bytes; the limit is crossed on this line (split the file here)",
            job.as_str(),
            job.max_file_bytes()
        ),
    }
}

/// A checked block, as the sink's `lines` needs it.
struct Checked {
    first_line: u64,
    invalid: Vec<Range<usize>>,
}

/// The state of one run over one input.
struct Run<'v, 's, S> {
    validator: &'v Validator,
    sink: &'s mut S,
    format: Option<Format>,
    summary: Summary,
    lists: ListNames,
    lists_reported: bool,
    stopped: bool,
    sink_error: Option<io::Error>,
}

impl<'v, 's, S: Sink> Run<'v, 's, S> {
    fn new(validator: &'v Validator, sink: &'s mut S) -> Self {
        Run {
            validator,
            sink,
            format: validator.config.format,
            summary: Summary::default(),
            lists: ListNames::default(),
            lists_reported: false,
            stopped: false,
            sink_error: None,
        }
    }

    /// Splits a block into pieces of about `chunk_size` that end on line boundaries.
    fn pieces(&self, data: &[u8]) -> Vec<Range<usize>> {
        let size = self.validator.config.chunk_size;
        let mut out = Vec::with_capacity(data.len() / size + 1);
        let mut start = 0;
        while start < data.len() {
            let target = start.saturating_add(size).min(data.len());
            let end = if target >= data.len() {
                data.len()
            } else {
                memchr::memchr(b'\n', &data[target - 1..]).map_or(data.len(), |i| target + i)
            };
            out.push(start..end);
            start = end;
        }
        out
    }

    /// Checks one block of complete lines (the input's last block may end without `\n`), and
    /// hands its lines to the sink when it wants them.
    fn block(&mut self, data: &[u8]) {
        if let Some(checked) = self.check(data, None) {
            self.lines(data, &checked);
        }
    }

    /// Hands a checked block's lines to the sink.
    fn lines(&mut self, data: &[u8], checked: &Checked) {
        if self.sink_error.is_some() {
            return;
        }
        let block = LineBlock {
            bytes: data,
            first_line: checked.first_line,
            invalid: &checked.invalid,
        };
        if let Err(e) = self.sink.lines(&block) {
            self.sink_error = Some(e);
            self.stopped = true;
        }
    }

    /// Checks one block and delivers its findings; returns what the sink's `lines` needs when it
    /// wants lines. `earlier` is a block checked before whose lines the sink has yet to get: it
    /// gets them on this thread while the pool checks this block, so that a sink that writes
    /// lines out (a split, `--valid-out`) does not leave the cores idle meanwhile.
    fn check(&mut self, data: &[u8], earlier: Option<(&[u8], &Checked)>) -> Option<Checked> {
        if self.stopped || data.is_empty() {
            if let Some((bytes, checked)) = earlier {
                self.lines(bytes, checked);
            }
            return None;
        }
        if self.format.is_none() {
            self.format = Format::detect_block(data, self.summary.bytes == 0);
        }
        let rules = LineRules {
            format: self.format.unwrap_or(Format::Json),
            strict: self.validator.config.strict,
        };
        let base = self.summary.bytes;
        let limit = self.validator.config.job.max_file_bytes();
        let job = self.validator.config.job;
        let want_ranges = self.sink.wants_lines();
        let ranges = self.pieces(data);
        let check = |r: &Range<usize>| {
            check_piece(
                rules,
                &data[r.clone()],
                base + r.start as u64,
                limit,
                job,
                want_ranges,
            )
        };
        // Every piece is a task of its own (`with_max_len(1)`): left to split the list in halves
        // only as far as the threads need, rayon hands out runs of several pieces, and a thread
        // that finishes its run early waits for the other's at the end of every block.
        let check_all = || -> Vec<Piece> { ranges.par_iter().with_max_len(1).map(check).collect() };
        let pieces: Vec<Piece> = match earlier {
            Some((bytes, checked)) if !self.validator.single_threaded() => {
                let mut pieces = None;
                let check_all = &check_all;
                match &self.validator.pool {
                    Some(pool) => pool.in_place_scope(|scope| {
                        scope.spawn(|_| pieces = Some(check_all()));
                        self.lines(bytes, checked);
                    }),
                    None => rayon::in_place_scope(|scope| {
                        scope.spawn(|_| pieces = Some(check_all()));
                        self.lines(bytes, checked);
                    }),
                }
                pieces.unwrap_or_default()
            }
            _ => {
                if let Some((bytes, checked)) = earlier {
                    self.lines(bytes, checked);
                }
                if self.validator.single_threaded() || ranges.len() == 1 {
                    ranges.iter().map(check).collect()
                } else {
                    self.validator.install(check_all)
                }
            }
        };
        let first_line = self.summary.lines + 1;
        let mut invalid = Vec::new();
        for (piece, range) in pieces.into_iter().zip(&ranges) {
            let line_base = self.summary.lines;
            let too_many = self.merge_lists(&piece.lists, line_base);
            self.summary.lines += piece.lines;
            self.summary.records += piece.records;
            self.summary.invalid_lines += piece.invalid_lines;
            if want_ranges {
                invalid.extend(
                    piece
                        .invalid
                        .iter()
                        .map(|r| r.start + range.start..r.end + range.start),
                );
            }
            let mut extra = too_many;
            for mut finding in piece.findings {
                finding.line += line_base;
                if let Some(f) = extra.take_if(|f| f.line < finding.line) {
                    self.deliver(f);
                }
                self.deliver(finding);
            }
            if let Some(f) = extra {
                self.deliver(f);
            }
        }
        self.summary.bytes += data.len() as u64;
        self.sink.progress(self.summary.bytes);
        want_ranges.then_some(Checked {
            first_line,
            invalid,
        })
    }

    /// Adds a piece's list names to the file's; returns the finding for the name that takes the
    /// file past the account's list limit, the first time that happens.
    fn merge_lists(&mut self, piece: &ListNames, line_base: u64) -> Option<Finding> {
        if self.lists_reported {
            return None;
        }
        for (name, line) in &piece.order {
            if self.lists.insert_global(name) && self.lists.len() > MAX_LISTS_PER_ACCOUNT {
                self.lists_reported = true;
                self.lists = ListNames::default();
                let name = String::from_utf8_lossy(name);
                let code = Code::TooManyLists;
                return Some(Finding {
                    line: line + line_base,
                    column: None,
                    severity: if self.validator.config.strict {
                        Severity::Error
                    } else {
                        code.default_severity()
                    },
                    code,
                    field: Some(format!("lists.{name}")),
                    message: format!(
                        "list {name:?} is the {}th distinct list in this file; an account may have at most {MAX_LISTS_PER_ACCOUNT}",
                        MAX_LISTS_PER_ACCOUNT + 1
                    ),
                });
            }
        }
        None
    }

    fn deliver(&mut self, finding: Finding) {
        match finding.severity {
            Severity::Error => self.summary.errors += 1,
            Severity::Warning => self.summary.warnings += 1,
        }
        *self.summary.by_code.entry(finding.code).or_default() += 1;
        if !self.stopped && self.sink.finding(finding).is_break() {
            self.stopped = true;
        }
    }

    fn finish(mut self) -> Summary {
        self.summary.format = self.format;
        self.summary.stopped = self.stopped;
        self.summary
    }
}
