//! One module per subcommand, plus what they share.

pub mod api;
pub mod convert;
pub mod sim;
pub mod split;
pub mod status;
pub mod upload;
pub mod validate;

use sailbulk_build::StagedDir;
use std::io;

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

pub use sailbulk_parse::{counted, error_chain, human_bytes};

/// Puts a staged directory in place (see [`StagedDir::publish`]), with a warning when the one it
/// replaced could not be removed.
pub fn publish(staged: StagedDir) -> io::Result<()> {
    let published = staged.publish()?;
    if let Some((old, e)) = published.old_left_at {
        eprintln!(
            "sailbulk: warning: the new output is in place, but the old one could not be removed from {}: {e}",
            old.display()
        );
    }
    Ok(())
}
