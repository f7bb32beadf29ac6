//! A local Sailthru API simulator: a real HTTP server on loopback that behaves as the API
//! documentation says for the calls sailbulk makes (`job` update and import, `user` GET, `list`),
//! so that uploads are tested against a server and pipelines can be dry-run without touching a
//! production account.
//!
//! Three types make the surface:
//!
//! - [`SimBuilder`] configures a simulator: credentials, a state directory, faults to inject,
//!   rate limits, how slowly jobs run;
//! - [`Sim`] is a running simulator: its base URL, and the profiles, lists, jobs and files it
//!   holds, for assertions; it stops when dropped;
//! - [`Fault`] makes a route fail: an HTTP status, a dropped connection, a delay.
//!
//! ```
//! use sailbulk_sim::Sim;
//! use std::io::{Read, Write};
//!
//! let sim = Sim::builder().api_key("k").api_secret("s").start().unwrap();
//! // Any HTTP client will do; this one speaks HTTP/1.1 by hand. The signature is wrong.
//! let mut stream = std::net::TcpStream::connect(sim.addr()).unwrap();
//! write!(stream, "GET /user?api_key=k&format=json&json=%7B%7D&sig=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
//! let mut response = String::new();
//! stream.read_to_string(&mut response).unwrap();
//! assert!(response.starts_with("HTTP/1.1 401"));
//! assert!(response.ends_with(r#"{"error":5,"errormsg":"Authentication failed"}"#));
//! assert_eq!(sim.requests()[0].error, Some(5));
//! ```
//!
//! What it covers and what it does not is listed in the README ("The simulator").
#![deny(missing_docs)]

mod api;
mod faults;
mod http;
mod jobs;
mod params;
mod postback;
mod store;

pub use faults::{parse_duration, Fault, FaultKind, Route};
pub use postback::{flatten_form, Postback, PostbackReceiver};
/// The signature rule, from `sailbulk-spec`: the simulator checks requests and signs postbacks
/// with it.
pub use sailbulk_spec::api::sign;
pub use store::{Job, JobCounts, LineError, List, Profile, ReceivedFile, MAX_LISTED_ERRORS};

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Locks a mutex; a thread that panicked while holding it leaves data that is still usable here
/// (counters, logs, bookkeeping), so the poison is ignored.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state directory or the upload directory could not be made.
    #[error("cannot use {}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The state database could not be opened.
    #[error("cannot open the state database {}", path.display())]
    State {
        /// The database file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A thread could not be started.
    #[error("cannot start a thread")]
    Thread(#[source] std::io::Error),
}

/// One request the simulator answered, as its log line tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, `DELETE`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The HTTP status sent; `None` when the connection was dropped on purpose.
    pub status: Option<u16>,
    /// The API error code sent, if any.
    pub error: Option<u32>,
    /// The job created or asked about, if any.
    pub job_id: Option<String>,
    /// Bytes of request body read.
    pub body_bytes: u64,
    /// What was injected, if a fault applied.
    pub fault: Option<String>,
    /// How long the request took.
    pub elapsed: Duration,
}

impl std::fmt::Display for RequestRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ", self.method, self.path)?;
        match self.status {
            Some(status) => write!(f, "{status}")?,
            None => write!(f, "dropped")?,
        }
        if let Some(error) = self.error {
            write!(f, " error {error}")?;
        }
        if let Some(job) = &self.job_id {
            write!(f, " job {job}")?;
        }
        if self.body_bytes > 0 {
            write!(f, " {} bytes", self.body_bytes)?;
        }
        if let Some(fault) = &self.fault {
            write!(f, " [fault: {fault}]")?;
        }
        write!(f, " {:.1} ms", self.elapsed.as_secs_f64() * 1000.0)
    }
}

type RequestHook = Arc<dyn Fn(&RequestRecord) + Send + Sync>;

/// Configures and starts a [`Sim`].
///
/// ```
/// use sailbulk_sim::{Fault, Route, Sim};
/// use std::time::Duration;
///
/// let sim = Sim::builder()
///     .api_key("key")
///     .api_secret("secret")
///     .fault(Fault::status(Route::new("POST", "/job"), 503).times(2))
///     .rate_limit(Route::new("GET", "/job"), 100)
///     .job_delay(Duration::from_millis(50))
///     .start()
///     .unwrap();
/// assert!(sim.url().starts_with("http://127.0.0.1:"));
/// ```
#[derive(Clone)]
pub struct SimBuilder {
    listen: String,
    api_key: String,
    api_secret: String,
    state_dir: Option<PathBuf>,
    faults: Vec<Fault>,
    rate_limits: Vec<(Route, u32)>,
    rate_limit_window: Option<Duration>,
    job_delay: Duration,
    job_workers: usize,
    fail_jobs: u32,
    on_request: Option<RequestHook>,
}

