//! The job runner: one job per part, journalled, resumable, validated, watched to the end.

use crate::*;
use sailbulk_sim::{Fault, Route};
use sailbulk_spec::JobKind;
use sailbulk_upload::{
    upload_parts, JobSpec, JobState, Journal, PartFile, PartVerdict, PollPolicy, UploadError,
    UploadEvent, UploadOptions,
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

/// A simulator, a client of it, and a directory holding `n` parts of five lines each.
fn setup(n: usize) -> (Sim, Client, tempfile::TempDir, Vec<PartFile>) {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(dir.path(), n, 5);
    (sim, client, dir, parts)
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
    let (sim, client, dir, parts) = setup(2);
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
    let (sim, client, dir, mut parts) = setup(2);
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
fn a_part_that_cannot_be_read_stops_the_upload_with_the_validator_s_error() {
    let (sim, client, dir, mut parts) = setup(2);
    let damaged = dir.path().join("damaged.json");
    std::fs::write(&damaged, b"\x1f\x8b not gzip after all").unwrap();
    parts.push(PartFile {
        path: damaged.clone(),
        expected_sha256: None,
    });
    let journal = dir.path().join("upload-journal.json");
    let err = upload(&client, &parts, &journal, &options(false)).unwrap_err();
    assert!(
        matches!(
            &err,
            UploadError::Validate(sailbulk_parse::Error::Read { path, checked, .. })
                if *path == damaged && checked.lines == 0
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("cannot read {}", damaged.display())
    );
    assert!(sim.requests().is_empty());
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
    // Not sent, not refused: the run could not finish.
    assert_eq!(outcomes[0].verdict(true), PartVerdict::Unfinished);

    let sim = sim_builder().fail_jobs(1).start().unwrap();
    let (client, _) = client(&sim);
    let journal = dir.path().join("second.json");
    let outcomes = upload(&client, &parts, &journal, &options(true)).unwrap();
    let status = outcomes[0].status.as_ref().unwrap();
    assert_eq!(status.status, JobState::Error);
    assert!(status.raw["reason"].as_str().unwrap().contains("fault"));
    assert_eq!(outcomes[0].verdict(true), PartVerdict::Failed);
    // A job that ended well, and one still running when nobody waited for it, are done.
    let sim = sim_builder().start().unwrap();
    let (fine, _) = crate::client(&sim);
    for (journal, wait) in [("third.json", true), ("fourth.json", false)] {
        let outcomes = upload(&fine, &parts, &dir.path().join(journal), &options(wait)).unwrap();
        assert_eq!(outcomes[0].verdict(wait), PartVerdict::Done);
    }
    // A job whose status cannot be read while it is waited for: the run could not finish.
    let blind = sim_builder()
        .fault(Fault::status(Route::new("GET", "/job"), 503).always())
        .start()
        .unwrap();
    let (blind_client, _) = crate::client(&blind);
    let outcomes = upload(
        &blind_client,
        &parts,
        &dir.path().join("fifth.json"),
        &options(true),
    )
    .unwrap();
    assert!(
        outcomes[0].job_id.is_some() && outcomes[0].error.is_some(),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[0].verdict(true), PartVerdict::Unfinished);
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
    let receiver = sailbulk_sim::PostbackReceiver::bind().unwrap();
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    client
        .submit_job(
            &serde_json::json!({"job": "update", "emails": "a@example.com,bad", "postback_url": receiver.url()}),
            None,
        )
        .unwrap();
    let fields = receiver
        .receive(Duration::from_secs(30))
        .unwrap()
        .expect("a postback")
        .fields;
    assert!(fields.iter().any(|(k, _)| k == "errors[0][code]"));
    assert!(sailbulk_upload::verify_postback(&fields, SECRET));
    assert!(!sailbulk_upload::verify_postback(&fields, "another-secret"));
    let mut tampered = fields.clone();
    tampered[0].1.push('x');
    assert!(!sailbulk_upload::verify_postback(&tampered, SECRET));
}

#[test]
fn a_part_is_only_resumed_into_the_same_job() {
    let (sim, client, dir, parts) = setup(1);
    let journal = dir.path().join("upload-journal.json");
    upload(&client, &parts, &journal, &options(false)).unwrap();
    let mut other = options(false);
    other.spec.update = Some(serde_json::json!({"vars": {"x": 1}}));
    let err = upload(&client, &parts, &journal, &other).unwrap_err();
    assert!(matches!(err, UploadError::OtherJob { .. }), "{err}");
    assert_eq!(sim.jobs().len(), 1);
}

#[test]
fn the_same_file_named_twice_is_sent_once() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let mut parts = parts(dir.path(), 1, 5);
    parts.push(PartFile {
        path: dir.path().join(".").join("part-00001.json"),
        expected_sha256: None,
    });
    parts.push(parts[0].clone());
    let mut opts = options(false);
    opts.concurrency = 3;
    let outcomes = upload(&client, &parts, &dir.path().join("j.json"), &opts).unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(sim.jobs().len(), 1);
}

#[test]
fn wrong_credentials_are_found_before_anything_is_sent() {
    let sim = sim_builder().start().unwrap();
    let client = sailbulk_upload::ClientBuilder::new(KEY, sailbulk_upload::Secret::new("wrong"))
        .base_url(sim.url())
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(dir.path(), 3, 5);
    let err = upload(&client, &parts, &dir.path().join("j.json"), &options(false)).unwrap_err();
    let UploadError::Unreachable(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.api_error().unwrap().code, Some(5));
    assert!(sim.requests().iter().all(|r| r.path != "/job"));
}

#[test]
fn after_the_api_refuses_a_part_the_rest_are_not_sent() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(dir.path(), 3, 5);
    let mut opts = options(false);
    opts.spec.update = Some(serde_json::json!({"lists": {"Big $ale": 1}}));
    let outcomes = upload(&client, &parts, &dir.path().join("j.json"), &opts).unwrap();
    assert!(outcomes[0].refused);
    assert!(outcomes[0].error.as_ref().unwrap().contains("$ character"));
    for o in &outcomes[1..] {
        assert!(o.job_id.is_none());
        assert!(
            o.error.as_ref().unwrap().contains("the API refused"),
            "{o:?}"
        );
    }
    let posts = sim.requests().iter().filter(|r| r.path == "/job").count();
    assert_eq!(posts, 1);
    // The refused part failed, and so did the run for those held back.
    assert_eq!(outcomes[0].verdict(false), PartVerdict::Failed);
    for o in &outcomes[1..] {
        assert!(o.held_back && !o.refused, "{o:?}");
        assert_eq!(o.verdict(false), PartVerdict::Failed);
    }
}

/// A lock file holding `text`, locked as a running upload holds it; unlocked when dropped.
fn held_lock(lock: &std::path::Path, text: &str) -> std::fs::File {
    use std::os::unix::io::AsRawFd;
    std::fs::write(lock, text).unwrap();
    let held = std::fs::File::open(lock).unwrap();
    // SAFETY: flock on a descriptor the test owns.
    assert_eq!(
        unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    held
}

#[test]
fn a_journal_in_use_by_a_live_process_is_refused() {
    let (sim, client, dir, parts) = setup(1);
    let journal = dir.path().join("j.json");
    let lock = dir.path().join("j.json.lock");
    // Another holder: a lock on the file, as a running upload has it.
    let held = held_lock(&lock, "4242\n");
    let err = upload(&client, &parts, &journal, &options(false)).unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::Busy {
                pid: Some(4242),
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("(process 4242, which holds "),
        "{err}"
    );
    assert!(sim.requests().is_empty());
    // A holder that has not written its id yet is named by its lock file alone.
    let other_journal = dir.path().join("k.json");
    let other_held = held_lock(&dir.path().join("k.json.lock"), "");
    let err = upload(&client, &parts, &other_journal, &options(false)).unwrap_err();
    assert!(matches!(err, UploadError::Busy { pid: None, .. }), "{err}");
    assert!(
        err.to_string()
            .contains("is in use by another upload (which holds "),
        "{err}"
    );
    drop(other_held);
    assert!(sim.requests().is_empty());
    // Once its holder is gone, however it ended, the lock is free: a file left behind (by a
    // process killed before it could remove it) holds no lock, and is taken over and removed.
    drop(held);
    upload(&client, &parts, &journal, &options(false)).unwrap();
    assert!(!lock.exists());
    std::fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
    upload(&client, &parts, &journal, &options(false)).unwrap();
    assert!(!lock.exists());
}

#[test]
fn two_runs_at_once_never_both_hold_the_journal() {
    // Many runs race for one journal: each either takes the lock or is refused as busy, and the
    // part is sent once.
    let (sim, client, dir, parts) = setup(1);
    let journal = dir.path().join("j.json");
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| upload(&client, &parts, &journal, &options(false))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for outcome in &outcomes {
        match outcome {
            Ok(_) | Err(UploadError::Busy { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(outcomes.iter().any(Result::is_ok));
    assert_eq!(sim.jobs().len(), 1);
    // A run that holds the journal (its answer slow to come) keeps a second one off it.
    let slow = sim_builder()
        .fault(Fault::delay(
            Route::new("POST", "/job"),
            Duration::from_millis(800),
        ))
        .start()
        .unwrap();
    let (client, _) = crate::client(&slow);
    let other = tempfile::tempdir().unwrap();
    let slow_parts = crate::runner::parts(other.path(), 1, 5);
    let journal = other.path().join("j.json");
    std::thread::scope(|scope| {
        let first = scope.spawn(|| upload(&client, &slow_parts, &journal, &options(false)));
        std::thread::sleep(Duration::from_millis(300));
        let second = upload(&client, &slow_parts, &journal, &options(false));
        assert!(
            matches!(second, Err(UploadError::Busy { .. })),
            "{second:?}"
        );
        first.join().unwrap().unwrap();
    });
    assert_eq!(slow.jobs().len(), 1);
}

#[test]
fn a_part_sent_in_full_without_an_answer_is_marked_when_sent_again() {
    let (_sim, client, dir, parts) = setup(1);
    let journal = dir.path().join("j.json");
    // As a run killed while waiting for the answer leaves it.
    upload(&client, &parts, &journal, &options(false)).unwrap();
    let mut j = Journal::load(&journal).unwrap();
    j.parts[0].job_id = None;
    j.parts[0].body_sent_at = Some(1);
    j.save(&journal).unwrap();
    let warned = AtomicBool::new(false);
    let watch = |e: &UploadEvent<'_>| {
        if let UploadEvent::Sending {
            after_full_send: true,
            ..
        } = e
        {
            warned.store(true, Ordering::SeqCst);
        }
    };
    let outcomes = upload_parts(
        &client,
        &parts,
        &journal,
        &options(false),
        &watch,
        &AtomicBool::new(false),
    )
    .unwrap();
    assert!(warned.load(Ordering::SeqCst));
    assert!(outcomes[0].possibly_duplicated);
    assert!(Journal::load(&journal).unwrap().parts[0].possibly_duplicated);
}

#[test]
fn a_job_without_a_file_is_submitted_once() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.json");
    let params = serde_json::json!({"job": "update", "emails": "a@example.com"});
    let params = params.as_object().unwrap();
    let first = sailbulk_upload::submit_once(&client, params, &journal).unwrap();
    assert!(!first.resumed && !first.possibly_duplicated);
    let again = sailbulk_upload::submit_once(&client, params, &journal).unwrap();
    assert!(again.resumed);
    assert_eq!(first.job_id, again.job_id);
    assert_eq!(sim.jobs().len(), 1);
    // As a run killed with the call out leaves it (an attempt, no answer, no failure): the job
    // may exist, so the call sent again is flagged.
    let mut j = Journal::load(&journal).unwrap();
    j.parts[0].job_id = None;
    j.parts[0].status = None;
    j.save(&journal).unwrap();
    let resent = sailbulk_upload::submit_once(&client, params, &journal).unwrap();
    assert!(!resent.resumed);
    assert!(resent.possibly_duplicated);
    assert!(Journal::load(&journal).unwrap().parts[0].possibly_duplicated);
    assert_eq!(sim.jobs().len(), 2);
}

#[test]
fn a_file_named_another_way_is_the_same_part() {
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let parts = parts(&real, 1, 5);
    let journal = dir.path().join("j.json");
    upload(&client, &parts, &journal, &options(false)).unwrap();
    // Through `..`, and through a symlinked directory: the journal knows the file.
    let dotted = PartFile {
        path: real.join("..").join("real").join("part-00001.json"),
        expected_sha256: None,
    };
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let linked = PartFile {
        path: link.join("part-00001.json"),
        expected_sha256: None,
    };
    for part in [dotted, linked.clone()] {
        let outcomes = upload(&client, &[part], &journal, &options(false)).unwrap();
        assert!(outcomes[0].resumed, "{outcomes:?}");
    }
    assert_eq!(sim.jobs().len(), 1);
    // A journal from before keys were canonical names the file as it was given: its entry is
    // taken over, not sent again.
    let mut old = Journal::load(&journal).unwrap();
    old.parts[0].file = std::path::absolute(&linked.path)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    old.save(&journal).unwrap();
    let outcomes = upload(&client, &[linked], &journal, &options(false)).unwrap();
    assert!(outcomes[0].resumed, "{outcomes:?}");
    assert_eq!(sim.jobs().len(), 1);
    let now = Journal::load(&journal).unwrap();
    assert_eq!(now.parts.len(), 1);
    assert_eq!(
        Path::new(&now.parts[0].file),
        std::fs::canonicalize(&parts[0].path).unwrap()
    );
}

#[test]
fn the_same_data_under_another_name_is_not_sent_twice() {
    let (sim, client, dir, parts) = setup(1);
    let journal = dir.path().join("j.json");
    upload(&client, &parts, &journal, &options(false)).unwrap();
    // The part moved (or was copied) to another name.
    let moved = dir.path().join("moved.json");
    std::fs::rename(&parts[0].path, &moved).unwrap();
    let part = PartFile {
        path: moved,
        expected_sha256: None,
    };
    let err = upload(
        &client,
        std::slice::from_ref(&part),
        &journal,
        &options(false),
    )
    .unwrap_err();
    assert!(matches!(err, UploadError::SentAs { .. }), "{err}");
    assert!(err.to_string().contains("part-00001.json"), "{err}");
    assert!(err.to_string().contains("job "), "{err}");
    assert_eq!(sim.jobs().len(), 1);
    // As another job, or with another journal, it is another upload.
    let mut import = options(false);
    import.spec.update = Some(serde_json::json!({"vars": {"source": "moved"}}));
    upload(&client, &[part], &journal, &import).unwrap();
    assert_eq!(sim.jobs().len(), 2);
    // Two equal parts of one run are two parts, sent and resumed as such.
    let twins = tempfile::tempdir().unwrap();
    let text = "{\"email\":\"twin@example.com\"}\n";
    let pair: Vec<PartFile> = ["part-00001.json", "part-00002.json"]
        .iter()
        .map(|name| PartFile {
            path: write(twins.path(), name, text),
            expected_sha256: None,
        })
        .collect();
    let twins_journal = twins.path().join("j.json");
    for _ in 0..2 {
        let outcomes = upload(&client, &pair, &twins_journal, &options(false)).unwrap();
        assert!(outcomes.iter().all(|o| o.job_id.is_some()), "{outcomes:?}");
    }
    assert_eq!(sim.jobs().len(), 4);
}

#[test]
fn a_part_that_made_no_job_may_be_corrected_and_sent() {
    // Every send is answered 503 until the attempts run out: the part was sent, but nothing of
    // it was applied, so the corrected file is no changed part.
    let refusing = sim_builder()
        .fault(Fault::status(Route::new("POST", "/job"), 503).always())
        .start()
        .unwrap();
    let (first, _) = client(&refusing);
    let dir = tempfile::tempdir().unwrap();
    let parts = parts(dir.path(), 1, 5);
    let journal = dir.path().join("j.json");
    let outcomes = upload(&first, &parts, &journal, &options(false)).unwrap();
    assert!(outcomes[0].job_id.is_none(), "{outcomes:?}");
    assert!(!outcomes[0].possibly_duplicated);
    assert!(refusing.jobs().is_empty());
    std::fs::write(&parts[0].path, "{\"email\":\"fixed@example.com\"}\n").unwrap();
    let sim = sim_builder().start().unwrap();
    let (client, _) = client(&sim);
    let outcomes = upload(&client, &parts, &journal, &options(false)).unwrap();
    assert!(outcomes[0].job_id.is_some(), "{outcomes:?}");
    assert_eq!(sim.jobs().len(), 1);
    let entry = Journal::load(&journal).unwrap().parts[0].clone();
    assert_eq!(
        entry.sha256,
        sailbulk_build::sha256_file(&parts[0].path).unwrap()
    );
    // Once a job exists, a change is refused as before.
    std::fs::write(&parts[0].path, "{\"email\":\"again@example.com\"}\n").unwrap();
    let err = upload(&client, &parts, &journal, &options(false)).unwrap_err();
    assert!(matches!(err, UploadError::Changed { .. }), "{err}");
}

#[test]
fn a_spec_the_api_would_refuse_is_refused_before_anything_is_sent() {
    let (sim, client, dir, parts) = setup(1);
    let journal = dir.path().join("j.json");
    let cases: [(JobSpec, sailbulk_upload::SpecError); 4] = [
        (
            JobSpec::new(JobKind::Import),
            sailbulk_upload::SpecError::ImportWithoutList,
        ),
        (
            JobSpec {
                list: Some("Main".into()),
                ..JobSpec::new(JobKind::Update)
            },
            sailbulk_upload::SpecError::ListOnUpdate,
        ),
        (
            JobSpec {
                list: Some("Main".into()),
                update: Some(serde_json::json!({"vars": {}})),
                ..JobSpec::new(JobKind::Import)
            },
            sailbulk_upload::SpecError::UpdateOnImport,
        ),
        (
            JobSpec {
                update: Some(serde_json::json!(["vars"])),
                ..JobSpec::new(JobKind::Update)
            },
            sailbulk_upload::SpecError::UpdateNotObject,
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(spec.check(), Err(want.clone()));
        let options = UploadOptions::new(spec);
        let err = upload(&client, &parts, &journal, &options).unwrap_err();
        assert!(matches!(&err, UploadError::Spec(e) if *e == want), "{err}");
    }
    assert!(sim.requests().is_empty());
    assert!(!journal.exists());
}
