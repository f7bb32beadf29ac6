//! The file validator: reads a path, a reader or a slice in blocks that end on line boundaries,
//! checks each block's lines in parallel, and hands findings to a sink in line order.

use crate::check::{check_line, Format, LineKind, LineOut, LineRules, ListNames, Scratch};
use crate::finding::{Code, Finding, Severity};
use crate::input::{self, Block, Input};
use rayon::prelude::*;
use sailbulk_spec::{JobKind, MAX_LISTS_PER_ACCOUNT};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::{ControlFlow, Range};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

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

    /// How many of the findings still to come the sink reads the field and message of (all of
    /// them by default). A sink that keeps only its first findings and counts the rest, as a
    /// report with a limit does, answers how many it has room for. It is asked before each block
    /// is checked: the block's first findings, at least that many, come whole, and the rest
    /// may come bare, with their line, column, severity and code but no field and an empty
    /// message. Working those out is most of the time a line with a finding takes, so a file
    /// where every line has one is checked several times faster.
    ///
    /// The answer may only go down as findings are delivered.
    fn details_wanted(&self) -> u64 {
        u64::MAX
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
    /// The line of each code's first finding: where to look when a report that lists only its
    /// first findings (all of one kind, in a file where every line has it) counts others.
    pub first_line_by_code: BTreeMap<Code, u64>,
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
    ///
    /// With more than one thread, two blocks are in flight: the pool checks the next block while
    /// the calling thread delivers the findings of the one before (so two blocks are mapped or
    /// buffered at once). Gzip input is then decompressed by a task on the same pool, which
    /// checks pieces of the blocks in flight while it waits for a buffer to fill, so that the
    /// busy threads are no more than the pool's. Called from a task running on its own pool
    /// (rayon's global pool, with 0), a validator checks one block at a time instead, as waiting
    /// there for the pool could deadlock it (and gzip is decompressed by a thread of its own).
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
        run.whole(bytes);
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
            brief: false,
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
        let ended = if self.pipelines() {
            run.pipelined(&mut input)
        } else {
            run.block_by_block(&mut input)
        };
        if let Err(end) = ended {
            let (checked, e) = match end {
                RunEnd::Input(checked, e) => (checked, e),
                RunEnd::Fault(checked) => (checked, input.fault()),
                RunEnd::Sink(e) => return Err(Error::Sink(e)),
            };
            let mut checked = *checked;
            checked.gzip = gzip;
            return Err(input_error(path, checked, e));
        }
        let mut summary = run.finish();
        summary.gzip = gzip;
        Ok(summary)
    }

    /// Whether runs check blocks as a pipeline on the pool ([`Run::pipelined`]): with more than
    /// one thread, unless this thread is one of the pool's, which must not block waiting for
    /// the pool's work (the run then checks block by block, each block's pieces in parallel).
    fn pipelines(&self) -> bool {
        if self.single_threaded() {
            return false;
        }
        match &self.pool {
            Some(pool) => pool.current_thread_index().is_none(),
            None => rayon::current_thread_index().is_none(),
        }
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
    job: JobKind,
    want_ranges: bool,
    details: u64,
) -> Piece {
    let limit = job.max_file_bytes();
    let mut piece = Piece::default();
    let mut scratch = Scratch::for_block(data, rules.format);
    let mut fast = scratch.take_fast(rules.format);
    // The piece's first `details` findings come whole, a line at a time (a line's findings are
    // sorted by column once it is checked): the block's first that many are then whole, wherever
    // they lie among its pieces.
    let mut details_left = details;
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
            brief: details_left == 0,
        };
        let before = out.findings.len();
        let kind = check_line(
            rules,
            piece.lines,
            Some(line_offset),
            &data[start..end],
            &mut out,
            &mut piece.lists,
            &mut scratch,
        );
        details_left = details_left.saturating_sub((out.findings.len() - before) as u64);
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

/// Blocks a pipelined run keeps in flight: the one whose findings are delivered next, and the
/// one the pool checks meanwhile.
const PIPELINE_BLOCKS: usize = 2;

/// The most bytes of lines a run holds back while it does not know the input's format
/// ([`Run::admit`]). Past this, what it holds is checked as JSON, the format of an input that
/// never shows one: only a file that starts with more blank lines than this, form feeds or
/// vertical tabs among them, is checked differently when cut into blocks than whole.
const HELD_MAX: usize = 16 << 20;

/// A block read, as a run takes it, in input order.
enum Step {
    /// To be checked, with this format.
    Check(Block, Format),
    /// Its bytes were copied to the lines the run holds back ([`Run::admit`]): only whether
    /// reading it faulted is left to see, in its turn.
    Held(Block),
}

