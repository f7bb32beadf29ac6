//! The signed API client: requests, retries, rate limits, typed calls.

use crate::sign::sign;
use sailbulk_spec::api::{self as spec, ErrorCode};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The production base URL; every client lets it be overridden (API notes).
pub const DEFAULT_API_URL: &str = "https://api.sailthru.com";

/// The largest answer read; API answers are small JSON objects.
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// The API secret. It never appears in `Debug`, `Display`, errors or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// Reads a secret from the first line of a file (surrounding whitespace trimmed).
    pub fn from_file(path: &Path) -> io::Result<Secret> {
        let text = std::fs::read_to_string(path)?;
        Ok(Secret(text.lines().next().unwrap_or("").trim().to_string()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// An HTTP method the API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Read: parameters in the query string.
    Get,
    /// Write: parameters in a form body, or a multipart body with a file.
    Post,
    /// Delete: parameters in the query string.
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rate limit an answer reported (`X-Rate-Limit-*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in the window.
    pub limit: u64,
    /// Requests left in the window.
    pub remaining: u64,
    /// Epoch second the window resets.
    pub reset: u64,
}

impl RateLimit {
    fn from_response(response: &ureq::Response) -> Option<RateLimit> {
        let get = |i: usize| {
            response
                .header(spec::RATE_LIMIT_HEADERS[i])?
                .trim()
                .parse()
                .ok()
        };
        Some(RateLimit {
            limit: get(0)?,
            remaining: get(1)?,
            reset: get(2)?,
        })
    }
}

/// An error answer of the API: `{"error": code, "errormsg": message}` with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub http_status: u16,
    /// The API error code (`sailbulk_spec::api`), when the body had one.
    pub code: Option<ErrorCode>,
    /// The API's message, or the start of a body that was not an API error.
    pub message: String,
    /// The rate limit the answer reported.
    pub rate_limit: Option<RateLimit>,
}

impl ApiError {
    /// Whether the API refused the credentials (HTTP 401, error 3 "invalid API key" or 5
    /// "authentication failed"): a call that could not be made, rather than one it refused.
    pub fn refuses_credentials(&self) -> bool {
        self.http_status == 401
            || matches!(self.code, Some(c) if c == spec::ERROR_INVALID_API_KEY || c == spec::ERROR_AUTHENTICATION_FAILED)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(
                f,
                "HTTP {}, error {code}: {}",
                self.http_status, self.message
            ),
            None => write!(f, "HTTP {}: {}", self.http_status, self.message),
        }
    }
}

impl std::error::Error for ApiError {}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The API refused the call (an error answer not worth retrying, or retries ran out).
    #[error("{method} /{action}: {error}")]
    Api {
        /// The call's method.
        method: Method,
        /// The call's action.
        action: String,
        /// The answer (in the message already, so not a `source`).
        error: ApiError,
        /// Whether an earlier send of this write may have been applied (its answer was lost
        /// after the whole request went out).
        possibly_applied: bool,
    },
    /// The server could not be reached or the connection failed, and retries ran out.
    #[error("{method} /{action}: {message}")]
    Transport {
        /// The call's method.
        method: Method,
        /// The call's action.
        action: String,
        /// What went wrong (never holds the secret).
        message: String,
        /// Whether a request was sent in full before an answer was lost: the call may have
        /// been applied (a job may exist) although it failed here.
        possibly_applied: bool,
    },
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The run was cancelled (Ctrl-C) before the call finished.
    #[error("cancelled")]
    Cancelled {
        /// Whether an earlier send of this write may have been applied.
        possibly_applied: bool,
    },
    /// The file changed while it was sent; the upload was abandoned before its end, so the API
    /// made nothing of this send (an earlier send of the call, whose answer was lost, may have
    /// made a job).
    #[error("{} changed while it was sent (its SHA-256 is no longer the one checked before); {}", path.display(), if *possibly_applied { "this send was abandoned, but an earlier one whose answer was lost may have made a job" } else { "nothing was submitted" })]
    FileChanged {
        /// The file.
        path: PathBuf,
        /// Whether an earlier send of this call went out whole and its answer was lost.
        possibly_applied: bool,
    },
    /// The client is not configured well enough to run.
    #[error("{0}")]
    Config(String),
}

impl Error {
    /// The API's answer, if the failure was one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            Error::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the call, although it failed, may have been applied: a write whose whole request
    /// went out and whose answer was lost, then failed again. A job may exist for it.
    pub fn possibly_applied(&self) -> bool {
        match self {
            Error::Api {
                possibly_applied, ..
            }
            | Error::Transport {
                possibly_applied, ..
            }
            | Error::Cancelled { possibly_applied }
            | Error::FileChanged {
                possibly_applied, ..
            } => *possibly_applied,
            _ => false,
        }
    }

    /// Whether the call was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled { .. })
    }
}

/// When and how often to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all for a failure that is safe to retry (connection failed before the request
    /// was sent, 502/503/504, error 9). Default 6.
    pub max_attempts: u32,
    /// The first backoff; it doubles with each retry, with jitter. Default 1 s.
    pub base_delay: Duration,
    /// The longest backoff. Default 60 s.
    pub max_delay: Duration,
    /// Retries after a failure whose outcome is unknown (the whole request was sent, then the
    /// connection dropped or HTTP 500 came back): the request may have been applied, so it is
    /// retried at most this many times, each logged as possibly duplicated. Default 2.
    pub max_unconfirmed_retries: u32,
    /// The longest wait for a rate-limit reset before giving up. Default 5 min.
    pub max_rate_limit_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_unconfirmed_retries: 2,
            max_rate_limit_wait: Duration::from_secs(300),
        }
    }
}

/// Something the client did that a caller may want to log.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A call is sent again after `delay`.
    Retry {
        /// What was sent (`POST /job` and the part's file name, when there is one).
        what: String,
        /// The attempt that comes next (2 for the first retry).
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// Why.
        reason: String,
    },
    /// A call whose whole request was sent failed without a clear answer and is sent again: the
    /// first may have been applied, so the job may exist twice.
    PossiblyDuplicated {
        /// What was sent.
        what: String,
        /// Why the outcome is unknown.
        reason: String,
    },
    /// The client waits for the rate-limit window to reset.
    RateLimitWait {
        /// What waits.
        what: String,
        /// How long.
        wait: Duration,
    },
}

impl fmt::Display for ClientEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientEvent::Retry {
                what,
                attempt,
                delay,
                reason,
            } => write!(
                f,
                "{what}: {reason}; attempt {attempt} in {:.1} s",
                delay.as_secs_f64()
            ),
            ClientEvent::PossiblyDuplicated { what, reason } => write!(
                f,
                "{what}: {reason} after the whole request was sent; sending it again, which may duplicate it"
            ),
            ClientEvent::RateLimitWait { what, wait } => write!(
                f,
                "{what}: rate limit reached; waiting {:.1} s for the window to reset",
                wait.as_secs_f64()
            ),
        }
    }
}

type EventHook = Arc<dyn Fn(&ClientEvent) + Send + Sync>;

/// Configures a [`Client`].
///
/// ```
/// use sailbulk_upload::{ClientBuilder, Secret};
/// let client = ClientBuilder::new("my-key", Secret::new("my-secret"))
///     .base_url("http://127.0.0.1:8025")
///     .build()
///     .unwrap();
/// assert!(!format!("{client:?}").contains("my-secret"));
/// ```
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: String,
    secret: Secret,
    connect_timeout: Duration,
    read_timeout: Duration,
    write_timeout: Duration,
    retry: RetryPolicy,
    on_event: Option<EventHook>,
    cancel: Option<Arc<AtomicBool>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key)
            .field("secret", &self.secret)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// A builder for this key and secret, against [`DEFAULT_API_URL`].
    pub fn new(api_key: impl Into<String>, secret: Secret) -> ClientBuilder {
        ClientBuilder {
            base_url: DEFAULT_API_URL.into(),
            api_key: api_key.into(),
            secret,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(120),
            write_timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            on_event: None,
            cancel: None,
        }
    }

    /// A builder from `SAILTHRU_API_URL` (optional), `SAILTHRU_API_KEY` and
    /// `SAILTHRU_API_SECRET`.
    pub fn from_env() -> Result<ClientBuilder, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let key = var("SAILTHRU_API_KEY")
            .ok_or_else(|| Error::Config("SAILTHRU_API_KEY is not set".into()))?;
        let secret = var("SAILTHRU_API_SECRET")
            .ok_or_else(|| Error::Config("SAILTHRU_API_SECRET is not set".into()))?;
        let mut builder = ClientBuilder::new(key, Secret::new(secret));
        if let Some(url) = var("SAILTHRU_API_URL") {
            builder = builder.base_url(url);
        }
        Ok(builder)
    }

    /// The base URL, without the action. Default [`DEFAULT_API_URL`].
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_string();
        self
    }

    /// How long to wait for a connection. Default 15 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// How long one read of the answer may wait. Default 120 s; there is no timeout for the
    /// whole call, which a big upload would hit.
    pub fn read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = d;
        self
    }

    /// How long one write of the request may wait. Default 120 s.
    pub fn write_timeout(mut self, d: Duration) -> Self {
        self.write_timeout = d;
        self
    }

    /// When and how often to retry. Default [`RetryPolicy::default`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Called for retries, rate-limit waits and possible duplicates. Default: none.
    pub fn on_event(mut self, hook: impl Fn(&ClientEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// A flag that, once set, stops calls: waits end early and an upload in progress is
    /// abandoned before its last byte (so no job is created by it). Default: none.
    pub fn cancel_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, Error> {
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(Error::Config(format!(
                "the API URL `{}` is not an http:// or https:// URL",
                self.base_url
            )));
        }
        if self.api_key.is_empty() || self.secret.expose().is_empty() {
            return Err(Error::Config(
                "the API key and secret must not be empty".into(),
            ));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(self.connect_timeout)
            .timeout_read(self.read_timeout)
            .timeout_write(self.write_timeout)
            .redirects(0)
            // A fresh connection per call: a pooled one the server has closed would fail a POST
            // after its body was written, an outcome that could not be told from a lost answer.
            .max_idle_connections(0)
            .user_agent(concat!("sailbulk/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent,
            config: self,
            windows: Mutex::new(HashMap::new()),
        })
    }
}

/// A signed client of the API.
///
/// Every call sends `api_key`, `format=json`, `json` and `sig`: GET and DELETE in the query
/// string, POST as a form, a POST with a file as a multipart body streamed from disk with its
/// length known. Calls are retried as [`RetryPolicy`] says, and wait for the rate-limit window
/// when the API says it is used up.
pub struct Client {
    agent: ureq::Agent,
    config: ClientBuilder,
    windows: Mutex<HashMap<(Method, String), RateLimit>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.config.base_url)
            .field("api_key", &self.config.api_key)
            .field("secret", &self.config.secret)
            .finish_non_exhaustive()
    }
}

