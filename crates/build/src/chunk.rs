//! A writer that fills part files up to a byte cap, on line boundaries, and describes them.

use crate::atomic::AtomicFile;
use crate::manifest::Part;
use sailbulk_spec::api::hex;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

/// The most parts a set may have: names have five digits, so that name order is input order.
pub const MAX_PARTS: u32 = 99_999;

/// Why lines could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A single line is longer than the cap, so no part can hold it.
    #[error("line {line} is {bytes} bytes long, more than the {max} bytes a part may hold")]
    LineTooLong {
        /// Its input line number.
        line: u64,
        /// Its length, line end included.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// More parts than names allow.
    #[error("more than {MAX_PARTS} parts would be needed; raise the size cap")]
    TooManyParts,
    /// Writing a part failed.
    #[error("cannot write {}", path.display())]
    Io {
        /// The part.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// The part being written.
struct Current {
    file: AtomicFile,
    name: String,
    bytes: u64,
    lines: u64,
    first_line: u64,
    last_line: u64,
    /// Bytes last announced to the part's finisher.
    announced: u64,
    finisher: Finisher,
}

/// A closed part whose finisher may still be at work.
struct Closing {
    part: Part,
    path: PathBuf,
    finisher: Finisher,
}

/// The thread that hashes a part and commits it. It reads the part back from its temporary file
/// (from the page cache, just written) as far as the writer has got, so hashing, the costliest
/// step of a split, runs beside the writing, and a part's fsync and rename run beside the
/// writing of the next. With parts of a few hundred MB on two cores, the hash of one part and
/// the write of the next overlap, which a hasher fed from the writer's own thread could not do.
struct Finisher {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<io::Result<String>>>,
}

/// What the writer tells a finisher.
#[derive(Default)]
struct Shared {
    state: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Default)]
struct Progress {
    /// Bytes of the part that are in its file.
    visible: u64,
    /// The part's file, handed over once the writer has closed it (all its bytes visible).
    closed: Option<AtomicFile>,
    /// The writer gave up on the part: the finisher stops, and the temporary file goes.
    abandoned: bool,
}

/// Announce at least this much new data to a finisher at a time, so that small appends do not
/// each cost a wake-up.
const ANNOUNCE_STEP: u64 = 256 << 10;

/// Closed parts that may still be being finished when another is opened (the open part has a
/// finisher too); opening one more waits for the oldest.
const FINISHING: usize = 2;

impl Shared {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        f(&mut self.progress());
        self.changed.notify_one();
    }
}

impl Finisher {
    fn spawn(file: &AtomicFile, max_bytes: u64) -> io::Result<Finisher> {
        let reader = file.reader()?;
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name("sailbulk-part".into())
            .spawn(move || hash_and_commit(&reader, &theirs, max_bytes))?;
        Ok(Finisher {
            shared,
            handle: Some(handle),
        })
    }

    /// Waits for the part's SHA-256 (hex) and its commit.
    fn wait(mut self) -> io::Result<String> {
        let handle = self.handle.take().expect("waited on once");
        handle
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread finishing the part panicked")))
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        // Not waited on: the writer failed or was dropped. A part still open is abandoned (its
        // temporary file removed); a closed one is still committed, as it would have been had
        // it been committed at once. Either way the thread ends before the writer is gone.
        if let Some(handle) = self.handle.take() {
            self.shared.update(|p| p.abandoned = p.closed.is_none());
            let _ = handle.join();
        }
    }
}

/// A finisher's work: hash the part as its bytes reach the file, then commit it.
fn hash_and_commit(reader: &File, shared: &Shared, max_bytes: u64) -> io::Result<String> {
    let mut hasher = Sha256::new();
    // Small caps (many small parts) need no big buffer.
    let mut buf = vec![0u8; (1 << 20).min(max_bytes as usize)];
    let mut done = 0u64;
    loop {
        let (visible, closed) = {
            let mut p = shared.progress();
            while !p.abandoned && p.visible == done && p.closed.is_none() {
                p = shared.changed.wait(p).unwrap_or_else(|e| e.into_inner());
            }
            if p.abandoned {
                return Err(io::Error::other("the part was abandoned"));
            }
            // The file is taken only once every byte is hashed.
            let closed = if p.visible == done {
                p.closed.take()
            } else {
                None
            };
            (p.visible, closed)
        };
        if let Some(file) = closed {
            file.commit()?;
            return Ok(hex(&hasher.finalize()));
        }
        while done < visible {
            let n = (visible - done).min(buf.len() as u64) as usize;
            reader.read_exact_at(&mut buf[..n], done)?;
            hasher.update(&buf[..n]);
            done += n as u64;
        }
    }
}

