//! Inputs as a sequence of blocks that end on line boundaries: memory-mapped windows of a file, or
//! buffers filled by a reader thread (standard input, gzip, anything that is not a regular file;
//! gzip that a pool of threads checks is decompressed by a task on that pool instead, see
//! [`Input::read_on_pool`]).
//!
//! Memory stays bounded either way: a mapped window is unmapped when its block is dropped, and the
//! reader recycles a fixed number of buffers. Only a single line longer than the block size
//! makes a block grow, to hold that line.

use crate::validator::Error;
use memmap2::{Advice, Mmap, MmapOptions};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

#[cfg(target_os = "linux")]
use crate::sigbus::{register, Guard};

/// Elsewhere, a truncated mapping still faults as it does (no handler is installed).
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
struct Guard;

#[cfg(not(target_os = "linux"))]
fn register(_: &[u8]) -> Guard {
    Guard
}

#[cfg(not(target_os = "linux"))]
impl Guard {
    fn faulted(&self) -> bool {
        false
    }
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A failure while producing blocks.
#[derive(Debug)]
pub(crate) enum InputError {
    Io(io::Error),
    Changed { before: u64, after: u64 },
}

impl From<io::Error> for InputError {
    fn from(e: io::Error) -> Self {
        InputError::Io(e)
    }
}

/// A block of whole lines (the input's last block may lack a final `\n`).
pub(crate) enum Block {
    Mapped {
        /// The window's registration with the handler of faults past a truncated end; dropped
        /// (the fields drop in order) before the window is unmapped.
        guard: Guard,
        map: Mmap,
        start: usize,
        end: usize,
    },
    Owned {
        buf: Vec<u8>,
        recycle: SyncSender<Vec<u8>>,
    },
    /// Lines a run kept back until it knew the input's format, copied out of the blocks they
    /// were read in.
    Held(Vec<u8>),
}

impl Block {
    /// Whether reading the block faulted: its bytes from there on are zeros, not the file's.
    pub fn faulted(&self) -> bool {
        match self {
            Block::Mapped { guard, .. } => guard.faulted(),
            Block::Owned { .. } | Block::Held(_) => false,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Block::Mapped {
                map, start, end, ..
            } => &map[*start..*end],
            Block::Owned { buf, .. } | Block::Held(buf) => buf,
        }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Block::Owned { buf, recycle } = self {
            // The reader may be gone already; then the buffer is simply freed.
            let _ = recycle.try_send(std::mem::take(buf));
        }
    }
}

/// An input being read.
pub(crate) struct Input {
    source: Source,
    gzip: bool,
    /// The file and its size at the start, to notice a file that changes while it is read.
    file: Option<(File, u64)>,
}

enum Source {
    Mapped(Windows),
    /// A reader whose thread has not started yet: it starts at the first block, or on the pool
    /// ([`Input::read_on_pool`]).
    Pending(Box<dyn Read + Send>, usize),
    Thread(Pipeline),
    /// Only while a pending reader is being started.
    Starting,
}

impl Input {
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    pub fn next_block(&mut self) -> Result<Option<Block>, InputError> {
        // A mapped window is checked before it is mapped (reading past a shrunken end would
        // fault); any file is checked again at the end.
        if matches!(self.source, Source::Mapped(_)) {
            self.check_unchanged()?;
        }
        if matches!(self.source, Source::Pending(..)) {
            self.start(None);
        }
        let block = match &mut self.source {
            Source::Mapped(w) => w.next()?,
            Source::Thread(p) => p.next()?,
            Source::Pending(..) | Source::Starting => None,
        };
        if block.is_none() {
            self.check_unchanged()?;
        }
        Ok(block)
    }