/// A file to send as the multipart part `file`.
#[derive(Clone)]
pub struct FileUpload<'a> {
    /// The file.
    pub path: &'a Path,
    /// The name the API sees (`filename=`); the path's file name by default.
    pub name: Option<&'a str>,
    /// Called with the bytes of the file sent so far, as they go.
    pub progress: Option<&'a (dyn Fn(u64) + Sync)>,
    /// The file's SHA-256 (lower-case hex) as checked before sending: the bytes sent are
    /// hashed as they go, and the upload is abandoned before its end if they differ.
    pub expected_sha256: Option<&'a str>,
    /// The file's size as checked before sending.
    pub expected_len: Option<u64>,
}

impl<'a> FileUpload<'a> {
    /// A file with its name taken from its path, no progress callback and no checks.
    pub fn new(path: &'a Path) -> FileUpload<'a> {
        FileUpload {
            path,
            name: None,
            progress: None,
            expected_sha256: None,
            expected_len: None,
        }
    }
}

impl fmt::Debug for FileUpload<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileUpload")
            .field("path", &self.path)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status (200).
    pub status: u16,
    /// The JSON body.
    pub body: Value,
    /// The rate limit it reported.
    pub rate_limit: Option<RateLimit>,
    /// How many times a write was sent again after a lost answer: above 0, an earlier send may
    /// have been applied too.
    pub unconfirmed_retries: u32,
}

