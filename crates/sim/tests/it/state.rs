//! A state directory keeps profiles, lists, jobs and files across restarts.

use crate::*;

#[test]
fn state_survives_a_restart_and_unfinished_jobs_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let (done, pending) = {
        let sim = builder().state_dir(dir.path()).start().unwrap();
        let done = run_job(
            &sim,
            &json!({"job": "update"}),
            Some(b"{\"email\":\"a@example.com\",\"vars\":{\"n\":1},\"lists\":{\"Kept\":1}}\n"),
        );
        call(
            &sim,
            "POST",
            "/list",
            &json!({"list": "Empty", "vars": {"color": "red"}}),
        )
        .assert_ok();
        sim.stop();
        // A second run whose job never gets to run before the stop.
        let slow = builder()
            .state_dir(dir.path())
            .job_delay(Duration::from_secs(60))
            .start()
            .unwrap();
        let data = b"b@example.com\n";
        let reply = upload_bytes(
            &slow,
            &json!({"job": "import", "list": "Later"}),
            "b.txt",
            data,
        )
        .unwrap();
        let pending = reply.assert_ok()["job_id"].as_str().unwrap().to_string();
        slow.stop();
        (done["job_id"].as_str().unwrap().to_string(), pending)
    };
    let sim = builder().state_dir(dir.path()).start().unwrap();
    assert_eq!(sim.user("email", "a@example.com").unwrap().vars["n"], 1);
    assert_eq!(sim.list_count("Kept"), 1);
    assert_eq!(sim.list("Empty").unwrap().vars["color"], "red");
    let status = call(&sim, "GET", "/job", &json!({ "job_id": done }));
    assert_eq!(status.assert_ok()["status"], "completed");
    // The job left pending runs now, from the file kept in the state directory.
    let status = wait_job(&sim, &pending);
    assert_eq!(status["status"], "completed");
    assert_eq!(sim.list_count("Later"), 1);
    assert!(sim.received_files()[1].path.starts_with(dir.path()));
}