    /// Has a gzip input decompressed by a task on `pool` (rayon's global pool for `None`) rather
    /// than a thread of its own, when the pool has two threads or more and the reader has not
    /// started yet; a run whose pool checks the blocks calls this before its first block.
    ///
    /// Decompression is then one thread's work among the pool's, no longer a thread beside
    /// them: with a thread of its own, the decompressing thread and the checking threads
    /// outnumber the cores, the scheduler shares the cores evenly among them, and the checking
    /// threads, given more than their share, run out of blocks and wait while decompression
    /// catches up. On the pool, the task decompresses without a pause while it has buffers to
    /// fill, and checks pieces of the blocks in flight while it waits for one to come back
    /// ([`Runner::Pool`]). Other input (plain standard input, a pipe) keeps its thread: reading
    /// it is little work, and a read that waits for a slow writer would hold a thread of the pool.
    pub fn read_on_pool(&mut self, pool: Option<&rayon::ThreadPool>) {
        let threads = pool.map_or_else(rayon::current_num_threads, |p| p.current_num_threads());
        if self.gzip && threads >= 2 {
            self.start(Some(pool));
        }
    }

    /// Starts a pending reader: on a thread of its own for `None`, else on the pool (rayon's
    /// global pool for `Some(None)`).
    fn start(&mut self, pool: Option<Option<&rayon::ThreadPool>>) {
        self.source = match std::mem::replace(&mut self.source, Source::Starting) {
            Source::Pending(reader, block_size) => {
                let runner = match pool {
                    Some(pool) => Runner::Pool(pool),
                    None => Runner::Thread,
                };
                Source::Thread(Pipeline::spawn(reader, block_size, runner))
            }
            other => other,
        };
    }

    /// The error for a block whose reading faulted: the change of size when the file changed
    /// size, else the failure to read it.
    pub fn fault(&self) -> InputError {
        match self.check_unchanged() {
            Err(e) => e,
            Ok(()) => InputError::Io(io::Error::other(
                "a page of the file could not be read through its memory map (SIGBUS: a disk error, or the file was cut short and grew back); --no-mmap reads it instead",
            )),
        }
    }

    /// Whether a file still has the size it had when opened (other inputs always pass).
    pub(crate) fn check_unchanged(&self) -> Result<(), InputError> {
        if let Some((file, before)) = &self.file {
            let after = file.metadata()?.len();
            if after != *before {
                return Err(InputError::Changed {
                    before: *before,
                    after,
                });
            }
        }
        Ok(())
    }
}

/// Opens a path (`-` is standard input) as blocks.
pub(crate) fn open(path: &Path, mmap: bool, block_size: usize) -> Result<Input, Error> {
    if path.as_os_str() == "-" {
        return from_reader(Box::new(io::stdin()), block_size).map_err(Error::read_failed(path));
    }
    let open_err = |source| Error::Open {
        path: path.into(),
        source,
    };
    let file = File::open(path).map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    let read_err = Error::read_failed(path);
    let mut magic = [0u8; 2];
    let is_gzip = meta.is_file()
        && read_prefix(&file, &mut magic).map_err(read_err)? == 2
        && magic == GZIP_MAGIC;
    // A file that says it is empty is read, not mapped: some that say so have contents (those of
    // procfs and sysfs), and a truly empty one reads as empty all the same.
    if mmap && meta.is_file() && meta.len() > 0 && !is_gzip {
        if let Some(windows) = Windows::new(&file, meta.len(), block_size) {
            let check = file.try_clone().map_err(read_err)?;
            return Ok(Input {
                source: Source::Mapped(windows),
                gzip: false,
                file: Some((check, meta.len())),
            });
        }
    }
    let check = meta
        .is_file()
        .then(|| file.try_clone().map(|f| (f, meta.len())))
        .transpose()
        .map_err(read_err)?;
    let mut input = from_reader(Box::new(file), block_size).map_err(read_err)?;
    input.file = check;
    Ok(input)
}

/// Opens a path (`-` is standard input) as a reader, decompressing gzip (detected by its magic
/// bytes, any number of members). Returns the reader and whether the input was gzip.
pub fn open_reader(path: &Path) -> Result<(Box<dyn Read + Send>, bool), Error> {
    let read_err = Error::read_failed(path);
    let raw: Box<dyn Read + Send> = if path.as_os_str() == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|source| Error::Open {
            path: path.into(),
            source,
        })?)
    };
    gunzip(raw).map_err(read_err)
}

