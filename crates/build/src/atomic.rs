//! Writing files so that an interrupted run leaves the old file or none, never half a file.

use crate::staged::parent_dir;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file being written under a temporary name beside its target; [`AtomicFile::commit`] renames
/// it into place, and dropping it without committing removes it.
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    out: BufWriter<NamedTempFile>,
    /// Bytes written, buffered ones included.
    written: u64,
    /// Bytes of the file whose writeback has been asked for.
    started: u64,
    /// The thread that starts the writeback, made at the first step (a small file has none).
    flusher: Option<Flusher>,
}

/// A thread that asks the kernel to write ranges of the file back. Starting the writeback can
/// block until the device takes the pages (a virtual disk's queue fills at once), and on the
/// writer's own thread that wait stood between its writes: the disk and the work that makes the
/// bytes took turns instead of overlapping.
#[derive(Debug)]
struct Flusher {
    ranges: Option<std::sync::mpsc::Sender<(u64, u64)>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn spawn(file: std::fs::File) -> io::Result<Flusher> {
        let (ranges, asked) = std::sync::mpsc::channel::<(u64, u64)>();
        let handle = std::thread::Builder::new()
            .name("sailbulk-writeback".into())
            .spawn(move || {
                for (offset, len) in asked {
                    start_writeback(&file, offset, len);
                }
            })?;
        Ok(Flusher {
            ranges: Some(ranges),
            handle: Some(handle),
        })
    }

    fn ask(&self, offset: u64, len: u64) {
        if let Some(ranges) = &self.ranges {
            // The thread ends only once this side is dropped: a send cannot fail before.
            let _ = ranges.send((offset, len));
        }
    }
}

impl Drop for Flusher {
    /// Waits for the writebacks asked for to have started.
    fn drop(&mut self) {
        drop(self.ranges.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// Start writing back every this many bytes, so that the sync at the commit finds little left.
/// Without it, a machine with much memory holds gigabytes dirty until the commit, and the
/// commit then waits for all of them with the CPU idle.
const WRITEBACK_STEP: u64 = 64 << 20;

impl AtomicFile {
    /// Starts writing `target`.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let tmp = tempfile::Builder::new()
            .prefix(".sailbulk-")
            .suffix(".tmp")
            // An ordinary file once renamed into place, not a private temporary one.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(parent_dir(target))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, tmp),
            written: 0,
            started: 0,
            flusher: None,
        })
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Bytes written that have reached the file (the rest are still in the buffer).
    pub(crate) fn in_file(&self) -> u64 {
        self.written - self.out.buffer().len() as u64
    }

    /// Counts written bytes, and starts the writeback of what reached the file since the last
    /// start once that is a step's worth.
    fn wrote(&mut self, n: usize) {
        self.written += n as u64;
        let in_file = self.in_file();
        if in_file - self.started >= WRITEBACK_STEP {
            if self.flusher.is_none() {
                // Without a thread (none left to make), the writeback waits for the commit.
                self.flusher = self
                    .out
                    .get_ref()
                    .as_file()
                    .try_clone()
                    .and_then(Flusher::spawn)
                    .ok();
            }
            if let Some(flusher) = &self.flusher {
                flusher.ask(self.started, in_file - self.started);
            }
            self.started = in_file;
        }
    }

    /// A second handle on the temporary file, for reading back what has reached it.
    pub(crate) fn reader(&self) -> io::Result<std::fs::File> {
        self.out.get_ref().as_file().try_clone()
    }

    /// Flushes, syncs and renames the file into place, then syncs the directory.
    pub fn commit(self) -> io::Result<()> {
        let AtomicFile {
            target,
            out,
            flusher,
            ..
        } = self;
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        drop(flusher);
        tmp.as_file().sync_all()?;
        tmp.persist(&target).map_err(|e| e.error)?;
        // The rename lives in the directory: sync it too, so that a power loss cannot undo it
        // (an upload journal that loses a job id would send a part again). Best effort: not
        // every file system lets a directory be synced.
        if let Ok(dir) = std::fs::File::open(parent_dir(&target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// Asks the kernel to start writing a range of the file to disk, without waiting for it. Best
/// effort: the commit's sync is what makes the file durable.
#[cfg(target_os = "linux")]
fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::unix::io::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the duration of the call, which only reads its
    // arguments; a failure changes nothing and is ignored.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_: &std::fs::File, _: u64, _: u64) {}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.wrote(n);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)?;
        self.wrote(buf.len());
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_several_writeback_steps_is_committed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let mut file = AtomicFile::create(&target).unwrap();
        // Writes of sizes around the buffer's, by `write` and `write_all`, to past two steps.
        let block: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
        let sizes = [
            1,
            1000,
            (1 << 20) - 1,
            1 << 20,
            (1 << 20) + 1,
            (3 << 20) - 5,
            17,
        ];
        let mut expected = Vec::new();
        for (i, &size) in sizes.iter().cycle().enumerate() {
            if expected.len() as u64 > 2 * WRITEBACK_STEP + 7 {
                break;
            }
            let piece = &block[..size];
            let k = if i % 2 == 0 {
                file.write_all(piece).unwrap();
                size
            } else {
                file.write(piece).unwrap()
            };
            expected.extend_from_slice(&piece[..k]);
        }
        assert!(file.started >= WRITEBACK_STEP, "writeback began");
        assert!(file.flusher.is_some(), "on a thread of its own");
        assert!(!target.exists(), "nothing under the name before the commit");
        file.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), expected);
    }
}
