//! The job runner: one job per part, journalled, resumable, validated, watched to the end.

use crate::*;
use sailbulk_sim::{Fault, Route};
use sailbulk_spec::JobKind;
use sailbulk_upload::{
    upload_parts, JobSpec, JobState, Journal, PartFile, PollPolicy, UploadError, UploadEvent,
    UploadOptions,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

fn parts(dir: &Path, n: usize, lines_each: usize) -> Vec<PartFile> {
    (1..=n)
        .map(|p| {
            let text: String = (0..lines_each)
                .map(|i| format!("{{\"email\":\"p{p}-{i}@example.com\",\"vars\":{{\"part\":{p}}},\"lists\":{{\"All\":1}}}}\n"))
                .collect();
            PartFile {
                path: write(dir, &format!("part-{p:05}.json"), &text),
                expected_sha256: None,
            }
        })
        .collect()
}

fn options(wait: bool) -> UploadOptions {
    let mut options = UploadOptions::new(JobSpec::new(JobKind::Update));
    options.wait = wait;
    options.poll = PollPolicy {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
        timeout: Some(Duration::from_secs(60)),
    };
    options
}

fn quiet(_: &UploadEvent<'_>) {}

/// `upload_parts` with no event hook and no cancellation.
fn upload(
    client: &sailbulk_upload::Client,
    parts: &[PartFile],
    journal: &Path,
    options: &UploadOptions,
) -> Result<Vec<sailbulk_upload::PartOutcome>, UploadError> {
    upload_parts(
        client,
        parts,
        journal,
        options,
        &quiet,
        &AtomicBool::new(false),
    )
}

#[test]
fn parts_become_one_job_each_and_are_watched_to_the_end() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(dir.path(), 3, 50);
    let journal = dir.path().join("upload-journal.json");
    let mut opts = options(true);
    opts.concurrency = 2;
    opts.spec.update = Some(serde_json::json!({"vars": {"source": "sailbulk"}}));
    opts.spec.report_email = Some("ops@example.com".into());
    let outcomes = upload(&client, &parts, &journal, &opts).unwrap();
    assert_eq!(outcomes.len(), 3);
    for o in &outcomes {
        assert_eq!(
            o.status.as_ref().unwrap().status,
            JobState::Completed,
            "{o:?}"
        );
        assert!(!o.resumed);
    }
    assert_eq!(sim.jobs().len(), 3);
    assert_eq!(sim.list_count("All"), 150);
    let user = client.get_user("p2-7@example.com", None, None).unwrap();
    assert_eq!(user.vars["part"], 2);
    assert_eq!(user.vars["source"], "sailbulk");
    assert_eq!(sim.jobs()[0].request["report_email"], "ops@example.com");
    // The journal has every part with its job and final status.
    let j = Journal::load(&journal).unwrap();
    assert_eq!(j.parts.len(), 3);
    for e in &j.parts {
        assert!(e.job_id.is_some());
        assert_eq!(e.status.as_deref(), Some("completed"));
        assert_eq!(e.attempts, 1);
        assert_eq!(e.sha256.len(), 64);
    }
    // A re-run sends nothing: every part already has a job.
    let again = upload(&client, &parts, &journal, &opts).unwrap();
    assert!(again.iter().all(|o| o.resumed));
    assert_eq!(sim.jobs().len(), 3);
}

#[test]
fn an_interrupted_upload_resumes_without_sending_anything_twice() {
    let sim = sim_builder().start().unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let (client, _) = client_with(&sim, |b| b.cancel_flag(cancel.clone()));
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(dir.path(), 4, 20_000);
    let journal = dir.path().join("upload-journal.json");
    // Ctrl-C in the middle of the second part's upload.
    let interrupt = |event: &UploadEvent<'_>| {
        if let UploadEvent::Progress { part, sent } = event {
            if part.ends_with("part-00002.json") && *sent > 100_000 {
                cancel.store(true, Ordering::SeqCst);
            }
        }
    };
    let outcomes = upload_parts(
        &client,
        &parts,
        &journal,
        &options(false),
        &interrupt,
        &cancel,
    )
    .unwrap();
    assert!(outcomes[0].job_id.is_some());
    assert!(outcomes[1..].iter().all(|o| o.job_id.is_none()));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sim.jobs().len(), 1, "the abandoned upload made no job");
    let j = Journal::load(&journal).unwrap();
    assert_eq!(j.parts[1].attempts, 1);
    assert!(j.parts[1].job_id.is_none());

    // The re-run continues: part 1 is only polled, parts 2-4 are sent.
    cancel.store(false, Ordering::SeqCst);
    let sent = Mutex::new(Vec::<PathBuf>::new());
    let record = |event: &UploadEvent<'_>| {
        if let UploadEvent::Sending { part, .. } = event {
            sent.lock().unwrap().push(part.to_path_buf());
        }
    };
    let outcomes =
        upload_parts(&client, &parts, &journal, &options(true), &record, &cancel).unwrap();
    assert!(outcomes[0].resumed);
    assert_eq!(sent.lock().unwrap().len(), 3);
    assert!(outcomes
        .iter()
        .all(|o| o.status.as_ref().unwrap().status == JobState::Completed));
    assert_eq!(sim.jobs().len(), 4, "exactly one job per part");
    let j = Journal::load(&journal).unwrap();
    assert_eq!(j.parts[1].attempts, 2);
    assert_eq!(sim.list_count("All"), 80_000);
}

