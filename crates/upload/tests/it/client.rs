//! The client's typed calls and its retry cases, each proven by the jobs the simulator accepted.

use crate::*;
use sailbulk_sim::{Fault, Route};
use sailbulk_upload::{ClientEvent, Error, FileUpload, JobState, Method};
use serde_json::json;
use std::time::Instant;

fn submit_file(client: &Client, path: &std::path::Path) -> Result<String, Error> {
    client
        .submit_job(&json!({"job": "update"}), Some(&FileUpload::new(path)))
        .map(|s| s.job_id)
}

/// Submits an update job with a one-line file.
fn submit_one_line(client: &Client) -> Result<String, Error> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.json", "{\"email\":\"a@example.com\"}\n");
    submit_file(client, &file)
}

fn wait(client: &Client, id: &str) -> sailbulk_upload::JobStatus {
    for _ in 0..1000 {
        let status = client.job_status(id).unwrap();
        if status.status.is_final() {
            return status;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("job {id} did not end")
}

#[test]
fn typed_calls_reach_the_api_and_read_data_back() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "part-00001.json",
        "{\"email\":\"ann@example.com\",\"vars\":{\"name\":\"Zoë\"},\"lists\":{\"Main\":1}}\n",
    );
    let sent = std::sync::atomic::AtomicU64::new(0);
    let progress = |n: u64| sent.store(n, std::sync::atomic::Ordering::SeqCst);
    let submitted = client
        .submit_job(
            &json!({"job": "update"}),
            Some(&FileUpload {
                progress: Some(&progress),
                ..FileUpload::new(&file)
            }),
        )
        .unwrap();
    assert_eq!(submitted.status, JobState::Pending);
    assert_eq!(
        submitted.name.as_deref(),
        Some("Bulk Update: part-00001.json")
    );
    assert_eq!(
        sent.load(std::sync::atomic::Ordering::SeqCst),
        std::fs::metadata(&file).unwrap().len()
    );
    let status = wait(&client, &submitted.job_id);
    assert_eq!(status.status, JobState::Completed);
    assert_eq!(status.raw["applied"], 1);
    assert!(status.start_time.is_some() && status.end_time.is_some());

    let user = client.get_user("ann@example.com", None, None).unwrap();
    assert_eq!(user.vars["name"], "Zoë");
    assert!(user.lists.contains_key("Main"));
    assert_eq!(user.optout_email.as_deref(), Some("none"));
    let sid = user.keys["sid"].as_str().unwrap().to_string();
    let by_sid = client
        .get_user(&sid, Some("sid"), Some(&json!({"vars": 1})))
        .unwrap();
    assert!(by_sid.keys.is_empty(), "fields selects vars only");
    assert_eq!(by_sid.vars["name"], "Zoë");

    let list = client.get_list("Main", false).unwrap();
    assert_eq!((list.name.as_str(), list.count), ("Main", Some(1)));
    let saved = client
        .save_list(&json!({"list": "Ünïcode", "vars": {"motto": "Łódź"}}))
        .unwrap();
    assert_eq!(saved.kind.as_deref(), Some("normal"));
    assert_eq!(
        client.get_list("Ünïcode", true).unwrap().raw["vars"]["motto"],
        "Łódź"
    );
    assert_eq!(client.get_lists().unwrap().len(), 2);
    client.delete_list("Ünïcode").unwrap();

    // An import job with emails, read back through the list count.
    let submitted = client
        .submit_job(
            &json!({"job": "import", "list": "Imported", "emails": "a@example.com,b@example.com"}),
            None,
        )
        .unwrap();
    wait(&client, &submitted.job_id);
    assert_eq!(client.get_list("Imported", false).unwrap().count, Some(2));
}