/// Writes lines into `part-00001.json`, `part-00002.json`, ... in a directory, each part at most
/// `max_bytes` and filled as close to it as whole lines allow. A part appears under its name only
/// when it is complete (it is written under a temporary name and renamed), and each part's size,
/// line range and SHA-256 are recorded for the manifest.
///
/// Each part is hashed, synced and renamed into place on a thread of its own, which follows the
/// writing (see [`ChunkWriter::finish`]). A writer dropped without `finish` (after an error)
/// removes the part it had open and waits for the closed ones, which are committed as they would
/// have been; it writes no manifest, so a caller that gives up on a set should remove its
/// directory.
///
/// ```
/// use sailbulk_build::ChunkWriter;
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut parts = ChunkWriter::new(dir.path(), 30, "json").unwrap();
/// parts.write_lines(b"{\"email\":\"a@example.com\"}\n", 1).unwrap(); // 26 bytes
/// parts.write_lines(b"{\"email\":\"b@example.com\"}\n", 2).unwrap(); // would pass 30: a new part
/// let parts = parts.finish().unwrap();
/// assert_eq!(parts.len(), 2);
/// assert_eq!((parts[1].file.as_str(), parts[1].first_line), ("part-00002.json", 2));
/// ```
pub struct ChunkWriter {
    dir: PathBuf,
    max_bytes: u64,
    extension: String,
    current: Option<Current>,
    /// Parts opened so far (they are numbered from 1).
    opened: u32,
    /// Closed parts whose finishers have not been waited on, oldest first.
    closing: VecDeque<Closing>,
    /// Parts hashed and committed, in order.
    parts: Vec<Part>,
}

impl std::fmt::Debug for ChunkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkWriter")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .field("parts", &self.opened)
            .finish()
    }
}

