//! Writing files so that an interrupted run leaves the old file or none, never half a file.

use crate::cleanup::Listed;
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
    /// The path as given, for messages.
    target: PathBuf,
    /// Where the rename lands: see [`destination`].
    dest: PathBuf,
    out: BufWriter<NamedTempFile>,
    /// Bytes written, buffered ones included.
    written: u64,
    /// Bytes of the file whose writeback has been asked for.
    started: u64,
    /// The thread that starts the writeback, made at the first step (a small file has none).
    flusher: Option<Flusher>,
    /// The temporary file, listed for removal should a signal end the process.
    listed: Listed,
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
    /// Starts writing `target`. A symbolic link is followed: the file it names is replaced, not
    /// the link. Refused at once, before anything is written: a target that is a directory, and
    /// one that is not a regular file (a device, a pipe: a rename would replace it, not write to
    /// it).
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let dest = destination(target)?;
        match std::fs::metadata(&dest) {
            Ok(meta) if meta.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a directory",
                ))
            }
            Ok(meta) if !meta.is_file() => return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is not a regular file (the output is written beside it and renamed into place)",
            )),
            _ => {}
        }
        let tmp = tempfile::Builder::new()
            .prefix(".sailbulk-")
            .suffix(".tmp")
            // An ordinary file once renamed into place, not a private temporary one.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(parent_dir(&dest))?;
        let listed = Listed::new(tmp.path());
        Ok(AtomicFile {
            listed,
            target: target.to_path_buf(),
            dest,
            out: BufWriter::with_capacity(1 << 20, tmp),
            written: 0,
            started: 0,
            flusher: None,
        })
    }

    /// The path the file will have once committed, as given.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The path the commit renames the file to: the target with symbolic links followed to the
    /// file they name, in its directory made canonical (two names of one file give one path).
    pub fn destination(&self) -> &Path {
        &self.dest
    }

    /// Whether the commit would replace the file at `path` (the same file, by device and inode:
    /// any name of it, hard links included).
    pub fn replaces(&self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (std::fs::metadata(&self.dest), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
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
            dest: target,
            out,
            flusher,
            listed,
            ..
        } = self;
        let tmp = out.into_inner().map_err(|e| e.into_error())?;
        drop(flusher);
        tmp.as_file().sync_all()?;
        tmp.persist(&target).map_err(|e| e.error)?;
        // Only once it has its name: removing the temporary path later is then a no-op.
        drop(listed);
        // The rename lives in the directory: sync it too, so that a power loss cannot undo it
        // (an upload journal that loses a job id would send a part again). Best effort: not
        // every file system lets a directory be synced.
        if let Ok(dir) = std::fs::File::open(parent_dir(&target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// The path a write to `target` lands on: symbolic links followed to the file they name (a
/// dangling one to where it points), and its directory made canonical, so that two names of one
/// file give one path. Fails when the directory does not exist.
fn destination(target: &Path) -> io::Result<PathBuf> {
    let mut path = target.to_path_buf();
    // As many links as the system follows before it gives up (ELOOP).
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                // A relative link is relative to the link's directory (an absolute one replaces
                // the path whole).
                path = parent_dir(&path).join(std::fs::read_link(&path)?);
            }
            _ => break,
        }
    }
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file", target.display()),
        )
    })?;
    Ok(std::fs::canonicalize(parent_dir(&path))?.join(name))
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
    fn a_link_is_followed_and_what_cannot_be_replaced_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.txt");
        std::fs::write(&real, "old").unwrap();
        // A relative link, in another directory than its target.
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let link = sub.join("link.txt");
        std::os::unix::fs::symlink("../real.txt", &link).unwrap();
        let mut file = AtomicFile::create(&link).unwrap();
        assert_eq!(file.target(), link);
        assert_eq!(file.destination(), real.canonicalize().unwrap());
        assert!(file.replaces(&real) && file.replaces(&link));
        file.write_all(b"new").unwrap();
        file.commit().unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling link: the file is made where it points.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("made.txt", &dangling).unwrap();
        let file = AtomicFile::create(&dangling).unwrap();
        assert!(!file.replaces(&real));
        file.commit().unwrap();
        assert!(dir.path().join("made.txt").is_file());
        // Two names of one path are one destination.
        let a = AtomicFile::create(&dir.path().join("x.txt")).unwrap();
        let b = AtomicFile::create(&sub.join("../x.txt")).unwrap();
        assert_eq!(a.destination(), b.destination());
        // Refused before anything is written: a directory, a device, a missing directory.
        let err = AtomicFile::create(&sub).unwrap_err();
        assert_eq!(err.to_string(), "it is a directory");
        let err = AtomicFile::create(Path::new("/dev/null")).unwrap_err();
        assert!(
            err.to_string().starts_with("it is not a regular file"),
            "{err}"
        );
        assert!(AtomicFile::create(&dir.path().join("none/x.txt")).is_err());
        let left: Vec<_> = std::fs::read_dir(&sub).unwrap().collect();
        assert_eq!(left.len(), 1, "only the link: no temporary file left");
    }

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