#[test]
fn api_errors_are_typed_and_not_retried() {
    let sim = sim_builder().start().unwrap();
    let (client, events) = client(&sim);
    let err = client.delete_list("nope").unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!((api.http_status, api.code), (404, Some(15)));
    assert_eq!(api.message, "Unknown list: nope");
    assert!(api.rate_limit.is_some());
    assert_eq!(
        err.to_string(),
        "DELETE /list: HTTP 404, error 15: Unknown list: nope"
    );
    let err = client
        .get_user("ghost@example.com", None, None)
        .unwrap_err();
    assert_eq!(err.api_error().unwrap().code, Some(99));
    // The list page answers its validations with HTTP 200 and error 99: still an error.
    let err = client
        .save_list(&json!({"list": "L", "primary": 2}))
        .unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!((api.http_status, api.code), (200, Some(99)));
    let err = client
        .submit_job(&json!({"job": "update"}), None)
        .unwrap_err();
    assert_eq!(err.api_error().unwrap().http_status, 400);
    assert!(events.lock().unwrap().is_empty(), "nothing was retried");
    assert_eq!(sim.requests().len(), 4);
}

#[test]
fn a_wrong_secret_is_refused_and_never_shown() {
    let sim = sim_builder().start().unwrap();
    let client = ClientBuilder::new(KEY, Secret::new("wrong-secret-value"))
        .base_url(sim.url())
        .build()
        .unwrap();
    let err = client.job_status("x").unwrap_err();
    let api = err.api_error().unwrap();
    assert_eq!((api.http_status, api.code), (401, Some(5)));
    for text in [err.to_string(), format!("{err:?}"), format!("{client:?}")] {
        assert!(!text.contains("wrong-secret-value"), "{text}");
    }
}

#[test]
fn a_503_is_retried_and_exactly_one_job_is_accepted() {
    let sim = sim_builder()
        .fault(Fault::status(Route::new("POST", "/job"), 503).times(2))
        .start()
        .unwrap();
    let (client, events) = client(&sim);
    submit_one_line(&client).unwrap();
    assert_eq!(sim.jobs().len(), 1);
    let events = events.lock().unwrap();
    let retries: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, ClientEvent::Retry { .. }))
        .collect();
    assert_eq!(retries.len(), 2, "{events:?}");
    assert!(
        retries[0]
            .to_string()
            .contains("POST /job `a.json`: HTTP 503"),
        "{}",
        retries[0]
    );
}

#[test]
fn error_9_and_gateway_errors_are_retried_until_the_attempts_run_out() {
    let sim = sim_builder()
        .fault(Fault::status(Route::new("GET", "/job"), 502).always())
        .start()
        .unwrap();
    let (client, events) = client(&sim);
    let err = client.job_status("x").unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(
        err.to_string().contains("gave up after 6 attempts"),
        "{err}"
    );
    assert_eq!(sim.requests().len(), 6);
    assert_eq!(events.lock().unwrap().len(), 5);
}

#[test]
fn a_429_waits_for_the_reset_and_exactly_one_job_is_accepted() {
    let sim = sim_builder()
        .fault(Fault::status(Route::new("POST", "/job"), 429).retry_after(Duration::from_secs(2)))
        .start()
        .unwrap();
    let (client, events) = client(&sim);
    let t = Instant::now();
    submit_one_line(&client).unwrap();
    // The reset is an epoch second two seconds ahead: at least one whole second passes.
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(sim.jobs().len(), 1);
    let events = events.lock().unwrap();
    assert!(
        matches!(&events[..], [ClientEvent::RateLimitWait { wait, .. }] if *wait >= Duration::from_secs(1)),
        "{events:?}"
    );
}

#[test]
fn a_used_up_window_slows_the_client_down_before_the_429() {
    let sim = sim_builder()
        .rate_limit(Route::new("GET", "/list"), 1)
        .rate_limit_window(Duration::from_secs(2))
        .start()
        .unwrap();
    let (client, events) = client(&sim);
    client.get_lists().unwrap();
    // The answer said 0 remaining: the client waits for the reset instead of earning a 429.
    let t = Instant::now();
    client.get_lists().unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert!(sim.requests().iter().all(|r| r.status == Some(200)));
    let events = events.lock().unwrap();
    assert!(
        matches!(&events[..], [ClientEvent::RateLimitWait { wait, .. }] if *wait >= Duration::from_secs(1)),
        "{events:?}"
    );
}

