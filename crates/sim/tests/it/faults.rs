//! Injected faults: statuses, dropped connections, delays.

use crate::*;
use sailbulk_sim::{Fault, Route};
use std::time::Instant;

#[test]
fn a_status_fault_fails_the_next_requests_then_clears() {
    let sim = builder()
        .fault(Fault::status(Route::new("POST", "/job"), 503).times(2))
        .start()
        .unwrap();
    let params = json!({"job": "update", "emails": "a@example.com"});
    for _ in 0..2 {
        let reply = call(&sim, "POST", "/job", &params);
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("Content-Type"), Some("text/plain"));
    }
    // Other routes were not touched; the third POST goes through.
    call(&sim, "GET", "/list", &json!({})).assert_ok();
    call(&sim, "POST", "/job", &params).assert_ok();
    assert_eq!(sim.jobs().len(), 1);
    let faults: Vec<_> = sim
        .requests()
        .iter()
        .filter_map(|r| r.fault.clone())
        .collect();
    assert_eq!(faults, ["status 503", "status 503"]);
}

#[test]
fn a_429_fault_carries_error_43_and_a_reset_time() {
    let sim = builder()
        .fault(Fault::status(Route::any(), 429).retry_after(Duration::from_secs(5)))
        .fault(Fault::status(Route::any(), 500))
        .start()
        .unwrap();
    let reply = call(&sim, "GET", "/list", &json!({}));
    reply.assert_error(429, 43);
    let reset: u64 = reply.header("X-Rate-Limit-Reset").unwrap().parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 4..=now + 6).contains(&reset), "{reset} {now}");
    assert_eq!(reply.header("X-Rate-Limit-Remaining"), Some("0"));
    call(&sim, "GET", "/list", &json!({})).assert_error(500, 9);
    call(&sim, "GET", "/list", &json!({})).assert_ok();
}

#[test]
fn a_dropped_connection_before_processing_creates_nothing() {
    let sim = builder()
        .fault(Fault::drop_connection(Route::new("POST", "/job")))
        .start()
        .unwrap();
    let data = b"a@example.com\n";
    assert!(upload_bytes(&sim, &json!({"job": "update"}), "a.txt", data).is_none());
    assert!(sim.jobs().is_empty());
    let record = &sim.requests()[0];
    assert_eq!(record.status, None);
    assert!(
        record.body_bytes > data.len() as u64,
        "the whole body was read first"
    );
    upload_bytes(&sim, &json!({"job": "update"}), "a.txt", data)
        .unwrap()
        .assert_ok();
}

#[test]
fn a_dropped_answer_after_processing_leaves_a_job_the_client_never_heard_of() {
    let sim = start();
    sim.add_fault(Fault::drop_response(Route::new("POST", "/job")));
    let data = b"a@example.com\n";
    assert!(upload_bytes(&sim, &json!({"job": "update"}), "a.txt", data).is_none());
    let jobs = sim.jobs();
    assert_eq!(jobs.len(), 1, "the job exists although no answer was sent");
    assert_eq!(
        sim.requests()[0].job_id.as_deref(),
        Some(jobs[0].job_id.as_str())
    );
}

#[test]
fn a_delay_fault_holds_the_answer() {
    let sim = builder()
        .fault(Fault::parse("GET:/list=delay:300msx2").unwrap())
        .start()
        .unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        call(&sim, "GET", "/list", &json!({})).assert_ok();
        let elapsed = t.elapsed();
        let delayed = sim.requests().last().unwrap().fault.is_some();
        // Only a lower bound: how fast an undelayed answer is depends on the machine.
        assert!(
            !delayed || elapsed >= Duration::from_millis(300),
            "{elapsed:?}"
        );
    }
    let faults: Vec<_> = sim.requests().into_iter().map(|r| r.fault).collect();
    assert_eq!(
        faults,
        [
            Some("delay 300 ms".to_string()),
            Some("delay 300 ms".to_string()),
            None
        ]
    );
}

#[test]
fn the_request_log_reaches_the_hook() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let hook = seen.clone();
    let sim = builder()
        .on_request(move |r| hook.lock().unwrap().push(r.to_string()))
        .start()
        .unwrap();
    call(&sim, "GET", "/user", &json!({"id": "x@example.com"}));
    let lines = seen.lock().unwrap().clone();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("GET /user 400 error 99"),
        "{}",
        lines[0]
    );
}