/// How an attempt ended.
enum Attempt {
    Done(Result<Reply, ApiError>),
    /// Safe to send again (nothing was applied).
    Retry(String),
    /// The whole request went out and no clear answer came back.
    Unknown(String),
    /// Rate limited: wait until this epoch second.
    WaitUntil(u64, ApiError),
    /// Cancelled; after the whole request went out, the call may have been applied.
    Cancelled {
        after_full_send: bool,
    },
}

/// Sleeps for `d`, waking early when `cancelled()` says so; false if cancelled.
/// Locks a mutex; a thread that panicked while holding it leaves data that is still usable here
/// (counters, logs, bookkeeping), so the poison is ignored.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn sleep_unless(d: Duration, cancelled: impl Fn() -> bool) -> bool {
    let end = Instant::now() + d;
    loop {
        if cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= end {
            return true;
        }
        std::thread::sleep((end - now).min(Duration::from_millis(50)));
    }
}

/// The time in epoch seconds, as the rate-limit reset and the journal give it.
pub(crate) fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Client {
    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    fn event(&self, event: ClientEvent) {
        if let Some(hook) = &self.config.on_event {
            hook(&event);
        }
    }

    fn cancelled(&self) -> bool {
        self.config
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
    }

    /// Sleeps, waking early when cancelled; false if cancelled.
    fn sleep(&self, d: Duration) -> bool {
        sleep_unless(d, || self.cancelled())
    }

    fn backoff(&self, retry: u32) -> Duration {
        let policy = &self.config.retry;
        let exp = policy
            .base_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(policy.max_delay);
        // Full jitter in the upper half: spreads clients out without waiting less than half.
        let nanos = exp.as_nanos() as u64;
        let jitter = if nanos > 1 { random() % (nanos / 2) } else { 0 };
        Duration::from_nanos(nanos / 2 + jitter)
    }

    /// The four parameters of a call, signed.
    fn signed_params(&self, json_text: &str) -> [(&'static str, String); 4] {
        let key = self.config.api_key.as_str();
        let sig = sign(self.config.secret.expose(), [key, "json", json_text]);
        [
            ("api_key", key.to_string()),
            ("format", "json".to_string()),
            ("json", json_text.to_string()),
            ("sig", sig),
        ]
    }

    /// Calls `method /action` with `params` (the call's JSON object), retrying as the policy
    /// says. `file` sends a multipart upload.
    pub fn call(
        &self,
        method: Method,
        action: &str,
        params: &Value,
        file: Option<&FileUpload<'_>>,
    ) -> Result<Reply, Error> {
        let json_text = params.to_string();
        let what = match file {
            Some(f) => format!(
                "{method} /{action} `{}`",
                f.name
                    .map(str::to_string)
                    .unwrap_or_else(|| file_name(f.path))
            ),
            None => format!("{method} /{action}"),
        };
        // Writes are not idempotent: a POST that may have been applied is retried with care.
        let idempotent = method != Method::Post;
        let policy = &self.config.retry;
        let mut attempts = 0u32;
        let mut unknown = 0u32;
        let mut waited = Duration::ZERO;
        // Every error says whether an earlier send of a write may have been applied.
        let possibly = |unknown: u32| !idempotent && unknown > 0;
        let api = |error: ApiError, unknown: u32| Error::Api {
            method,
            action: action.to_string(),
            error,
            possibly_applied: possibly(unknown),
        };
        let cancelled = |unknown: u32| Error::Cancelled {
            possibly_applied: possibly(unknown),
        };
        loop {
            if self.cancelled() {
                return Err(cancelled(unknown));
            }
            if !self.respect_window(method, action, &what, &mut waited) {
                return Err(cancelled(unknown));
            }
            attempts += 1;
            let outcome = match self.attempt(method, action, &json_text, file) {
                Ok(outcome) => outcome,
                Err(Error::Io { path, source }) if unknown == 0 => {
                    return Err(Error::Io { path, source })
                }
                Err(Error::FileChanged { path, .. }) => {
                    return Err(Error::FileChanged {
                        path,
                        possibly_applied: possibly(unknown),
                    })
                }
                Err(e) => {
                    return Err(Error::Transport {
                        method,
                        action: action.to_string(),
                        message: sailbulk_parse::error_chain(&e),
                        possibly_applied: possibly(unknown),
                    })
                }
            };
            let (reason, is_unknown) = match outcome {
                Attempt::Done(Ok(mut reply)) => {
                    reply.unconfirmed_retries = if idempotent { 0 } else { unknown };
                    return Ok(reply);
                }
                Attempt::Done(Err(error)) => return Err(api(error, unknown)),
                Attempt::Cancelled { after_full_send } => {
                    return Err(cancelled(unknown + u32::from(after_full_send)))
                }
                Attempt::WaitUntil(reset, error) => {
                    let wait = Duration::from_secs(reset.saturating_sub(epoch_now()).max(1));
                    waited += wait;
                    if waited > policy.max_rate_limit_wait {
                        return Err(api(error, unknown));
                    }
                    self.event(ClientEvent::RateLimitWait {
                        what: what.clone(),
                        wait,
                    });
                    if !self.sleep(wait) {
                        return Err(cancelled(unknown));
                    }
                    // A 429 is not an attempt used up: nothing was processed.
                    attempts -= 1;
                    continue;
                }
                Attempt::Retry(reason) => (reason, false),
                Attempt::Unknown(reason) if idempotent => (reason, false),
                Attempt::Unknown(reason) => (reason, true),
            };
            if is_unknown {
                unknown += 1;
            }
            let give_up = if is_unknown {
                unknown > policy.max_unconfirmed_retries
            } else {
                attempts >= policy.max_attempts
            };
            if give_up {
                return Err(Error::Transport {
                    method,
                    action: action.to_string(),
                    message: format!("{reason} (gave up after {attempts} attempts)"),
                    possibly_applied: possibly(unknown),
                });
            }
            if is_unknown {
                self.event(ClientEvent::PossiblyDuplicated {
                    what: what.clone(),
                    reason: reason.clone(),
                });
            }
            let delay = self.backoff(attempts - 1);
            self.event(ClientEvent::Retry {
                what: what.clone(),
                attempt: attempts + 1,
                delay,
                reason,
            });
            if !self.sleep(delay) {
                return Err(cancelled(unknown));
            }
        }
    }

    /// Waits when the last answer for this route said the window is used up; false if
    /// cancelled while waiting.
    fn respect_window(
        &self,
        method: Method,
        action: &str,
        what: &str,
        waited: &mut Duration,
    ) -> bool {
        let window = locked(&self.windows)
            .get(&(method, action.to_string()))
            .copied();
        if let Some(wait) = window.and_then(|w| slow_down(&w, epoch_now())) {
            if *waited + wait <= self.config.retry.max_rate_limit_wait {
                *waited += wait;
                self.event(ClientEvent::RateLimitWait {
                    what: what.to_string(),
                    wait,
                });
                if !self.sleep(wait) {
                    return false;
                }
            } else {
                // Past the budget: send anyway, and let a 429 say how long.
                self.event(ClientEvent::RateLimitWait {
                    what: format!("{what} (not waited: over the wait budget)"),
                    wait: Duration::ZERO,
                });
            }
        }
        true
    }

    fn attempt(
        &self,
        method: Method,
        action: &str,
        json_text: &str,
        file: Option<&FileUpload<'_>>,
    ) -> Result<Attempt, Error> {
        let url = format!("{}/{action}", self.config.base_url);
        let params = self.signed_params(json_text);
        let sent = Arc::new(AtomicBool::new(false));
        let changed = Arc::new(AtomicBool::new(false));
        let result = match (method, file) {
            (Method::Post, Some(file)) => {
                let boundary = format!("sailbulk-{:016x}{:016x}", random(), random());
                let mut head = String::new();
                for (name, value) in &params {
                    head.push_str(&format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                    ));
                }
                let name = file
                    .name
                    .map(str::to_string)
                    .unwrap_or_else(|| file_name(file.path))
                    .replace(['"', '\r', '\n'], "_");
                head.push_str(&format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ));
                let tail = format!("\r\n--{boundary}--\r\n");
                let handle = std::fs::File::open(file.path).map_err(|source| Error::Io {
                    path: file.path.to_path_buf(),
                    source,
                })?;
                let len = handle
                    .metadata()
                    .map_err(|source| Error::Io {
                        path: file.path.to_path_buf(),
                        source,
                    })?
                    .len();
                if let Some(expected) = file.expected_len {
                    if expected != len {
                        return Err(Error::FileChanged {
                            path: file.path.to_path_buf(),
                            possibly_applied: false,
                        });
                    }
                }
                let body = io::Cursor::new(head.clone().into_bytes())
                    .chain(FileBody {
                        file: handle,
                        left: len,
                        sent: AtomicU64::new(0),
                        progress: file.progress,
                        cancel: self.config.cancel.clone(),
                        hasher: file.expected_sha256.map(|_| Sha256::new()),
                        expected: file.expected_sha256,
                        changed: changed.clone(),
                    })
                    .chain(io::Cursor::new(tail.clone().into_bytes()));
                let total = head.len() as u64 + len + tail.len() as u64;
                self.agent
                    .post(&url)
                    .set(
                        "Content-Type",
                        &format!("multipart/form-data; boundary={boundary}"),
                    )
                    .set("Content-Length", &total.to_string())
                    .send(Tracked {
                        inner: body,
                        sent: sent.clone(),
                    })
            }
            (Method::Post, None) => {
                let form: Vec<String> = params
                    .iter()
                    .map(|(k, v)| format!("{k}={}", form_encode(v)))
                    .collect();
                let form = form.join("&");
                self.agent
                    .post(&url)
                    .set("Content-Type", "application/x-www-form-urlencoded")
                    .set("Content-Length", &form.len().to_string())
                    .send(Tracked {
                        inner: io::Cursor::new(form.into_bytes()),
                        sent: sent.clone(),
                    })
            }
            (method, _) => {
                let query: Vec<String> = params
                    .iter()
                    .map(|(k, v)| format!("{k}={}", form_encode(v)))
                    .collect();
                let url = format!("{url}?{}", query.join("&"));
                sent.store(true, Ordering::SeqCst);
                self.agent.request(method.as_str(), &url).call()
            }
        };
        let fully_sent = sent.load(Ordering::SeqCst);
        Ok(match result {
            Ok(response) if (300..400).contains(&response.status()) => {
                // Redirects are not followed: a POST would be sent again, or turned into a GET.
                let location = response.header("location").unwrap_or("nowhere").to_string();
                Attempt::Done(Err(ApiError {
                    http_status: response.status(),
                    code: None,
                    message: format!(
                        "redirected to {location}; give the final URL as the API URL (https://api.sailthru.com)"
                    ),
                    rate_limit: None,
                }))
            }
            Ok(response) => {
                let rate_limit = RateLimit::from_response(&response);
                self.note_window(method, action, rate_limit);
                let status = response.status();
                match read_json(response) {
                    Ok(body) => match api_error_in(&body) {
                        // Some pages answer errors with HTTP 200 (the list page's validations).
                        Some((code, message)) => classify_api_error(ApiError {
                            http_status: status,
                            code: Some(code),
                            message,
                            rate_limit,
                        }),
                        None => Attempt::Done(Ok(Reply {
                            status,
                            body,
                            rate_limit,
                            unconfirmed_retries: 0,
                        })),
                    },
                    Err(e) => {
                        Attempt::Unknown(format!("HTTP {status} with an unreadable answer: {e}"))
                    }
                }
            }
            Err(ureq::Error::Status(status, response)) => {
                let rate_limit = RateLimit::from_response(&response);
                self.note_window(method, action, rate_limit);
                let text = read_text(response);
                let (code, message) = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| api_error_in(&v))
                    .map(|(c, m)| (Some(c), m))
                    .unwrap_or_else(|| (None, snippet(&text)));
                let error = ApiError {
                    http_status: status,
                    code,
                    message,
                    rate_limit,
                };
                classify_status(error, fully_sent)
            }
            Err(ureq::Error::Transport(_)) if changed.load(Ordering::SeqCst) => {
                return Err(Error::FileChanged {
                    path: file.map(|f| f.path.to_path_buf()).unwrap_or_default(),
                    possibly_applied: false,
                });
            }
            Err(ureq::Error::Transport(transport)) => {
                if self.cancelled() {
                    Attempt::Cancelled {
                        after_full_send: fully_sent,
                    }
                } else if fully_sent {
                    Attempt::Unknown(transport_message(&transport))
                } else {
                    Attempt::Retry(transport_message(&transport))
                }
            }
        })
    }

    fn note_window(&self, method: Method, action: &str, limit: Option<RateLimit>) {
        if let Some(limit) = limit {
            locked(&self.windows).insert((method, action.to_string()), limit);
        }
    }

    /// GET `/job`: a job's status.
    pub fn job_status(&self, job_id: &str) -> Result<JobStatus, Error> {
        let reply = self.call(
            Method::Get,
            "job",
            &serde_json::json!({ "job_id": job_id }),
            None,
        )?;
        Ok(JobStatus::from_value(reply.body))
    }

    /// POST `/job`: submits a job; `file` is sent as the multipart part `file`.
    pub fn submit_job(
        &self,
        params: &Value,
        file: Option<&FileUpload<'_>>,
    ) -> Result<JobSubmitted, Error> {
        let reply = self.call(Method::Post, "job", params, file)?;
        let body = &reply.body;
        let job_id = body
            .get("job_id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Api {
                method: Method::Post,
                action: "job".into(),
                error: ApiError {
                    http_status: reply.status,
                    code: None,
                    message: format!("the answer has no job_id: {}", snippet(&body.to_string())),
                    rate_limit: reply.rate_limit,
                },
                possibly_applied: reply.unconfirmed_retries > 0,
            })?
            .to_string();
        Ok(JobSubmitted {
            job_id,
            name: body.get("name").and_then(Value::as_str).map(str::to_string),
            status: JobState::parse(
                body.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("pending"),
            ),
            possibly_duplicated: reply.unconfirmed_retries > 0,
        })
    }

    /// GET `/user`: a profile by `id` and `key` (`email` when `None`); `fields` selects what
    /// comes back.
    pub fn get_user(
        &self,
        id: &str,
        key: Option<&str>,
        fields: Option<&Value>,
    ) -> Result<User, Error> {
        let mut params = Map::new();
        params.insert("id".into(), id.into());
        if let Some(key) = key {
            params.insert("key".into(), key.into());
        }
        if let Some(fields) = fields {
            params.insert("fields".into(), fields.clone());
        }
        let reply = self.call(Method::Get, "user", &Value::Object(params), None)?;
        Ok(User::from_value(reply.body))
    }

    /// GET `/list`: one list.
    pub fn get_list(&self, name: &str, with_vars: bool) -> Result<ListInfo, Error> {
        let mut params = serde_json::json!({ "list": name });
        if with_vars {
            params["fields"] = serde_json::json!({"vars": 1});
        }
        let reply = self.call(Method::Get, "list", &params, None)?;
        Ok(ListInfo::from_value(reply.body))
    }

    /// GET `/list` with no name: every list.
    pub fn get_lists(&self) -> Result<Vec<ListInfo>, Error> {
        let reply = self.call(Method::Get, "list", &serde_json::json!({}), None)?;
        Ok(reply
            .body
            .get("lists")
            .and_then(Value::as_array)
            .map(|lists| lists.iter().cloned().map(ListInfo::from_value).collect())
            .unwrap_or_default())
    }

    /// POST `/list`: creates or updates a list; `params` holds `list` and what to set
    /// (`primary`, `vars`, `public_name`, `type`).
    pub fn save_list(&self, params: &Value) -> Result<ListInfo, Error> {
        let reply = self.call(Method::Post, "list", params, None)?;
        Ok(ListInfo::from_value(reply.body))
    }

    /// DELETE `/list`.
    pub fn delete_list(&self, name: &str) -> Result<(), Error> {
        self.call(
            Method::Delete,
            "list",
            &serde_json::json!({ "list": name }),
            None,
        )?;
        Ok(())
    }
}