/// Reads the first bytes of a file without moving its cursor.
fn read_prefix(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Wraps a reader: gzip is detected by its magic bytes and decompressed (all members).
pub(crate) fn from_reader(reader: Box<dyn Read + Send>, block_size: usize) -> io::Result<Input> {
    let (reader, gzip) = gunzip(reader)?;
    Ok(Input {
        source: Source::Pending(reader, block_size),
        gzip,
        file: None,
    })
}

/// Puts a gzip decoder in front of a reader that starts with gzip's magic bytes.
fn gunzip(reader: Box<dyn Read + Send>) -> io::Result<(Box<dyn Read + Send>, bool)> {
    let mut buffered = BufReader::with_capacity(256 << 10, reader);
    let gzip = buffered.fill_buf()?.starts_with(&GZIP_MAGIC);
    Ok(if gzip {
        (Box::new(Members::new(buffered)), true)
    } else {
        (Box::new(buffered), false)
    })
}

/// The gzip members of a stream, decompressed one after another (as `gzip -d` reads them).
/// What follows a member must be another one: anything else is reported as trailing data, with
/// the offset where it starts, where flate2's own multi-member reader would report a broken
/// header ("invalid gzip header" for trailing zeros, "unexpected end of file" for text).
struct Members<R: BufRead> {
    /// The member being read; `None` between members.
    member: Option<flate2::bufread::GzDecoder<Counted<R>>>,
    /// The stream between members.
    rest: Option<Counted<R>>,
}

impl<R: BufRead> Members<R> {
    fn new(reader: R) -> Self {
        Members {
            member: None,
            rest: Some(Counted {
                inner: reader,
                taken: 0,
            }),
        }
    }
}

impl<R: BufRead> Read for Members<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(member) = &mut self.member {
                let n = member.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                // The member ended, its trailer checked: the stream goes on after it.
                self.rest = self.member.take().map(|m| m.into_inner());
                continue;
            }
            let Some(rest) = &mut self.rest else {
                return Ok(0);
            };
            let ahead = rest.fill_buf()?;
            if ahead.is_empty() {
                return Ok(0);
            }
            // (A lone first magic byte at the very end of the buffer is taken for a member: the
            // decoder then reads the header, and says what is wrong with it.)
            if !GZIP_MAGIC.starts_with(&ahead[..ahead.len().min(2)]) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "trailing data after the last gzip member, from byte {} of the compressed file: it is not a gzip member",
                        rest.taken
                    ),
                ));
            }
            self.member = self.rest.take().map(flate2::bufread::GzDecoder::new);
        }
    }
}

/// A buffered reader that counts the bytes taken from it.
struct Counted<R> {
    inner: R,
    taken: u64,
}

impl<R: BufRead> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.taken += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Counted<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        self.taken += n as u64;
        self.inner.consume(n);
    }
}

/// Memory-mapped windows over a regular file.
struct Windows {
    file: File,
    len: u64,
    pos: u64,
    block: u64,
    page: u64,
}

impl Windows {
    /// Windows over the `len` bytes of `file` (not 0: a map cannot be empty); `None` when the
    /// file cannot be mapped (the caller reads it instead).
    fn new(file: &File, len: u64, block_size: usize) -> Option<Windows> {
        let file = file.try_clone().ok()?;
        let page = page_size();
        let windows = Windows {
            file,
            len,
            pos: 0,
            block: (block_size as u64).max(page),
            page,
        };
        // A probe: some files (some network file systems) cannot be mapped.
        windows.map(0, len.min(page)).ok()?;
        Some(windows)
    }

