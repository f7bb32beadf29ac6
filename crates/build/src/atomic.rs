//! Writing files so that an interrupted run leaves the old file or none, never half a file.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

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
}

impl AtomicFile {
    /// Starts writing `target`.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let tmp = tempfile::Builder::new()
            .prefix(".sailbulk-")
            .suffix(".tmp")
            // An ordinary file once renamed into place, not a private temporary one.
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(parent(target))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, tmp),
        })
    }

    /// The path the file will have once committed.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Bytes written but still in the buffer, not yet in the file.
    pub(crate) fn buffered(&self) -> usize {
        self.out.buffer().len()
    }

    /// A second handle on the temporary file, for reading back what has reached it.
    pub(crate) fn reader(&self) -> io::Result<std::fs::File> {
        self.out.get_ref().as_file().try_clone()
    }

    /// Flushes, syncs and renames the file into place, then syncs the directory.
    pub fn commit(self) -> io::Result<()> {
        let tmp = self.out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.target).map_err(|e| e.error)?;
        // The rename lives in the directory: sync it too, so that a power loss cannot undo it
        // (an upload journal that loses a job id would send a part again). Best effort: not
        // every file system lets a directory be synced.
        if let Ok(dir) = std::fs::File::open(parent(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