/// How long to wait before the next call of a route whose window is used up.
fn slow_down(window: &RateLimit, now: u64) -> Option<Duration> {
    (window.remaining == 0 && window.reset > now).then(|| Duration::from_secs(window.reset - now))
}

/// What an HTTP error status means for a retry. `fully_sent`: the whole request had gone out
/// when the answer came.
fn classify_status(error: ApiError, fully_sent: bool) -> Attempt {
    match error.http_status {
        429 => {
            let reset = error
                .rate_limit
                .map(|r| r.reset)
                .filter(|&r| r > epoch_now())
                .unwrap_or_else(|| epoch_now() + 1);
            Attempt::WaitUntil(reset, error)
        }
        // A gateway's errors are retried, but a proxy that gave up on the API after the whole
        // request reached it (502 Bad Gateway, 504 Gateway Timeout) leaves the API's work
        // unknown: the job may exist, so such a write is retried as any answer lost after the
        // whole body (at most twice, each flagged as possibly duplicated). 503 says the request
        // was not taken.
        502 | 504 if fully_sent => Attempt::Unknown(error.to_string()),
        502..=504 => Attempt::Retry(error.to_string()),
        // "Something is broken": the request may or may not have been applied.
        500 => Attempt::Unknown(error.to_string()),
        _ => classify_api_error(error),
    }
}