    fn map(&self, offset: u64, len: u64) -> io::Result<Mmap> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        // SAFETY: the mapping is read-only and private to this process, and the bytes are only
        // read. What memory maps cannot promise is that nobody else changes the file meanwhile:
        // a truncation by another process while a window is being checked makes reads past the
        // new end fault (on Linux, `sigbus` turns those pages into zeros, and `Input` reports
        // the change of size before the next window or at the end), and a same-size rewrite goes
        // unnoticed, as with any reader; callers with files that may change turn maps off
        // (`--no-mmap`).
        let map = unsafe { MmapOptions::new().offset(offset).len(len).map(&self.file)? };
        let _ = map.advise(Advice::Sequential);
        Ok(map)
    }

    fn next(&mut self) -> io::Result<Option<Block>> {
        if self.pos >= self.len {
            return Ok(None);
        }
        let aligned = self.pos - self.pos % self.page;
        let mut want = self.block;
        loop {
            let end = (self.pos + want).min(self.len);
            let map = self.map(aligned, end - aligned)?;
            // Registered before a byte of it is read: the file may shrink from now on.
            let guard = register(&map);
            let start = (self.pos - aligned) as usize;
            let cut = if end == self.len {
                Some(map.len())
            } else {
                memchr::memrchr(b'\n', &map[start..]).map(|i| start + i + 1)
            };
            match cut {
                Some(cut) => {
                    self.pos = aligned + cut as u64;
                    return Ok(Some(Block::Mapped {
                        guard,
                        map,
                        start,
                        end: cut,
                    }));
                }
                // A line longer than the window: map more.
                None => want = want.saturating_mul(2),
            }
        }
    }
}

fn page_size() -> u64 {
    // 64 KiB is a multiple of every page size in use (4 KiB, 16 KiB, 64 KiB), so an offset aligned
    // to it is aligned for mmap without asking the system.
    64 << 10
}

/// The most buffers a reader thread fills: one being filled, one in the channel, and two that
/// the reader of the blocks holds (a pipelined run holds the block whose findings it delivers
/// and the one its pool checks; it holds at most one while it waits for the next). With more, a
/// buffer that comes back late (its last holder a checking thread) would make the reader
/// allocate another, and peak memory would grow by a block each time.
const MAX_BUFFERS: usize = 4;

/// A buffer back from the reader of the blocks, or a new one in its place when it grew to hold a
/// line longer than a block: the memory such a line took goes back once it is checked, and the
/// run's buffers return to their usual size (a block and the part of a line carried into it are
/// always less than two blocks).
fn outgrown(buf: Vec<u8>, block_size: usize) -> Vec<u8> {
    if buf.capacity() >= 2 * block_size {
        Vec::new()
    } else {
        buf
    }
}

/// A reader thread that fills buffers with whole lines and hands them over through a channel.
struct Pipeline {
    rx: Receiver<io::Result<Vec<u8>>>,
    recycle: SyncSender<Vec<u8>>,
    handle: Option<JoinHandle<()>>,
}

/// Where a reader of blocks runs.
#[derive(Clone, Copy)]
enum Runner<'a> {
    /// On a thread of its own, which waits for a buffer to come back by blocking.
    Thread,
    /// As a task on a rayon pool (the global one for `None`), which, while it waits for a buffer
    /// to come back, runs the pool's other work: the checks of the pieces of blocks in flight.
    Pool(Option<&'a rayon::ThreadPool>),
}

