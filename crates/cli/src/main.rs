//! `sailbulk`: validate, build and upload Sailthru bulk update and import files, and simulate the
//! API.
//!
//! Each subcommand lives in `cmd/` and is a thin layer over the libraries: it turns arguments into
//! a configuration, runs the library, and prints. Exit status: 0 success, 1 findings (a file is
//! invalid), 2 the command could not run.

mod cmd;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

/// Validate, build and upload Sailthru bulk update and import files, and simulate the API locally.
#[derive(Debug, Parser)]
#[command(name = "sailbulk", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check update (JSON lines) and email files against every documented rule.
    Validate(cmd::validate::Args),
    /// Convert a CSV into update JSON lines, into one file or size-capped parts.
    Convert(Box<cmd::convert::Args>),
    /// Split a file into parts under the job's size limit, with a manifest.
    Split(cmd::split::Args),
    /// Upload files as update or import jobs: validated, journalled, resumable.
    Upload(Box<cmd::upload::Args>),
    /// Print jobs' statuses, or follow them to the end.
    Status(Box<cmd::status::Args>),
    /// Run a local Sailthru API simulator (job, user, list) for dry runs and tests.
    Sim(Box<cmd::sim::Args>),
}

fn main() -> ExitCode {
    let command = Cli::command().mut_subcommand("validate", cmd::validate::augment);
    let cli = match command
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if matches!(
        cli.command,
        Command::Validate(_) | Command::Convert(_) | Command::Split(_)
    ) {
        // Ctrl-C or SIGTERM ends these at once, without the temporary outputs they were writing.
        // (`upload` and `status` have their own handler, which finishes what is safe first; `sim`
        // stops its server.)
        let _ = ctrlc::set_handler(|| {
            sailbulk_build::remove_temporaries();
            std::process::exit(130);
        });
    }
    let code = match cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Convert(args) => cmd::convert::run(*args),
        Command::Split(args) => cmd::split::run(args),
        Command::Upload(args) => cmd::upload::run(*args),
        Command::Status(args) => cmd::status::run(*args),
        Command::Sim(args) => cmd::sim::run(*args),
    };
    ExitCode::from(code)
}