impl ChunkWriter {
    /// A writer of parts with the given extension (`json`, `txt`) into `dir`, created if missing.
    pub fn new(dir: &Path, max_bytes: u64, extension: &str) -> io::Result<ChunkWriter> {
        std::fs::create_dir_all(dir)?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(1),
            extension: extension.to_string(),
            current: None,
            opened: 0,
            closing: VecDeque::new(),
            parts: Vec::new(),
        })
    }

    /// Sets the extension of the parts not yet begun.
    pub fn set_extension(&mut self, extension: &str) {
        self.extension = extension.to_string();
    }

    /// The cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Writes whole lines, each ending with `\n`; `first_line` is the input line number of the
    /// first. A part is closed and another begun whenever the next line would pass the cap.
    /// Returns the number of lines written.
    pub fn write_lines(&mut self, mut block: &[u8], first_line: u64) -> Result<u64, ChunkError> {
        let mut line = first_line;
        while !block.is_empty() {
            let room = self.max_bytes - self.current.as_ref().map_or(0, |c| c.bytes);
            let take = if block.len() as u64 <= room {
                block.len()
            } else {
                // The most whole lines that fit in the room left.
                match memchr::memrchr(b'\n', &block[..room as usize]) {
                    Some(i) => i + 1,
                    None if self.current.as_ref().is_some_and(|c| c.bytes > 0) => {
                        self.close()?;
                        continue;
                    }
                    None => {
                        let len = memchr::memchr(b'\n', block).map_or(block.len(), |i| i + 1);
                        return Err(ChunkError::LineTooLong {
                            line,
                            bytes: len as u64,
                            max: self.max_bytes,
                        });
                    }
                }
            };
            let (now, rest) = block.split_at(take);
            line += self.append(now, line)?;
            block = rest;
            if !block.is_empty() {
                self.close()?;
            }
        }
        Ok(line - first_line)
    }

    /// Appends whole lines to the open part (opening one if needed); returns how many.
    fn append(&mut self, bytes: &[u8], first_line: u64) -> Result<u64, ChunkError> {
        if self.current.is_none() {
            self.open(first_line)?;
        }
        let cur = self.current.as_mut().expect("a part is open");
        let io_err = |cur: &Current| {
            let path = cur.file.target().to_path_buf();
            move |source| ChunkError::Io { path, source }
        };
        cur.file.write_all(bytes).map_err(io_err(cur))?;
        let lines = memchr::memchr_iter(b'\n', bytes).count() as u64;
        cur.bytes += bytes.len() as u64;
        cur.lines += lines;
        // Callers may skip line numbers (rejected rows), so the last is tracked, not derived.
        cur.last_line = first_line + lines.saturating_sub(1);
        let visible = cur.file.in_file();
        if visible >= cur.announced + ANNOUNCE_STEP {
            cur.announced = visible;
            cur.finisher.shared.update(|p| p.visible = visible);
        }
        Ok(lines)
    }

    /// Opens the next part, once fewer than [`FINISHING`] earlier ones are still being finished.
    fn open(&mut self, first_line: u64) -> Result<(), ChunkError> {
        let n = self.opened + 1;
        if n > MAX_PARTS {
            return Err(ChunkError::TooManyParts);
        }
        while self.closing.len() >= FINISHING
            || self
                .closing
                .front()
                .is_some_and(|c| c.finisher.handle.as_ref().is_some_and(|h| h.is_finished()))
        {
            self.wait_oldest()?;
        }
        let name = format!("part-{n:05}.{}", self.extension);
        let path = self.dir.join(&name);
        let io_err = |source| ChunkError::Io {
            path: path.clone(),
            source,
        };
        let file = AtomicFile::create(&path).map_err(io_err)?;
        let finisher = Finisher::spawn(&file, self.max_bytes).map_err(io_err)?;
        self.opened = n;
        self.current = Some(Current {
            file,
            name,
            bytes: 0,
            lines: 0,
            first_line,
            last_line: first_line,
            announced: 0,
            finisher,
        });
        Ok(())
    }

    /// Closes the open part: its finisher hashes what is left and commits it.
    fn close(&mut self) -> Result<(), ChunkError> {
        let Some(mut cur) = self.current.take() else {
            return Ok(());
        };
        let path = cur.file.target().to_path_buf();
        if let Err(source) = cur.file.flush() {
            return Err(ChunkError::Io { path, source });
        }
        let (bytes, file) = (cur.bytes, cur.file);
        cur.finisher.shared.update(|p| {
            p.visible = bytes;
            p.closed = Some(file);
        });
        self.closing.push_back(Closing {
            part: Part {
                file: cur.name,
                bytes: cur.bytes,
                lines: cur.lines,
                first_line: cur.first_line,
                last_line: cur.last_line,
                sha256: String::new(),
            },
            path,
            finisher: cur.finisher,
        });
        Ok(())
    }

    /// Waits for the oldest closed part to be hashed and committed.
    fn wait_oldest(&mut self) -> Result<(), ChunkError> {
        let Some(Closing {
            mut part,
            path,
            finisher,
        }) = self.closing.pop_front()
        else {
            return Ok(());
        };
        part.sha256 = finisher
            .wait()
            .map_err(|source| ChunkError::Io { path, source })?;
        self.parts.push(part);
        Ok(())
    }

    /// Closes the last part and returns the parts written, in order, once every one is hashed
    /// and committed. On an error, parts after the failed one may still be committed (when the
    /// writer is dropped); the set is then incomplete and has no manifest.
    pub fn finish(mut self) -> Result<Vec<Part>, ChunkError> {
        self.close()?;
        while !self.closing.is_empty() {
            self.wait_oldest()?;
        }
        Ok(std::mem::take(&mut self.parts))
    }
}