/// The next buffer back from the reader of the blocks, as a reader on the pool waits for it:
/// running the pool's other work meanwhile, and sleeping briefly only when there is none. `None`
/// once no buffer can come back.
fn pooled_wait(spare: &Receiver<Vec<u8>>) -> Option<Vec<u8>> {
    loop {
        match spare.try_recv() {
            Ok(buf) => return Some(buf),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            match spare.recv_timeout(Duration::from_micros(100)) {
                Ok(buf) => return Some(buf),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl Pipeline {
    fn spawn(mut reader: Box<dyn Read + Send>, block_size: usize, runner: Runner<'_>) -> Pipeline {
        let pooled = matches!(runner, Runner::Pool(_));
        // A thread: one block in the channel and one being filled, besides those the reader of
        // the blocks holds. A task on the pool: room for every buffer and an error after them,
        // so that sending never blocks a thread of the pool (the count of buffers bounds the
        // memory all the same).
        let (tx, rx) =
            mpsc::sync_channel::<io::Result<Vec<u8>>>(if pooled { MAX_BUFFERS + 1 } else { 1 });
        // Room for every buffer, so that none is freed on its way back and the thread's count of
        // them stays true.
        let (recycle, spare) = mpsc::sync_channel::<Vec<u8>>(MAX_BUFFERS);
        let wait = move |spare: &Receiver<Vec<u8>>| {
            if pooled {
                pooled_wait(spare)
            } else {
                spare.recv().ok()
            }
        };
        let mut fill = move |tx: &SyncSender<io::Result<Vec<u8>>>| {
            let mut carry: Vec<u8> = Vec::new();
            let mut buffers = 0;
            loop {
                // A recycled buffer keeps its length: only bytes it never held are zeroed
                // before reading into them (reading to the end of a vector would zero all of
                // them, every block).
                let mut buf = match spare.try_recv() {
                    Ok(buf) => outgrown(buf, block_size),
                    Err(_) if buffers < MAX_BUFFERS => {
                        buffers += 1;
                        Vec::new()
                    }
                    // Every buffer is out: the next to come back is filled. None comes back
                    // once every block and the pipeline are gone.
                    Err(_) => match wait(&spare) {
                        Some(buf) => outgrown(buf, block_size),
                        None => return,
                    },
                };
                // A carried line longer than a block doubles the read, so a huge line costs
                // linear time, not quadratic.
                let want = block_size.max(carry.len());
                let need = carry.len() + want;
                if buf.len() < need {
                    // Exactly: a buffer that doubled past its need would outgrow the bound that
                    // `outgrown` holds buffers to.
                    buf.reserve_exact(need - buf.len());
                    buf.resize(need, 0);
                }
                buf[..carry.len()].copy_from_slice(&carry);
                let mut filled = carry.len();
                // A carry that held a line longer than a block lets its memory go: the run's
                // other carries are parts of lines.
                if carry.capacity() > block_size {
                    carry = Vec::new();
                } else {
                    carry.clear();
                }
                let mut failure = None;
                while filled < need {
                    match reader.read(&mut buf[filled..need]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                buf.truncate(filled);
                if filled < need {
                    // End of input, or a failure. After a failure, the whole lines read before
                    // it are still checked (a truncated gzip file gets its findings up to the
                    // cut), but not the line it cut short.
                    if failure.is_some() {
                        buf.truncate(memchr::memrchr(b'\n', &buf).map_or(0, |i| i + 1));
                    }
                    if !buf.is_empty() && tx.send(Ok(buf)).is_err() {
                        return;
                    }
                    if let Some(e) = failure {
                        let _ = tx.send(Err(e));
                    }
                    return;
                }
                match memchr::memrchr(b'\n', &buf) {
                    Some(i) => {
                        carry.extend_from_slice(&buf[i + 1..]);
                        buf.truncate(i + 1);
                        if tx.send(Ok(buf)).is_err() {
                            return;
                        }
                    }
                    // No line end yet: keep the whole buffer and read on. It is the carry now,
                    // no longer one of the buffers handed over (which would never come back).
                    None => {
                        carry = buf;
                        buffers -= 1;
                    }
                }
            }
        };
        let handle = match runner {
            Runner::Thread => Some(std::thread::spawn(move || fill(&tx))),
            Runner::Pool(pool) => {
                let task = move || {
                    // A panic on the pool would abort the process: it is reported as a failure
                    // to read instead, as the thread's is when it is joined.
                    if panic::catch_unwind(AssertUnwindSafe(|| fill(&tx))).is_err() {
                        let _ = tx.try_send(Err(io::Error::other("the reader panicked")));
                    }
                };
                match pool {
                    Some(pool) => pool.spawn(task),
                    None => rayon::spawn(task),
                }
                None
            }
        };
        Pipeline {
            rx,
            recycle,
            handle,
        }
    }

    fn next(&mut self) -> io::Result<Option<Block>> {
        match self.rx.recv() {
            Ok(Ok(buf)) => Ok(Some(Block::Owned {
                buf,
                recycle: self.recycle.clone(),
            })),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                if let Some(handle) = self.handle.take() {
                    handle
                        .join()
                        .map_err(|_| io::Error::other("the reader thread panicked"))?;
                }
                Ok(None)
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Dropping the receiver first makes a blocked reader thread's send fail, so it ends; a
        // thread blocked in `read` (a terminal) is left to end with the process.
        let (_, rx) = mpsc::sync_channel(0);
        drop(std::mem::replace(&mut self.rx, rx));
        if let Some(handle) = self.handle.take() {
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader thread fills no more than [`MAX_BUFFERS`] buffers: with every one out, it waits
    /// for one to come back instead of allocating another.
    #[test]
    fn a_reader_thread_reuses_its_buffers_when_all_are_out() {
        // Lines of 8 bytes: every block of 64 ends at a line end, and no buffer grows (which could
        // move it).
        let lines: Vec<u8> = (0..1000)
            .flat_map(|i| format!("{i:07}\n").into_bytes())
            .collect();
        let mut pipeline = Pipeline::spawn(Box::new(io::Cursor::new(lines)), 64, Runner::Thread);
        let mut next = || pipeline.next().unwrap().unwrap();
        // Four held: every buffer is out, and the thread has none to fill the fifth block with
        // (given time, a thread without the limit would allocate one).
        let mut held: Vec<Block> = (0..4).map(|_| next()).collect();
        std::thread::sleep(std::time::Duration::from_millis(100));
        let first = held.remove(0);
        let first_buffer = first.bytes().as_ptr();
        drop(first);
        let fifth = next();
        assert_eq!(
            fifth.bytes().as_ptr(),
            first_buffer,
            "the fifth block is read into the first block's buffer, not a new one"
        );
    }

    /// A line longer than a block is carried in the buffer that holds it, which then leaves the
    /// buffers handed over: lines longer than a block, one after another, never leave the
    /// thread waiting for a buffer that cannot come back.
    #[test]
    fn lines_longer_than_a_block_leave_buffers_to_fill() {
        let line = format!("{}\n", "x".repeat(99));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut pipeline = Pipeline::spawn(
                Box::new(io::Cursor::new(line.repeat(200))),
                64,
                Runner::Thread,
            );
            let mut lines = 0;
            while let Some(block) = pipeline.next().unwrap() {
                lines += memchr::memchr_iter(b'\n', block.bytes()).count();
            }
            let _ = tx.send(lines);
        });
        let lines = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the reader thread never ended");
        assert_eq!(lines, 200);
    }

    /// The buffers that grew to hold a line longer than a block are let go once it is checked:
    /// the blocks after it are read into buffers of the usual size.
    #[test]
    fn buffers_return_to_their_size_after_a_long_line() {
        let short: String = (0..100).map(|i| format!("{i:07}\n")).collect();
        let input = format!("{short}{}\n{short}{short}{short}", "x".repeat(1_000));
        let mut pipeline = Pipeline::spawn(
            Box::new(io::Cursor::new(input.into_bytes())),
            64,
            Runner::Thread,
        );
        let mut capacities = Vec::new();
        let mut text = Vec::new();
        while let Some(block) = pipeline.next().unwrap() {
            text.extend_from_slice(block.bytes());
            if let Block::Owned { buf, .. } = &block {
                capacities.push(buf.capacity());
            }
        }
        assert_eq!(text.len(), 100 * 8 * 4 + 1_001, "every byte is handed over");
        let long = capacities
            .iter()
            .position(|&c| c > 1_000)
            .expect("the long line's block");
        // The buffers out while the long line was read may come back once each before the
        // thread sees them; after those, every block has a buffer of the usual size.
        let after = &capacities[long + 1 + MAX_BUFFERS..];
        assert!(after.len() > 10, "{capacities:?}");
        assert!(after.iter().all(|&c| c < 2 * 64), "{capacities:?}");
    }
}