fn classify_api_error(error: ApiError) -> Attempt {
    match error.code {
        // "Your request was probably not saved – try giving it a delay and trying again."
        Some(code) if code == spec::ERROR_INTERNAL => Attempt::Retry(error.to_string()),
        Some(code) if code == spec::ERROR_TOO_MANY_REQUESTS => {
            let reset = error
                .rate_limit
                .map(|r| r.reset)
                .unwrap_or_else(|| epoch_now() + 1);
            Attempt::WaitUntil(reset, error)
        }
        _ => Attempt::Done(Err(error)),
    }
}

/// `{"error": code, "errormsg": text}`: an error answer.
fn api_error_in(body: &Value) -> Option<(ErrorCode, String)> {
    let object = body.as_object()?;
    let code = object.get("error")?.as_u64()?;
    let message = object
        .get("errormsg")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some((u32::try_from(code).unwrap_or(u32::MAX), message))
}

fn read_json(response: ureq::Response) -> Result<Value, String> {
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(MAX_ANSWER)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{e}: {}", snippet(&String::from_utf8_lossy(&bytes))))
}

fn read_text(response: ureq::Response) -> String {
    let mut bytes = Vec::new();
    let _ = response
        .into_reader()
        .take(MAX_ANSWER)
        .read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn snippet(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

fn transport_message(t: &ureq::Transport) -> String {
    // The URL is left out: a GET's query string holds the signature.
    let mut message = t.kind().to_string();
    if let Some(m) = t.message() {
        message.push_str(": ");
        message.push_str(m);
    }
    if let Some(source) = std::error::Error::source(t) {
        message.push_str(": ");
        message.push_str(&source.to_string());
    }
    message
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into())
}

/// Percent-encodes a form or query value.
fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for &b in text.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A small random number for jitter and boundaries, from the standard library's hasher keys.
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// The file part of a multipart body: exactly `left` bytes, progress reported, cancellable, and
/// hashed as it goes when a checksum is expected.
struct FileBody<'a> {
    file: std::fs::File,
    left: u64,
    sent: AtomicU64,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
    cancel: Option<Arc<AtomicBool>>,
    hasher: Option<Sha256>,
    expected: Option<&'a str>,
    changed: Arc<AtomicBool>,
}

