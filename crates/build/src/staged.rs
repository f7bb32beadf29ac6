//! A directory of output files written out of sight and put in place at once: what `split`,
//! `convert -o DIR` and `upload --split` write their parts and manifest into, so that a reader
//! (or a crash) sees the old directory or the new one, never a mix.

use crate::cleanup::Listed;
use std::io;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A directory being written beside its target, to replace it in one step.
///
/// ```
/// use sailbulk_build::StagedDir;
/// let root = tempfile::tempdir()?;
/// let target = root.path().join("parts");
/// let staged = StagedDir::new(&target, None, false)?;
/// std::fs::write(staged.path().join("part-00001.json"), "{\"email\":\"a@example.com\"}\n")?;
/// let published = staged.publish()?;
/// assert!(published.old_left_at.is_none());
/// assert!(target.join("part-00001.json").is_file());
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct StagedDir {
    dir: TempDir,
    target: PathBuf,
    replace: bool,
    /// The directory, listed for removal should a signal end the process.
    listed: Listed,
}

/// What [`StagedDir::publish`] left behind.
#[derive(Debug)]
pub struct Published {
    /// The directory that was replaced, when it could not be removed once the new one was in
    /// place: where it was left, and why it stayed.
    pub old_left_at: Option<(PathBuf, io::Error)>,
}

impl StagedDir {
    /// A hidden directory beside `target` (`.NAME.sailbulk-XXXXXX`) to write into. Refuses a
    /// `target` that exists and is not a directory, one that is not empty unless `replace`, and
    /// one that holds `input` (replacing it would delete the input).
    pub fn new(target: &Path, input: Option<&Path>, replace: bool) -> io::Result<StagedDir> {
        if let Some(input) = input {
            input_outside(input, target)?;
        }
        if target.exists() {
            if !target.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ));
            }
            let empty = std::fs::read_dir(target)?.next().is_none();
            if !empty && !replace {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not empty; pass --force to replace it",
                ));
            }
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let dir = tempfile::Builder::new()
            .prefix(&format!(".{name}.sailbulk-"))
            .tempdir_in(parent_dir(target))?;
        Ok(StagedDir {
            listed: Listed::new(dir.path()),
            dir,
            target: target.to_path_buf(),
            replace,
        })
    }

    /// The directory to write into.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The directory it will replace.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Puts the directory in place of its target. An old target is moved aside first and put
    /// back if the new one cannot take its place, so an interrupted run leaves the old directory
    /// (perhaps beside it, under `.NAME.sailbulk-*.old`) or the new one. Dropping a `StagedDir`
    /// without publishing it removes it and what was written into it.
    pub fn publish(self) -> io::Result<Published> {
        let StagedDir {
            dir,
            target,
            replace,
            listed,
        } = self;
        // A directory that another process filled meanwhile is not replaced unless asked for
        // (the staged one is removed as it is dropped).
        if !replace && target.is_dir() && std::fs::read_dir(&target)?.next().is_some() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "was filled by someone else while the output was written; not replaced",
            ));
        }
        let staged = dir.keep();
        // An ordinary directory once in place, not a private temporary one.
        #[cfg(unix)]
        std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        // Listed until it has been renamed (or has failed to be): a signal in between removes
        // it, not the target.
        let _listed = listed;
        if !target.exists() {
            std::fs::rename(&staged, &target)?;
            return Ok(Published { old_left_at: None });
        }
        let mut old = staged.clone().into_os_string();
        old.push(".old");
        let old = PathBuf::from(old);
        std::fs::rename(&target, &old)?;
        if let Err(e) = std::fs::rename(&staged, &target) {
            let _ = std::fs::rename(&old, &target);
            return Err(e);
        }
        Ok(Published {
            old_left_at: std::fs::remove_dir_all(&old).err().map(|e| (old, e)),
        })
    }
}

/// The directory a path is in; `.` for a bare file name.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Refuses to replace a directory that holds the input.
fn input_outside(input: &Path, target: &Path) -> io::Result<()> {
    if input.as_os_str() == "-" || !target.exists() {
        return Ok(());
    }
    let (input, target) = (input.canonicalize()?, target.canonicalize()?);
    if input.starts_with(&target) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the input is inside the output directory, which would be replaced",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_directory_whole_and_refuses_what_it_must() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("out");
        let staged = StagedDir::new(&target, None, false).unwrap();
        std::fs::write(staged.path().join("a"), "1").unwrap();
        staged.publish().unwrap();
        // Not empty: refused unless replacing is asked for.
        let err = StagedDir::new(&target, None, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let staged = StagedDir::new(&target, None, true).unwrap();
        std::fs::write(staged.path().join("b"), "2").unwrap();
        let published = staged.publish().unwrap();
        assert!(published.old_left_at.is_none());
        assert!(!target.join("a").exists() && target.join("b").is_file());
        // An input inside the target would be deleted: refused even with `replace`.
        let err = StagedDir::new(&target, Some(&target.join("b")), true).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        // A file in the way is refused.
        let file = root.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(StagedDir::new(&file, None, true).is_err());
        // Filled by someone else meanwhile: not replaced unless asked for.
        let late = root.path().join("late");
        let staged = StagedDir::new(&late, None, false).unwrap();
        std::fs::create_dir(&late).unwrap();
        std::fs::write(late.join("theirs"), "x").unwrap();
        let err = staged.publish().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(late.join("theirs").is_file());
        std::fs::remove_dir_all(&late).unwrap();
        // Dropped unpublished: nothing is left behind.
        let staged = StagedDir::new(&root.path().join("never"), None, false).unwrap();
        let path = staged.path().to_path_buf();
        drop(staged);
        assert!(!path.exists() && !root.path().join("never").exists());
        let left: Vec<_> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
    }
}