/// Why a run ended before the end of its input.
enum RunEnd {
    /// Reading failed, after the lines these counts hold were checked.
    Input(Box<Summary>, input::InputError),
    /// A block's reading faulted; the counts are those from before the block.
    Fault(Box<Summary>),
    /// The sink failed to take lines.
    Sink(io::Error),
}

/// What checking one block takes: its rules, its place in the input and its pieces.
struct Plan {
    rules: LineRules,
    /// The byte offset of the block in the input.
    offset: u64,
    job: JobKind,
    want_ranges: bool,
    /// How many findings the sink wants whole ([`Sink::details_wanted`]).
    details: u64,
    /// The block's pieces, which end on line boundaries.
    ranges: Vec<Range<usize>>,
}

impl Plan {
    /// Checks piece `index` of the block `data`.
    fn check(&self, data: &[u8], index: usize) -> Piece {
        let range = self.ranges[index].clone();
        check_piece(
            self.rules,
            &data[range.clone()],
            self.offset + range.start as u64,
            self.job,
            self.want_ranges,
            self.details,
        )
    }
}

/// Splits a block into pieces of about `size` bytes that end on line boundaries.
fn pieces(data: &[u8], size: usize) -> Vec<Range<usize>> {
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

/// A block of a pipelined run, its pieces queued on the pool.
struct Queued {
    /// Shared with the pieces' tasks; unmapped (or its buffer recycled) when the last goes.
    block: Arc<Block>,
    plan: Option<Arc<Plan>>,
    done: Arc<Done>,
}

/// The checked pieces of a block, as its tasks hand them over.
struct Done {
    /// Each piece in its place, and how many are still out.
    state: Mutex<(Vec<Option<Piece>>, usize)>,
    ready: Condvar,
}

impl Done {
    fn new(pieces: usize) -> Done {
        Done {
            state: Mutex::new(((0..pieces).map(|_| None).collect(), pieces)),
            ready: Condvar::new(),
        }
    }

    /// Hands over piece `index` (`None` when its check panicked).
    fn put(&self, index: usize, piece: Option<Piece>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.0[index] = piece;
        state.1 -= 1;
        if state.1 == 0 {
            self.ready.notify_all();
        }
    }

    /// Waits for every piece; `None` when one of them panicked.
    fn wait(&self) -> Option<Vec<Piece>> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while state.1 > 0 {
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        std::mem::take(&mut state.0).into_iter().collect()
    }
}

/// A piece's place in its block's [`Done`]: hands the piece over when dropped, so that a panic
/// in its check does not leave the run waiting.
struct Slot {
    done: Arc<Done>,
    index: usize,
    piece: Option<Piece>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.done.put(self.index, self.piece.take());
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
    /// The bytes of the blocks planned so far: where the next block starts in the input.
    offset: u64,
    /// Lines read while the format is not known yet, whose findings depend on it ([`Run::admit`]).
    held: Vec<u8>,
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
            offset: 0,
            held: Vec::new(),
        }
    }

    /// Checks a whole input of complete lines (the last may end without `\n`), and hands its
    /// lines to the sink when it wants them.
    fn whole(&mut self, data: &[u8]) {
        if self.format.is_none() {
            self.format = Format::detect_block(data, true);
        }
        let format = self.format.unwrap_or(Format::Json);
        if let Some(checked) = self.check(data, format) {
            self.lines(data, &checked);
        }
    }

    /// Takes the next block read (`None` at the end of the input, or at a read error) and says
    /// what to do, in order.
    ///
    /// The format of an input is that of its first line that shows one
    /// ([`Format::detect_block`]). The lines before it are blank, with one exception whose
    /// findings depend on the format: a line that holds a form feed or a vertical tab is blank
    /// in a list of addresses and invalid JSON in an update file. So a block of such lines is
    /// held back (copied) until a later line shows the format, and checked just before that
    /// line's block: a stream's findings are those of the whole input checked at once, however
    /// it is cut into blocks. Blocks without them are checked at once. At most [`HELD_MAX`] bytes
    /// are held.
    fn admit(&mut self, block: Option<Block>) -> Vec<Step> {
        let mut steps = Vec::with_capacity(2);
        let Some(block) = block else {
            // The input shows no format (or reading failed before it did): JSON.
            self.release_held(&mut steps, Format::Json);
            return steps;
        };
        if let Some(format) = self.format {
            steps.push(Step::Check(block, format));
            return steps;
        }
        let data = block.bytes();
        let starts_input = self.offset == 0 && self.held.is_empty();
        if let Some(format) = Format::detect_block(data, starts_input) {
            self.format = Some(format);
            self.release_held(&mut steps, format);
            steps.push(Step::Check(block, format));
        } else if self.held.is_empty() && memchr::memchr2(0x0b, 0x0c, data).is_none() {
            // Only spaces, tabs and line ends (and a byte-order mark at the start): blank lines,
            // or a bare `\r` among the spaces, which either format reports alike. (Any other
            // byte would have shown the format.)
            steps.push(Step::Check(block, Format::Json));
        } else if self.held.len() + data.len() > HELD_MAX {
            self.release_held(&mut steps, Format::Json);
            steps.push(Step::Check(block, Format::Json));
        } else {
            self.held.extend_from_slice(data);
            steps.push(Step::Held(block));
        }
        steps
    }

    /// The lines held back, if any, as a block to check with `format`.
    fn release_held(&mut self, steps: &mut Vec<Step>, format: Format) {
        if !self.held.is_empty() {
            steps.push(Step::Check(
                Block::Held(std::mem::take(&mut self.held)),
                format,
            ));
        }
    }

    /// Takes a step of a run block by block: checks the block (or not, when it is held), then
    /// delivers its findings and hands over its lines.
    fn step(&mut self, step: Step) -> Result<(), RunEnd> {
        let before = self.so_far();
        let (block, checked) = match step {
            Step::Check(block, format) => {
                let checked = self.check(block.bytes(), format);
                (block, checked)
            }
            Step::Held(block) => (block, None),
        };
        self.finish_block(&block, checked.as_ref(), before)
    }

    /// The counts so far, as a read error reports them.
    fn so_far(&self) -> Summary {
        let mut summary = self.summary.clone();
        summary.format = self.format;
        summary
    }

    /// Reads and checks the input one block after the other: each block's pieces are checked
    /// (in parallel, on the pool, with more than one thread), then its findings delivered and
    /// its lines handed over, before the next block is read.
    fn block_by_block(&mut self, input: &mut Input) -> Result<(), RunEnd> {
        while !self.stopped {
            let (block, failure) = match input.next_block() {
                Ok(block) => (block, None),
                Err(e) => (None, Some(e)),
            };
            let end = block.is_none();
            for step in self.admit(block) {
                self.step(step)?;
            }
            if let Some(e) = failure {
                return Err(RunEnd::Input(Box::new(self.so_far()), e));
            }
            if end {
                break;
            }
        }
        Ok(())
    }

    /// Reads and checks the input as a pipeline: the pieces of the next block are queued on the
    /// pool before those of the block before are done, and this thread delivers a block's
    /// findings, hands over its lines and unmaps it while the pool checks the next one. So the
    /// pool's threads never wait for each other at the end of a block, nor for this thread's
    /// work between blocks. What the sink gets, and in what order, is the same as block by
    /// block.
    fn pipelined(&mut self, input: &mut Input) -> Result<(), RunEnd> {
        // Decompression joins the checks on the pool, rather than a thread beside it.
        input.read_on_pool(self.validator.pool.as_deref());
        match self.validator.pool.clone() {
            Some(pool) => pool.in_place_scope(|scope| self.pipeline(scope, input)),
            None => rayon::in_place_scope(|scope| self.pipeline(scope, input)),
        }
    }

    fn pipeline<'scope>(
        &mut self,
        scope: &rayon::Scope<'scope>,
        input: &mut Input,
    ) -> Result<(), RunEnd> {
        let mut queue: VecDeque<Queued> = VecDeque::with_capacity(PIPELINE_BLOCKS);
        let mut read_all = false;
        let mut failure = None;
        loop {
            while !read_all && !self.stopped && queue.len() < PIPELINE_BLOCKS {
                let block = match input.next_block() {
                    Ok(block) => block,
                    // Reported once the blocks read before it are done with.
                    Err(e) => {
                        failure = Some(e);
                        None
                    }
                };
                read_all = block.is_none();
                for step in self.admit(block) {
                    queue.push_back(self.submit(scope, step));
                }
            }
            let Some(queued) = queue.pop_front() else {
                break;
            };
            // A block read ahead of a stop is dropped unchecked, as block by block would not
            // have read it.
            if self.stopped {
                continue;
            }
            let before = self.so_far();
            let Some(pieces) = queued.done.wait() else {
                // A piece's check panicked: the scope raises the panic again once every task
                // has ended.
                break;
            };
            let checked = match &queued.plan {
                Some(plan) => self.merge(queued.block.bytes().len(), plan, pieces),
                None => None,
            };
            self.finish_block(&queued.block, checked.as_ref(), before)?;
        }
        if self.stopped {
            return Ok(());
        }
        // The end of the input was read ahead of the last blocks' checks: a file that changed
        // size since is a change all the same.
        match failure.map_or_else(|| input.check_unchanged(), Err) {
            Err(e) => Err(RunEnd::Input(Box::new(self.so_far()), e)),
            Ok(()) => Ok(()),
        }
    }

    /// Plans a block and queues its pieces on the pool (none for a block held back).
    fn submit<'scope>(&mut self, scope: &rayon::Scope<'scope>, step: Step) -> Queued {
        let (block, plan) = match step {
            Step::Check(block, format) => {
                let block = Arc::new(block);
                let plan = self.plan(block.bytes(), format).map(Arc::new);
                (block, plan)
            }
            Step::Held(block) => (Arc::new(block), None),
        };
        let done = Arc::new(Done::new(plan.as_ref().map_or(0, |p| p.ranges.len())));
        if let Some(plan) = &plan {
            for index in 0..plan.ranges.len() {
                let (block, plan, done) = (Arc::clone(&block), Arc::clone(plan), Arc::clone(&done));
                scope.spawn(move |_| {
                    // Handed over when dropped, even by a panic, so that the wait ends.
                    let mut slot = Slot {
                        done,
                        index,
                        piece: None,
                    };
                    slot.piece = Some(plan.check(block.bytes(), index));
                    // The block is let go before the piece is handed over: the run may then drop
                    // it at once, and a reader's buffer goes back to the reader in time to be
                    // filled again (not a new one allocated while it is still held here).
                    drop(block);
                });
            }
        }
        Queued { block, plan, done }
    }

    /// After a block's findings: its lines to the sink, and whether what was read (by the check
    /// and by the sink) was the file's. `before` holds the counts from before the block.
    fn finish_block(
        &mut self,
        block: &Block,
        checked: Option<&Checked>,
        before: Summary,
    ) -> Result<(), RunEnd> {
        // Bytes that were not the file's were read: the run ends with the file's change, whatever
        // the check made of those bytes. The lines before the block were the file's.
        if block.faulted() {
            return Err(RunEnd::Fault(Box::new(before)));
        }
        if let Some(checked) = checked {
            self.lines(block.bytes(), checked);
            if block.faulted() {
                return Err(RunEnd::Fault(Box::new(before)));
            }
        }
        match self.sink_error.take() {
            Some(e) => Err(RunEnd::Sink(e)),
            None => Ok(()),
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

    /// Checks one block on this thread (its pieces in parallel on the pool, with more than one
    /// thread) and delivers its findings; returns what the sink's `lines` needs when it wants
    /// lines.
    fn check(&mut self, data: &[u8], format: Format) -> Option<Checked> {
        let plan = self.plan(data, format)?;
        let check = |index| plan.check(data, index);
        let pieces: Vec<Piece> = if self.validator.single_threaded() || plan.ranges.len() == 1 {
            (0..plan.ranges.len()).map(check).collect()
        } else {
            // Every piece is a task of its own (`with_max_len(1)`): left to split the list in
            // halves only as far as the threads need, rayon hands out runs of several pieces,
            // and a thread that finishes its run early waits for the other's.
            self.validator.install(|| {
                (0..plan.ranges.len())
                    .into_par_iter()
                    .with_max_len(1)
                    .map(check)
                    .collect()
            })
        };
        self.merge(data.len(), &plan, pieces)
    }

    /// What checking a block in `format` takes, worked out in input order: the block's place in
    /// the input and its pieces. `None` when the run has stopped or the block is empty.
    fn plan(&mut self, data: &[u8], format: Format) -> Option<Plan> {
        if self.stopped || data.is_empty() {
            return None;
        }
        let config = &self.validator.config;
        let plan = Plan {
            rules: LineRules {
                format,
                strict: config.strict,
            },
            offset: self.offset,
            job: config.job,
            want_ranges: self.sink.wants_lines(),
            details: self.sink.details_wanted(),
            ranges: pieces(data, config.chunk_size),
        };
        self.offset += data.len() as u64;
        Some(plan)
    }

    /// Delivers the findings of a block's checked pieces (in order) and adds up its counts;
    /// returns what the sink's `lines` needs when it wants lines.
    fn merge(&mut self, len: usize, plan: &Plan, pieces: Vec<Piece>) -> Option<Checked> {
        let first_line = self.summary.lines + 1;
        let mut invalid = Vec::new();
        for (piece, range) in pieces.into_iter().zip(&plan.ranges) {
            let line_base = self.summary.lines;
            let too_many = self.merge_lists(&piece.lists, line_base);
            self.summary.lines += piece.lines;
            self.summary.records += piece.records;
            self.summary.invalid_lines += piece.invalid_lines;
            if plan.want_ranges {
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
                // Before the findings of its line, as a finding with no column comes first.
                if let Some(f) = extra.take_if(|f| f.line <= finding.line) {
                    self.deliver(f);
                }
                self.deliver(finding);
            }
            if let Some(f) = extra {
                self.deliver(f);
            }
        }
        self.summary.bytes += len as u64;
        self.sink.progress(self.summary.bytes);
        plan.want_ranges.then_some(Checked {
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
        self.summary
            .first_line_by_code
            .entry(finding.code)
            .or_insert(finding.line);
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
