//! One module per subcommand, plus what they share.

pub mod api;
pub mod convert;
pub mod sim;
pub mod split;
pub mod status;
pub mod upload;
pub mod validate;

use std::io;
use std::path::Path;
use tempfile::TempDir;

/// Exit status: the run succeeded and found nothing wrong.
pub const EXIT_OK: u8 = 0;
/// Exit status: the run found problems (an invalid file).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: the command could not run.
pub const EXIT_ERROR: u8 = 2;

/// Prints an error with its chain of causes to stderr.
pub fn print_error(context: &str, err: &(dyn std::error::Error + 'static)) {
    eprintln!("sailbulk: error: {context}{}", error_chain(err));
}

/// An error and its causes, each after a `: `.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    line
}

/// Renders a byte count for people: `950 B`, `12.3 MB` (decimal units, as the API documents its
/// limits).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A directory beside `target` to write a set of files into before they appear at once. Refuses
/// an existing non-empty `target` unless `force`, and a `target` that holds `input`.
pub fn staging_dir(input: &Path, target: &Path, force: bool) -> io::Result<TempDir> {
    input_outside(input, target)?;
    if target.exists() {
        if !target.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
            ));
        }
        let empty = std::fs::read_dir(target)?.next().is_none();
        if !empty && !force {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not empty; pass --force to replace it",
            ));
        }
    }
    let parent = parent_dir(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    tempfile::Builder::new()
        .prefix(&format!(".{name}.sailbulk-"))
        .tempdir_in(parent)
}

/// The directory a path is in; `.` for a bare file name.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Moves a finished staging directory into place, replacing `target`. The old directory is moved
/// aside under a name of its own, and put back if the new one cannot take its place, so an
/// interrupted run leaves the old directory (perhaps beside it, under `.NAME.sailbulk-*.old`) or the
/// new one, never a mix.
pub fn publish_dir(staging: TempDir, target: &Path) -> io::Result<()> {
    let staged = staging.keep();
    // An ordinary directory once in place, not a private temporary one.
    std::fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    if !target.exists() {
        return std::fs::rename(&staged, target);
    }
    let mut old = staged.clone().into_os_string();
    old.push(".old");
    let old = std::path::PathBuf::from(old);
    std::fs::rename(target, &old)?;
    if let Err(e) = std::fs::rename(&staged, target) {
        let _ = std::fs::rename(&old, target);
        return Err(e);
    }
    if let Err(e) = std::fs::remove_dir_all(&old) {
        eprintln!(
            "sailbulk: warning: the new output is in place, but the old one could not be removed from {}: {e}",
            old.display()
        );
    }
    Ok(())
}

/// Refuses to replace a directory that holds the input (`--force` would delete it).
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
    fn human_bytes_uses_decimal_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(1_000_000_000), "1.0 GB");
    }
}