#[test]
fn a_wait_over_the_budget_is_not_waited() {
    let sim = sim_builder()
        .rate_limit(Route::new("GET", "/list"), 1)
        .start()
        .unwrap();
    let (client, events) = client_with(&sim, |b| {
        b.retry(RetryPolicy {
            max_rate_limit_wait: Duration::ZERO,
            ..RetryPolicy::default()
        })
    });
    client.get_lists().unwrap();
    // A minute is over the budget: the call goes out, gets the 429, and says so.
    let err = client.get_lists().unwrap_err();
    assert_eq!(err.api_error().unwrap().code, Some(43));
    let events = events.lock().unwrap();
    assert!(events[0].to_string().contains("not waited"), "{events:?}");
}

#[test]
fn a_connection_dropped_before_processing_is_retried_and_one_job_is_accepted() {
    let sim = sim_builder()
        .fault(Fault::drop_connection(Route::new("POST", "/job")))
        .start()
        .unwrap();
    let (client, events) = client(&sim);
    submit_one_line(&client).unwrap();
    assert_eq!(sim.jobs().len(), 1);
    // The body was sent in full before the drop, so the client cannot know nothing was applied:
    // it says so.
    let events = events.lock().unwrap();
    assert!(
        events.iter().any(
            |e| matches!(e, ClientEvent::PossiblyDuplicated { what, .. } if what.contains("a.json"))
        ),
        "{events:?}"
    );
}

#[test]
fn a_lost_answer_after_processing_is_retried_at_most_twice_and_logged() {
    let sim = sim_builder()
        .fault(Fault::drop_response(Route::new("POST", "/job")).always())
        .start()
        .unwrap();
    let (client, events) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "part-00007.json",
        "{\"email\":\"a@example.com\"}\n",
    );
    let err = submit_file(&client, &file).unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    // One send and two retries: three jobs exist, each retry was flagged with the part's name.
    assert_eq!(sim.jobs().len(), 3);
    let flagged = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            matches!(e, ClientEvent::PossiblyDuplicated { what, .. } if what.contains("part-00007.json"))
        })
        .count();
    assert_eq!(flagged, 2);
}

/// Submits one small file through a client with `read_timeout`, to a simulator that answers
/// every POST /job after `delay`; returns the simulator and what the client reported.
fn submit_to_slow_answers(
    delay: Duration,
    read_timeout: Duration,
) -> (Sim, Arc<Mutex<Vec<ClientEvent>>>) {
    let sim = sim_builder()
        .fault(Fault::delay(Route::new("POST", "/job"), delay))
        .start()
        .unwrap();
    let (client, events) = client_with(&sim, |b| b.read_timeout(read_timeout));
    submit_one_line(&client).unwrap();
    (sim, events)
}

#[test]
fn slow_answers_within_the_read_timeout_make_one_job() {
    let (sim, events) = submit_to_slow_answers(Duration::from_millis(700), Duration::from_secs(5));
    assert_eq!(sim.jobs().len(), 1);
    assert!(events.lock().unwrap().is_empty());
}

#[test]
fn a_read_timeout_after_the_body_is_an_unknown_outcome() {
    let (sim, events) =
        submit_to_slow_answers(Duration::from_millis(800), Duration::from_millis(200));
    // The first request was applied while the client gave up on its answer; the retry made a
    // second job, and the client said it might.
    assert_eq!(sim.jobs().len(), 2);
    assert!(events
        .lock()
        .unwrap()
        .iter()
        .any(|e| matches!(e, ClientEvent::PossiblyDuplicated { .. })));
}

#[test]
fn reads_are_retried_freely() {
    let sim = sim_builder()
        .fault(Fault::status(Route::new("GET", "/job"), 500).times(2))
        .fault(Fault::drop_response(Route::new("GET", "/job")))
        .start()
        .unwrap();
    let (client, events) = client(&sim);
    let id = client
        .submit_job(&json!({"job": "update", "emails": "a@example.com"}), None)
        .unwrap()
        .job_id;
    client.job_status(&id).unwrap();
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(!events
        .iter()
        .any(|e| matches!(e, ClientEvent::PossiblyDuplicated { .. })));
}