#[test]
fn a_part_changed_since_it_was_sent_is_refused() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(dir.path(), 2, 5);
    let journal = dir.path().join("upload-journal.json");
    upload(&client, &parts, &journal, &options(false)).unwrap();
    std::fs::write(&parts[1].path, "{\"email\":\"changed@example.com\"}\n").unwrap();
    let err = upload(&client, &parts, &journal, &options(false)).unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Changed {
                when: "it was sent",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("part-00002.json changed since it was sent"),
        "{err}"
    );
    assert_eq!(sim.jobs().len(), 2);
    // A manifest's checksum is checked too.
    let other = PartFile {
        path: parts[0].path.clone(),
        expected_sha256: Some("0".repeat(64)),
    };
    let err = upload(
        &client,
        &[other],
        &dir.path().join("j2.json"),
        &options(false),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Changed {
                when: "the manifest was written",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_invalid_part_stops_the_upload_before_anything_is_sent() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let mut parts = parts(dir.path(), 2, 5);
    parts.push(PartFile {
        path: write(
            dir.path(),
            "bad.json",
            "{\"email\":\"a@example.com\"}\n{\"email\":\"nope\"}\n",
        ),
        expected_sha256: None,
    });
    let journal = dir.path().join("upload-journal.json");
    let err = upload(&client, &parts, &journal, &options(false)).unwrap_err();
    let UploadError::Invalid(reports) = err else {
        panic!("{err}")
    };
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].findings[0].line, 2);
    assert!(sim.requests().is_empty());
    // Without validation it is sent, and the simulator counts the bad line.
    let mut opts = options(true);
    opts.validate = false;
    let outcomes = upload(&client, &parts[2..], &journal, &opts).unwrap();
    assert_eq!(outcomes[0].status.as_ref().unwrap().raw["rejected"], 1);
}

#[test]
fn failed_jobs_and_refused_parts_are_reported_per_part() {
    let sim = sim_builder()
        .fail_jobs(1)
        .fault(Fault::status(Route::new("POST", "/job"), 503).times(100))
        .start()
        .unwrap();
    let (first, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(dir.path(), 1, 5);
    let journal = dir.path().join("upload-journal.json");
    let outcomes = upload(&first, &parts, &journal, &options(true)).unwrap();
    assert!(outcomes[0].job_id.is_none());
    assert!(
        outcomes[0]
            .error
            .as_ref()
            .unwrap()
            .contains("gave up after 6 attempts"),
        "{:?}",
        outcomes[0]
    );
    let j = Journal::load(&journal).unwrap();
    assert!(j.parts[0].last_error.as_ref().unwrap().contains("503"));

    let sim = sim_builder().fail_jobs(1).start().unwrap();
    let (client, _) = client(&sim);
    let journal = dir.path().join("second.json");
    let outcomes = upload(&client, &parts, &journal, &options(true)).unwrap();
    let status = outcomes[0].status.as_ref().unwrap();
    assert_eq!(status.status, JobState::Error);
    assert!(status.raw["reason"].as_str().unwrap().contains("fault"));
}

#[test]
fn import_parts_fill_the_list() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let part = PartFile {
        path: write(
            dir.path(),
            "part-00001.txt",
            "a@example.com\nb@example.com\n",
        ),
        expected_sha256: None,
    };
    let mut opts = options(true);
    opts.spec = JobSpec::new(JobKind::Import);
    opts.spec.list = Some("Imported".into());
    upload(&client, &[part], &dir.path().join("j.json"), &opts).unwrap();
    assert_eq!(client.get_list("Imported", false).unwrap().count, Some(2));
}

#[test]
fn a_postback_from_the_simulator_verifies() {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/postback", listener.local_addr().unwrap());
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    client
        .submit_job(&serde_json::json!({"job": "update", "emails": "a@example.com,bad", "postback_url": url}), None)
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut reader = BufReader::new(stream);
    let mut len = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    reader
        .get_mut()
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let fields: Vec<(String, String)> = String::from_utf8(body)
        .unwrap()
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (decode(k), decode(v))
        })
        .collect();
    assert!(fields.iter().any(|(k, _)| k == "errors[0][code]"));
    assert!(sailbulk_upload::verify_postback(&fields, SECRET));
    assert!(!sailbulk_upload::verify_postback(&fields, "another-secret"));
    let mut tampered = fields.clone();
    tampered[0].1.push('x');
    assert!(!sailbulk_upload::verify_postback(&tampered, SECRET));
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