impl Read for FileBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
        {
            // Not `Interrupted`: readers retry that kind forever.
            return Err(io::Error::other("cancelled"));
        }
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file became shorter while it was sent",
            ));
        }
        self.left -= n as u64;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
            if self.left == 0 {
                let digest = sailbulk_spec::api::hex(&hasher.clone().finalize());
                if Some(digest.as_str()) != self.expected {
                    // Stop before the last bytes and the closing boundary: the server gets an
                    // incomplete body and makes nothing of it.
                    self.changed.store(true, Ordering::SeqCst);
                    return Err(io::Error::other("the file changed while it was sent"));
                }
            }
        }
        let sent = self.sent.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if let Some(progress) = self.progress {
            progress(sent);
        }
        Ok(n)
    }
}

/// A body that records when it has been read to its end: after that, a failure means the whole
/// request went out.
struct Tracked<R> {
    inner: R,
    sent: Arc<AtomicBool>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.sent.store(true, Ordering::SeqCst);
        }
        Ok(n)
    }
}

/// The state of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobState {
    /// Queued.
    Pending,
    /// Running.
    Running,
    /// Finished.
    Completed,
    /// Failed.
    Error,
    /// Ended without completing.
    Incomplete,
    /// A status this client does not know.
    Other(String),
}

impl JobState {
    /// Parses a `status` value.
    pub fn parse(status: &str) -> JobState {
        match status {
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "error" => JobState::Error,
            "incomplete" => JobState::Incomplete,
            other => JobState::Other(other.to_string()),
        }
    }

