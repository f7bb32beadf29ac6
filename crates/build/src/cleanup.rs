//! The temporary files and directories being written, so that a run interrupted by a signal can
//! remove them before it ends (their destructors, which remove them otherwise, do not run then).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The temporary paths being written, in no order.
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary path listed for [`remove_temporaries`] for as long as this lives.
#[derive(Debug)]
pub(crate) struct Listed(PathBuf);

impl Listed {
    pub(crate) fn new(path: &Path) -> Listed {
        lock().push(path.to_path_buf());
        Listed(path.to_path_buf())
    }
}

impl Drop for Listed {
    fn drop(&mut self) {
        let mut pending = lock();
        if let Some(i) = pending.iter().position(|p| *p == self.0) {
            pending.swap_remove(i);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while the list was held leaves it as it was: still a list of paths.
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary file and directory that an [`AtomicFile`](crate::AtomicFile) or a
/// [`StagedDir`](crate::StagedDir) of this process is writing, for a signal handler that is
/// about to end the process (Ctrl-C in the middle of a multi-gigabyte output would otherwise
/// leave it behind). What was already put in place is not touched. Best effort: a path that
/// cannot be removed is left.
pub fn remove_temporaries() {
    for path in lock().drain(..) {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                // A file being added meanwhile can make the first pass fail.
                if std::fs::remove_dir_all(&path).is_err() {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
            }
            Err(_) => {}
        }
    }
}
