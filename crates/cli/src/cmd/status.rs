//! `sailbulk status`: print jobs' statuses, or follow them to the end.

use super::api::{cancel_on_ctrl_c, ApiArgs};
use super::{print_error, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use sailbulk_upload::{wait_for_job, JobState};

/// Arguments of `sailbulk status`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The jobs' ids.
    #[arg(value_name = "JOB_ID", required = true)]
    job_ids: Vec<String>,

    /// Poll each job until it is completed, error or incomplete.
    #[arg(long)]
    wait: bool,

    /// Print each status as the API's JSON object, one per line.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    api: ApiArgs,
}

/// Runs `sailbulk status`; returns the exit status.
pub fn run(args: Args) -> u8 {
    let cancel = cancel_on_ctrl_c();
    let client = match args.api.client(&cancel, |e| eprintln!("sailbulk: {e}")) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sailbulk: error: {e}");
            return EXIT_ERROR;
        }
    };
    let poll = args.api.poll();
    let mut code = EXIT_OK;
    for id in &args.job_ids {
        let result = if args.wait {
            wait_for_job(&client, id, &poll, &cancel, |s| {
                if !s.status.is_final() && !args.json {
                    eprintln!("sailbulk: {s}");
                }
            })
        } else {
            client.job_status(id)
        };
        match result {
            Ok(status) => {
                if args.json {
                    println!("{}", serde_json::Value::Object(status.raw.clone()));
                } else {
                    println!("{status}");
                }
                if matches!(status.status, JobState::Error | JobState::Incomplete)
                    || (args.wait && !status.status.is_final())
                {
                    code = code.max(EXIT_FINDINGS);
                }
            }
            Err(e) => {
                print_error(&format!("job {id}: "), &e);
                code = EXIT_ERROR;
            }
        }
    }
    code
}