impl std::fmt::Debug for SimBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBuilder")
            .field("listen", &self.listen)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field("state_dir", &self.state_dir)
            .field("faults", &self.faults)
            .field("job_delay", &self.job_delay)
            .finish_non_exhaustive()
    }
}

impl Default for SimBuilder {
    fn default() -> Self {
        SimBuilder {
            listen: "127.0.0.1:0".into(),
            api_key: "sim-api-key".into(),
            api_secret: "sim-api-secret".into(),
            state_dir: None,
            faults: Vec::new(),
            rate_limits: Vec::new(),
            rate_limit_window: None,
            job_delay: Duration::ZERO,
            job_workers: 2,
            fail_jobs: 0,
            on_request: None,
        }
    }
}

impl SimBuilder {
    /// The address to listen on. Default `127.0.0.1:0` (loopback, a free port).
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.listen = addr.into();
        self
    }

    /// The one API key the simulator accepts. Default `sim-api-key`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = key.into();
        self
    }

    /// The shared secret requests are signed with. Default `sim-api-secret`.
    pub fn api_secret(mut self, secret: impl Into<String>) -> Self {
        self.api_secret = secret.into();
        self
    }

    /// Keep profiles, lists, jobs and uploaded files in this directory (an SQLite database and a
    /// `files/` folder), so that they survive a restart; jobs that were pending or running are
    /// run again. Default: in memory, gone when the simulator stops.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Adds a fault (see [`Fault`]). Faults apply in the order added. Default: none.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.faults.push(fault);
        self
    }

    /// Sets the per-minute rate limit of a route. Default: 40 for POST `/job`, 1000 for
    /// everything else (`sailbulk_spec::api`).
    pub fn rate_limit(mut self, route: Route, per_minute: u32) -> Self {
        self.rate_limits.push((route, per_minute));
        self
    }

    /// The length of a rate-limit window, in whole seconds. Default: a minute, as on the API; a
    /// shorter one lets a test see a window reset.
    pub fn rate_limit_window(mut self, window: Duration) -> Self {
        self.rate_limit_window = Some(window);
        self
    }

    /// How long a job stays `pending` before it runs, and at least `running` before it ends:
    /// slow job processing, for watching a pipeline poll. Default: zero.
    pub fn job_delay(mut self, delay: Duration) -> Self {
        self.job_delay = delay;
        self
    }

    /// How many jobs run at once. Default 2.
    pub fn job_workers(mut self, n: usize) -> Self {
        self.job_workers = n.max(1);
        self
    }

    /// The next `n` jobs end with status `error` instead of running. Default 0.
    pub fn fail_jobs(mut self, n: u32) -> Self {
        self.fail_jobs = n;
        self
    }

    /// Called once for every request answered (or dropped), as it ends: the CLI logs with it.
    pub fn on_request(mut self, hook: impl Fn(&RequestRecord) + Send + Sync + 'static) -> Self {
        self.on_request = Some(Arc::new(hook));
        self
    }

    /// Binds, opens the state and starts serving.
    pub fn start(self) -> Result<Sim, Error> {
        let (files_dir, temp, db) = match &self.state_dir {
            Some(dir) => {
                let files = dir.join("files");
                std::fs::create_dir_all(&files).map_err(|source| Error::Dir {
                    path: files.clone(),
                    source,
                })?;
                (files, None, Some(dir.join("sim.sqlite3")))
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("sailbulk-sim-")
                    .tempdir()
                    .map_err(|source| Error::Dir {
                        path: std::env::temp_dir(),
                        source,
                    })?;
                (temp.path().to_path_buf(), Some(temp), None)
            }
        };
        let store = store::Store::open(db.as_deref()).map_err(|source| Error::State {
            path: db.clone().unwrap_or_else(|| ":memory:".into()),
            source,
        })?;
        let listener = TcpListener::bind(&self.listen).map_err(|source| Error::Bind {
            addr: self.listen.clone(),
            source,
        })?;
        let mut faults = faults::Faults::default();
        for fault in self.faults {
            faults.add(fault);
        }
        let mut limits = faults::RateLimits::default();
        for (route, n) in self.rate_limits {
            limits.set(route, n);
        }
        if let Some(window) = self.rate_limit_window {
            limits.set_window(window);
        }
        let shared = Arc::new(api::Shared {
            api_key: self.api_key,
            api_secret: self.api_secret,
            files_dir,
            store: Mutex::new(store),
            faults: Mutex::new(faults),
            limits: Mutex::new(limits),
            requests: Mutex::new(Vec::new()),
            on_request: self.on_request,
            queue: jobs::Queue::default(),
            job_delay: self.job_delay,
            fail_jobs: Mutex::new(self.fail_jobs),
        });
        jobs::requeue_unfinished(&shared);
        let mut workers = Vec::new();
        for _ in 0..self.job_workers {
            let shared = shared.clone();
            workers.push(
                std::thread::Builder::new()
                    .name("sim-jobs".into())
                    .spawn(move || jobs::worker(&shared))
                    .map_err(Error::Thread)?,
            );
        }
        let server = http::Server::start(listener, Arc::new(api::Api::new(shared.clone())))
            .map_err(Error::Thread)?;
        Ok(Sim {
            server,
            shared,
            workers,
            _temp: temp,
        })
    }
}