    /// The `status` value.
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Error => "error",
            JobState::Incomplete => "incomplete",
            JobState::Other(s) => s,
        }
    }

    /// Whether the job has ended (`completed`, `error`, `incomplete`).
    pub fn is_final(&self) -> bool {
        spec::is_final_job_status(self.as_str())
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to POST `/job`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSubmitted {
    /// The job's id.
    pub job_id: String,
    /// The name the platform gave it.
    pub name: Option<String>,
    /// Its status (`pending`).
    pub status: JobState,
    /// The submission was sent again after a lost answer: the job may exist twice.
    pub possibly_duplicated: bool,
}

/// The answer to GET `/job`. Its `Display` is one line for people, as `sailbulk status` prints
/// it: id, state, name, counts, times and the reason a job failed.
///
/// ```
/// let status = sailbulk_upload::JobStatus {
///     job_id: "5f1a".into(),
///     name: Some("Bulk Update".into()),
///     status: sailbulk_upload::JobState::Completed,
///     start_time: Some("Fri, 18 Jan 2013 10:00:00 -0500".into()),
///     end_time: Some("Fri, 18 Jan 2013 10:02:00 -0500".into()),
///     raw: serde_json::json!({"records": 3, "applied": 3}).as_object().unwrap().clone(),
/// };
/// assert_eq!(
///     status.to_string(),
///     "5f1a  completed  Bulk Update  (records 3, applied 3)  \
///      Fri, 18 Jan 2013 10:00:00 -0500 -> Fri, 18 Jan 2013 10:02:00 -0500"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    /// The job's id.
    pub job_id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its state.
    pub status: JobState,
    /// When it started, as the API writes it.
    pub start_time: Option<String>,
    /// When it ended.
    pub end_time: Option<String>,
    /// Every field of the answer (counts and type-specific fields included).
    pub raw: Map<String, Value>,
}

/// The fields of an answer; an answer that is not an object has none.
fn answer_fields(body: Value) -> Map<String, Value> {
    match body {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A string field of an answer.
fn text_field(raw: &Map<String, Value>, key: &str) -> Option<String> {
    raw.get(key).and_then(Value::as_str).map(str::to_string)
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {}", self.job_id, self.status)?;
        if let Some(name) = &self.name {
            write!(f, "  {name}")?;
        }
        let counts: Vec<String> = ["records", "applied", "created", "rejected"]
            .iter()
            .filter_map(|k| Some(format!("{k} {}", self.raw.get(*k)?.as_u64()?)))
            .collect();
        if !counts.is_empty() {
            write!(f, "  ({})", counts.join(", "))?;
        }
        match (&self.start_time, &self.end_time) {
            (Some(start), Some(end)) => write!(f, "  {start} -> {end}")?,
            (Some(start), None) => write!(f, "  started {start}")?,
            _ => {}
        }
        if let Some(reason) = self.raw.get("reason").and_then(Value::as_str) {
            write!(f, "  reason: {reason}")?;
        }
        Ok(())
    }
}

impl JobStatus {
    fn from_value(body: Value) -> JobStatus {
        let raw = answer_fields(body);
        let text = |k: &str| text_field(&raw, k);
        JobStatus {
            job_id: text("job_id").unwrap_or_default(),
            name: text("name"),
            status: JobState::parse(raw.get("status").and_then(Value::as_str).unwrap_or("")),
            start_time: text("start_time"),
            end_time: text("end_time"),
            raw,
        }
    }
}

/// The answer to GET `/user`.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Identity keys (`sid`, `email`, `extid`, `sms`).
    pub keys: Map<String, Value>,
    /// Custom vars.
    pub vars: Map<String, Value>,
    /// Lists the user is on.
    pub lists: Map<String, Value>,
    /// The opt-out level.
    pub optout_email: Option<String>,
    /// Every field of the answer.
    pub raw: Map<String, Value>,
}