/// SHA-256 of a file, lowercase hex (for checking parts against a manifest).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_parts_to_the_cap_on_line_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 10, "txt").unwrap();
        w.write_lines(b"aaaa\nbbbb\ncc\n", 1).unwrap();
        w.write_lines(b"dddddddd\n", 4).unwrap();
        w.write_lines(b"e\n", 5).unwrap();
        let parts = w.finish().unwrap();
        let shape: Vec<_> = parts
            .iter()
            .map(|p| (p.file.as_str(), p.bytes, p.lines, p.first_line, p.last_line))
            .collect();
        assert_eq!(
            shape,
            [
                ("part-00001.txt", 10, 2, 1, 2),
                ("part-00002.txt", 3, 1, 3, 3),
                ("part-00003.txt", 9, 1, 4, 4),
                ("part-00004.txt", 2, 1, 5, 5),
            ]
        );
        assert_eq!(
            std::fs::read(dir.path().join("part-00001.txt")).unwrap(),
            b"aaaa\nbbbb\n"
        );
        assert_eq!(
            parts[0].sha256,
            sha256_file(&dir.path().join("part-00001.txt")).unwrap()
        );
        // No temporary files are left.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn a_line_over_the_cap_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 5, "txt").unwrap();
        w.write_lines(b"ab\n", 1).unwrap();
        let err = w.write_lines(b"abcdef\n", 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2 is 7 bytes long, more than the 5 bytes a part may hold"
        );
    }

    #[test]
    fn a_line_exactly_at_the_cap_fits() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 5, "txt").unwrap();
        w.write_lines(b"abcd\nefgh\n", 1).unwrap();
        assert_eq!(w.finish().unwrap().len(), 2);
    }

    /// File names in a directory, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn parts_hashed_beside_the_writing_match_their_files() {
        // Many parts (more than may be finished at once), each past the announcement step, fed
        // in appends both smaller and larger than the write buffer.
        let dir = tempfile::tempdir().unwrap();
        let cap = 3 * ANNOUNCE_STEP + 17;
        let mut w = ChunkWriter::new(dir.path(), cap, "json").unwrap();
        let mut input = Vec::new();
        let mut line = 1;
        for i in 0..4000u64 {
            let len = 40 + (i * 7919) % 900;
            let mut block: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
            block.push(b'\n');
            if i % 500 == 0 {
                // Now and then a block of many lines at once, larger than the write buffer.
                for _ in 0..(3 << 20) / block.len() {
                    input.extend_from_slice(&block);
                    line += w.write_lines(&block, line).unwrap();
                }
            }
            input.extend_from_slice(&block);
            line += w.write_lines(&block, line).unwrap();
        }
        let parts = w.finish().unwrap();
        assert!(parts.len() > FINISHING + 2, "{} parts", parts.len());
        let mut joined = Vec::new();
        let mut next_line = 1;
        for part in &parts {
            let path = dir.path().join(&part.file);
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.len() as u64 <= cap);
            assert_eq!(part.bytes, bytes.len() as u64);
            assert_eq!(part.sha256, sha256_file(&path).unwrap(), "{}", part.file);
            assert_eq!(part.first_line, next_line);
            next_line = part.last_line + 1;
            joined.extend_from_slice(&bytes);
        }
        assert_eq!(joined, input);
        assert_eq!(
            names(dir.path()).len(),
            parts.len(),
            "no temporary files are left"
        );
    }

    #[test]
    fn a_writer_dropped_with_a_part_half_hashed_removes_it() {
        // 3 MiB into a part that could hold 8: past the write buffer and many announcement
        // steps, so the open part's finisher is at work when the writer is dropped.
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 8 << 20, "txt").unwrap();
        let line = [b"x".repeat(1023), b"\n".to_vec()].concat();
        for i in 0..10 {
            w.write_lines(&line.repeat(300), 1 + 300 * i).unwrap();
        }
        drop(w);
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    }

    #[test]
    fn a_writer_dropped_after_an_error_keeps_closed_parts_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 10, "txt").unwrap();
        w.write_lines(b"aaaa\nbbbb\ncc\n", 1).unwrap();
        assert!(w.write_lines(b"this line is too long\n", 4).is_err());
        drop(w);
        assert_eq!(names(dir.path()), ["part-00001.txt", "part-00002.txt"]);
        assert_eq!(
            std::fs::read(dir.path().join("part-00002.txt")).unwrap(),
            b"cc\n"
        );
    }
}