/// A running simulator. Dropping it stops the server and the job workers.
pub struct Sim {
    server: http::Server,
    shared: Arc<api::Shared>,
    workers: Vec<JoinHandle<()>>,
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A builder with the defaults.
    pub fn builder() -> SimBuilder {
        SimBuilder::default()
    }

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The base URL, `http://127.0.0.1:PORT`: the API's `https://api.sailthru.com`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The API key it accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    /// The profile with this identity (`key` is `email`, `extid`, `sms` or `sid`).
    pub fn user(&self, key: &str, id: &str) -> Option<Profile> {
        self.shared
            .with_store(|c| store::find_profile(c, key, id))
            .ok()
            .flatten()
    }

    /// A list by name.
    pub fn list(&self, name: &str) -> Option<List> {
        self.shared
            .with_store(|c| store::get_list(c, name))
            .ok()
            .flatten()
    }

    /// How many users are on a list.
    pub fn list_count(&self, name: &str) -> u64 {
        self.shared
            .with_store(|c| store::member_count(c, name))
            .unwrap_or(0)
    }

    /// Every list, by name.
    pub fn lists(&self) -> Vec<List> {
        self.shared.with_store(store::lists).unwrap_or_default()
    }

    /// A job by id.
    pub fn job(&self, id: &str) -> Option<Job> {
        self.shared
            .with_store(|c| store::get_job(c, id))
            .ok()
            .flatten()
    }

    /// Every job, in the order submitted.
    pub fn jobs(&self) -> Vec<Job> {
        self.shared.with_store(store::jobs).unwrap_or_default()
    }

    /// Every file received with a job, in the order submitted.
    pub fn received_files(&self) -> Vec<ReceivedFile> {
        self.jobs().into_iter().filter_map(|j| j.file).collect()
    }

    /// Every request answered so far, in the order they ended.
    pub fn requests(&self) -> Vec<RequestRecord> {
        locked(&self.shared.requests).clone()
    }

    /// Adds a fault while running.
    pub fn add_fault(&self, fault: Fault) {
        locked(&self.shared.faults).add(fault);
    }

    /// Removes every fault still to apply.
    pub fn clear_faults(&self) {
        locked(&self.shared.faults).clear();
    }

    /// Waits until a job is `completed`, `error` or `incomplete`, for at most `timeout`.
    pub fn wait_job(&self, id: &str, timeout: Duration) -> Option<Job> {
        let deadline = Instant::now() + timeout;
        loop {
            let job = self.job(id)?;
            if sailbulk_spec::api::is_final_job_status(&job.status) || Instant::now() >= deadline {
                return Some(job);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The folder uploads are kept in.
    pub fn files_dir(&self) -> &Path {
        &self.shared.files_dir
    }

    /// Stops serving and waits for the job workers; a job in the middle of running stays
    /// `running` (with a state directory, it runs again at the next start).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.server.stop();
        self.shared.queue.stop();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown();
    }
}
