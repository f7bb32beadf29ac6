//! Integration tests of the uploader against the simulator on loopback.

mod client;
mod inputs;
mod runner;

use sailbulk_sim::{Sim, SimBuilder};
use sailbulk_upload::{Client, ClientBuilder, ClientEvent, RetryPolicy, Secret};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const KEY: &str = "upload-key";
pub const SECRET: &str = "upload-secret-value";

pub fn sim_builder() -> SimBuilder {
    Sim::builder().api_key(KEY).api_secret(SECRET)
}

/// A client of `sim` with quick retries, and the events it reported.
pub fn client(sim: &Sim) -> (Client, Arc<Mutex<Vec<ClientEvent>>>) {
    client_with(sim, |b| b)
}

pub fn client_with(
    sim: &Sim,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> (Client, Arc<Mutex<Vec<ClientEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let builder = ClientBuilder::new(KEY, Secret::new(SECRET))
        .base_url(sim.url())
        .retry(RetryPolicy {
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        })
        .on_event(move |e| seen.lock().unwrap().push(e.clone()));
    (configure(builder).build().unwrap(), events)
}

/// Writes a file and returns its path.
pub fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}
