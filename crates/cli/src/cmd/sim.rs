//! `sailbulk sim`: run the local Sailthru API simulator until Ctrl-C.

use super::{print_error, EXIT_ERROR, EXIT_OK};
use sailbulk_sim::{parse_duration, Fault, Route, Sim};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `sailbulk sim`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on; port 0 picks a free port. Loopback unless told otherwise.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8025")]
    listen: String,

    /// The API key the simulator accepts.
    #[arg(long, value_name = "KEY", env = "SAILTHRU_API_KEY")]
    api_key: String,

    /// The shared secret requests must be signed with (or --api-secret-file).
    #[arg(
        long,
        value_name = "SECRET",
        env = "SAILTHRU_API_SECRET",
        hide_env_values = true,
        required_unless_present = "api_secret_file"
    )]
    api_secret: Option<SecretArg>,

    /// Read the shared secret from the first line of this file.
    #[arg(long, value_name = "FILE", conflicts_with = "api_secret")]
    api_secret_file: Option<PathBuf>,

    /// Keep profiles, lists, jobs and uploads in DIR, across restarts (default: in memory).
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,

    /// Inject a fault: ROUTE=ACTION[xN|x*]. ROUTE is POST:/job, /job (any method) or *; ACTION
    /// is 429 (429:5s puts the reset 5 s ahead), 500, 502, 503, 504, drop (read the request,
    /// close without processing),
    /// drop-after (process, then close without answering) or delay:DURATION. xN applies it to
    /// the next N requests (default 1), x* to all. Repeatable; applied in order.
    #[arg(long, value_name = "SPEC", value_parser = Fault::parse)]
    fault: Vec<Fault>,

    /// Set a route's requests per minute: ROUTE=N, as in POST:/job=100. The defaults (the
    /// documented figure for POST /job, a generous one elsewhere) are printed at start.
    /// Repeatable.
    #[arg(long, value_name = "ROUTE=N", value_parser = parse_rate_limit)]
    rate_limit: Vec<(Route, u32)>,

    /// Keep each job pending this long, and running at least this long (250ms, 2s, 1m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0s")]
    job_delay: Duration,

    /// Jobs run at once.
    #[arg(long, value_name = "N", default_value_t = 2)]
    job_workers: usize,

    /// The next N jobs end in status `error`.
    #[arg(long, value_name = "N", default_value_t = 0)]
    fail_jobs: u32,

    /// Do not log requests on stderr.
    #[arg(short, long)]
    quiet: bool,
}

/// A secret from the command line or the environment, kept out of `Debug`.
#[derive(Clone)]
struct SecretArg(String);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SecretArg(s.to_string()))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn parse_rate_limit(text: &str) -> Result<(Route, u32), String> {
    let (route, n) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("`{text}`: a rate limit is ROUTE=N, as in POST:/job=40"))?;
    let n = n
        .parse()
        .map_err(|_| format!("`{text}`: N is a number of requests per minute"))?;
    Ok((Route::parse(route)?, n))
}

/// Runs `sailbulk sim`; returns the exit status.
pub fn run(args: Args) -> u8 {
    let secret = match (&args.api_secret, &args.api_secret_file) {
        (Some(secret), _) => secret.0.clone(),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => text.lines().next().unwrap_or("").trim().to_string(),
            Err(e) => {
                print_error(&format!("cannot read {}: ", path.display()), &e);
                return EXIT_ERROR;
            }
        },
        (None, None) => unreachable!("clap requires one of them"),
    };
    let mut builder = Sim::builder()
        .listen(&args.listen)
        .api_key(&args.api_key)
        .api_secret(secret)
        .job_delay(args.job_delay)
        .job_workers(args.job_workers)
        .fail_jobs(args.fail_jobs);
    if let Some(dir) = &args.state {
        builder = builder.state_dir(dir);
    }
    for fault in args.fault {
        builder = builder.fault(fault);
    }
    let overrides: Vec<String> = args
        .rate_limit
        .iter()
        .map(|(route, n)| format!("{route} {n}"))
        .collect();
    for (route, n) in args.rate_limit {
        builder = builder.rate_limit(route, n);
    }
    if !args.quiet {
        builder = builder.on_request(|record| eprintln!("{record}"));
    }
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    }) {
        print_error("cannot handle Ctrl-C: ", &e);
        return EXIT_ERROR;
    }
    let sim = match builder.start() {
        Ok(sim) => sim,
        Err(e) => {
            print_error("", &e);
            return EXIT_ERROR;
        }
    };
    // The first line of stdout is the address, for scripts that start the simulator on port 0.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", sim.url());
    let _ = out.flush();
    drop(out);
    if !sim.addr().ip().is_loopback() {
        eprintln!(
            "sailbulk: warning: listening on {}, which is not a loopback address",
            sim.addr()
        );
    }
    eprintln!(
        "sailbulk: rate limits per minute: POST /job {}, other routes {}{}",
        sailbulk_spec::api::JOB_POST_PER_MINUTE,
        sailbulk_spec::api::DEFAULT_PER_MINUTE,
        if overrides.is_empty() {
            " (change with --rate-limit)".to_string()
        } else {
            format!("; set by --rate-limit: {}", overrides.join(", "))
        }
    );
    match &args.state {
        Some(dir) => eprintln!("sailbulk: state in {}", dir.display()),
        None => eprintln!("sailbulk: state in memory; it is gone when the simulator stops"),
    }
    let _ = stop_rx.recv();
    sim.stop();
    eprintln!("sailbulk: simulator stopped");
    EXIT_OK
}
