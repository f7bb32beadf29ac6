//! What `upload` and `status` share: the API flags, the client, Ctrl-C, job status lines.

use sailbulk_sim::parse_duration;
use sailbulk_upload::{Client, ClientBuilder, PollPolicy, RetryPolicy, Secret, DEFAULT_API_URL};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where the API is and how to sign for it.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The API's base URL (a `sailbulk sim` address for a dry run).
    #[arg(long, value_name = "URL", env = "SAILTHRU_API_URL", default_value = DEFAULT_API_URL)]
    api_url: String,

    /// The API key.
    #[arg(long, value_name = "KEY", env = "SAILTHRU_API_KEY")]
    api_key: String,

    /// A file whose first line is the API secret; without it, the secret is read from
    /// SAILTHRU_API_SECRET. (There is no flag for the secret itself: command lines are visible
    /// to other users.)
    #[arg(long, value_name = "FILE")]
    api_secret_file: Option<PathBuf>,

    /// Retries of a call that failed in a way that is safe to retry (connection failures,
    /// 502/503/504, error 9); a call whose answer was lost after it was sent is retried at
    /// most twice.
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_retries: u32,

    /// The first wait before a retry; it doubles each time, with jitter, up to a minute.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    retry_delay: Duration,

    /// The first wait between status polls; waits grow by half up to 30 s (250ms, 1s, 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "1s")]
    pub poll_interval: Duration,
}

impl ApiArgs {
    /// The client, or a message for the user.
    pub fn client(
        &self,
        cancel: &Arc<AtomicBool>,
        on_event: impl Fn(&sailbulk_upload::ClientEvent) + Send + Sync + 'static,
    ) -> Result<Client, String> {
        let secret = match &self.api_secret_file {
            Some(path) => Secret::from_file(path)
                .map_err(|e| format!("cannot read the API secret from {}: {e}", path.display()))?,
            None => match std::env::var("SAILTHRU_API_SECRET") {
                Ok(s) if !s.is_empty() => Secret::new(s),
                _ => {
                    return Err(
                        "no API secret: set SAILTHRU_API_SECRET or pass --api-secret-file".into(),
                    )
                }
            },
        };
        ClientBuilder::new(&self.api_key, secret)
            .base_url(&self.api_url)
            .retry(RetryPolicy {
                max_attempts: self.max_retries + 1,
                base_delay: self.retry_delay,
                ..RetryPolicy::default()
            })
            .cancel_flag(cancel.clone())
            .on_event(on_event)
            .build()
            .map_err(|e| e.to_string())
    }

    /// How to poll.
    pub fn poll(&self) -> PollPolicy {
        PollPolicy {
            initial: self.poll_interval,
            max: Duration::from_secs(30).max(self.poll_interval),
            timeout: None,
        }
    }
}

/// A flag set by Ctrl-C (and SIGTERM); a second Ctrl-C ends the process at once.
pub fn cancel_on_ctrl_c() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            sailbulk_build::remove_temporaries();
            std::process::exit(130);
        }
        eprintln!(
            "sailbulk: interrupted; finishing what is safe to finish (Ctrl-C again to quit now)"
        );
    });
    flag
}