#[test]
fn a_cancelled_upload_stops_before_its_last_byte_and_makes_no_job() {
    let sim = sim_builder().start().unwrap();
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (client, _) = client_with(&sim, |b| b.cancel_flag(cancel.clone()));
    let dir = tempfile::tempdir().unwrap();
    let line = "{\"email\":\"a@example.com\"}\n";
    let file = write(dir.path(), "a.json", &line.repeat(200_000));
    let progress = |sent: u64| {
        if sent > 1_000_000 {
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    let err = client
        .submit_job(
            &json!({"job": "update"}),
            Some(&FileUpload {
                progress: Some(&progress),
                ..FileUpload::new(&file)
            }),
        )
        .unwrap_err();
    assert!(err.is_cancelled(), "{err}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(sim.jobs().is_empty());
    let _ = Method::Get;
}

#[test]
fn https_urls_go_through_tls() {
    // The simulator speaks plain HTTP: a TLS handshake with it fails, and says so.
    let sim = sim_builder().start().unwrap();
    let https = sim.url().replace("http://", "https://");
    let client = ClientBuilder::new(KEY, Secret::new(SECRET))
        .base_url(https)
        .read_timeout(Duration::from_secs(5))
        .retry(RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let err = client.job_status("x").unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert!(sim.jobs().is_empty());
    // Not a URL the client can use at all.
    let err = ClientBuilder::new(KEY, Secret::new(SECRET))
        .base_url("ftp://example.com")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[test]
fn a_file_that_differs_from_its_checksum_is_never_submitted() {
    let sim = sim_builder().start().unwrap();
    let (client, events) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "a.json",
        &"{\"email\":\"a@example.com\"}\n".repeat(10_000),
    );
    let wrong = "0".repeat(64);
    let err = client
        .submit_job(
            &json!({"job": "update"}),
            Some(&FileUpload {
                expected_sha256: Some(&wrong),
                ..FileUpload::new(&file)
            }),
        )
        .unwrap_err();
    assert!(matches!(err, Error::FileChanged { .. }), "{err}");
    assert!(events.lock().unwrap().is_empty(), "not retried");
    std::thread::sleep(Duration::from_millis(100));
    assert!(sim.jobs().is_empty());
    // A size that differs is found before sending.
    let before = sim.requests().len();
    let err = client
        .submit_job(
            &json!({"job": "update"}),
            Some(&FileUpload {
                expected_len: Some(1),
                ..FileUpload::new(&file)
            }),
        )
        .unwrap_err();
    assert!(matches!(err, Error::FileChanged { .. }), "{err}");
    assert_eq!(sim.requests().len(), before);
}

#[test]
fn a_file_changed_after_a_lost_answer_keeps_the_possibly_applied_mark() {
    // The first send is processed and its answer lost; the file then changes before the retry,
    // which is abandoned. The job of the first send exists, and the error must say it may.
    let sim = sim_builder()
        .fault(Fault::drop_response(Route::new("POST", "/job")).times(1))
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "part-00003.json",
        "{\"email\":\"a@example.com\"}\n",
    );
    let sha256 = sailbulk_build::sha256_file(&file).unwrap();
    let target = file.clone();
    let (client, _) = client_with(&sim, move |b| {
        b.on_event(move |e| {
            if matches!(e, ClientEvent::Retry { .. }) {
                std::fs::write(&target, "{\"email\":\"b@example.com\"}\n").unwrap();
            }
        })
    });
    let err = client
        .submit_job(
            &json!({"job": "update"}),
            Some(&FileUpload {
                expected_sha256: Some(&sha256),
                ..FileUpload::new(&file)
            }),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::FileChanged {
                possibly_applied: true,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.possibly_applied());
    assert!(err.to_string().contains("may have made a job"), "{err}");
    assert!(!err.to_string().contains("nothing was submitted"), "{err}");
    assert_eq!(sim.jobs().len(), 1);
}

#[test]
fn a_gateway_error_after_the_whole_body_is_an_unknown_outcome() {
    // A 504 from a proxy that gave up after the whole request reached it: the API may have made
    // the job, so the write is retried as a lost answer is (at most twice, each flagged), not
    // five times over.
    let sim = sim_builder()
        .fault(Fault::status(Route::new("POST", "/job"), 504).always())
        .start()
        .unwrap();
    let (client, events) = client(&sim);
    let err = submit_one_line(&client).unwrap_err();
    assert!(err.possibly_applied(), "{err}");
    let posts = sim.requests().iter().filter(|r| r.path == "/job").count();
    assert_eq!(posts, 3);
    let flagged = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, ClientEvent::PossiblyDuplicated { .. }))
        .count();
    assert_eq!(flagged, 2);
}