impl User {
    fn from_value(body: Value) -> User {
        let raw = answer_fields(body);
        let object = |k: &str| {
            raw.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        User {
            keys: object("keys"),
            vars: object("vars"),
            lists: object("lists"),
            optout_email: text_field(&raw, "optout_email"),
            raw,
        }
    }
}

/// The answer to GET or POST `/list`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListInfo {
    /// The list's name.
    pub name: String,
    /// Its id.
    pub list_id: Option<String>,
    /// Users on it, when the answer says.
    pub count: Option<u64>,
    /// `normal` or `smart`.
    pub kind: Option<String>,
    /// Every field of the answer.
    pub raw: Map<String, Value>,
}

impl ListInfo {
    fn from_value(body: Value) -> ListInfo {
        let raw = answer_fields(body);
        let text = |k: &str| text_field(&raw, k);
        ListInfo {
            name: text("list").or_else(|| text("name")).unwrap_or_default(),
            list_id: text("list_id"),
            count: raw.get("count").and_then(Value::as_u64),
            kind: text("type"),
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(
            format!("{secret:?} {secret}"),
            "Secret(<redacted>) <redacted>"
        );
        let builder = ClientBuilder::new("k", secret);
        assert!(!format!("{builder:?}").contains("hunter2"));
        let client = builder.build().unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }

    #[test]
    fn classifies_answers() {
        let error = |status, code| ApiError {
            http_status: status,
            code,
            message: "m".into(),
            rate_limit: Some(RateLimit {
                limit: 40,
                remaining: 0,
                reset: epoch_now() + 30,
            }),
        };
        for sent in [false, true] {
            assert!(matches!(
                classify_status(error(503, None), sent),
                Attempt::Retry(_)
            ));
        }
        assert!(matches!(
            classify_status(error(502, None), false),
            Attempt::Retry(_)
        ));
        assert!(matches!(
            classify_status(error(504, None), false),
            Attempt::Retry(_)
        ));
        assert!(matches!(
            classify_status(error(502, None), true),
            Attempt::Unknown(_)
        ));
        assert!(matches!(
            classify_status(error(504, None), true),
            Attempt::Unknown(_)
        ));
        assert!(matches!(
            classify_status(error(500, Some(9)), true),
            Attempt::Unknown(_)
        ));
        assert!(matches!(
            classify_status(error(400, Some(9)), true),
            Attempt::Retry(_)
        ));
        assert!(
            matches!(classify_status(error(429, Some(43)), true), Attempt::WaitUntil(r, _) if r > epoch_now())
        );
        assert!(matches!(
            classify_status(error(401, Some(5)), true),
            Attempt::Done(Err(_))
        ));
        assert!(error(401, Some(5)).refuses_credentials());
        assert!(error(400, Some(3)).refuses_credentials());
        assert!(!error(400, Some(99)).refuses_credentials());
        assert!(matches!(
            classify_status(error(404, Some(15)), true),
            Attempt::Done(Err(_))
        ));
        assert!(matches!(
            classify_api_error(error(200, Some(99))),
            Attempt::Done(Err(_))
        ));
    }

    #[test]
    fn slows_down_when_the_window_is_used_up() {
        let w = |remaining, reset| RateLimit {
            limit: 40,
            remaining,
            reset,
        };
        assert_eq!(slow_down(&w(0, 110), 100), Some(Duration::from_secs(10)));
        assert_eq!(slow_down(&w(1, 110), 100), None);
        assert_eq!(slow_down(&w(0, 100), 100), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_a_cap() {
        let client = ClientBuilder::new("k", Secret::new("s"))
            .retry(RetryPolicy {
                base_delay: Duration::from_millis(100),
                max_delay: Duration::from_millis(1000),
                ..RetryPolicy::default()
            })
            .build()
            .unwrap();
        for retry in 0..8 {
            let d = client.backoff(retry);
            let full = Duration::from_millis(100 * (1 << retry)).min(Duration::from_millis(1000));
            assert!(d >= full / 2 && d <= full, "{retry}: {d:?}");
        }
    }

    #[test]
    fn encodes_like_a_form() {
        assert_eq!(
            form_encode(r#"{"a": "é+&"}"#),
            "%7B%22a%22%3A%20%22%C3%A9%2B%26%22%7D"
        );
    }
}
