//! `sailbulk upload` and `sailbulk status` against the simulator on loopback.

use crate::*;
use sailbulk_sim::{Fault, Route, Sim};
use std::time::Duration;

const KEY: &str = "upload-cli-key";
const SECRET: &str = "s3cr3t-that-must-never-show";

fn sim() -> Sim {
    Sim::builder()
        .api_key(KEY)
        .api_secret(SECRET)
        .start()
        .unwrap()
}

/// Runs `sailbulk ARGS` against `sim`, the secret in a file.
fn run(sim: &Sim, dir: &Path, args: &[&str]) -> Output {
    let secret = write(dir, ".secret", format!("{SECRET}\n"));
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.extend([
        "--api-url".into(),
        sim.url(),
        "--api-key".into(),
        KEY.into(),
        "--api-secret-file".into(),
        s(&secret),
        "--poll-interval".into(),
        "50ms".into(),
    ]);
    // In the test's directory: a journal made in the working directory (for --emails) lands
    // there, not in the source tree.
    let out = Command::new(env!("CARGO_BIN_EXE_sailbulk"))
        .args(&all)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_no_secret(&out);
    out
}

#[track_caller]
fn assert_no_secret(out: &Output) {
    for text in [stdout(out), stderr(out)] {
        assert!(!text.contains(SECRET), "the secret was shown: {text}");
    }
}

#[test]
fn convert_split_and_upload_with_wait_reaches_the_profiles() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let csv: String = std::iter::once("email,first_name,plan\n".to_string())
        .chain((0..300).map(|i| format!("user{i}@example.com,Zoë {i},gold\n")))
        .collect();
    let csv = write(dir.path(), "export.csv", csv);
    let json = dir.path().join("export.json");
    let out = sailbulk(
        &["convert", &s(&csv), "-o", &s(&json), "--list", "Newsletter"],
        None,
    );
    assert_exit(&out, 0, "");
    let parts = dir.path().join("parts");
    let out = sailbulk(
        &["split", &s(&json), "-o", &s(&parts), "--max-bytes", "5kB"],
        None,
    );
    assert_exit(&out, 0, "");
    let manifest = parts.join("manifest.json");
    let out = run(
        &sim,
        dir.path(),
        &["upload", &s(&manifest), "--wait", "--concurrency", "2"],
    );
    assert_exit(&out, 0, "");
    let n_parts = entries(&parts)
        .iter()
        .filter(|n| n.starts_with("part-"))
        .count();
    assert!(n_parts > 3);
    assert_eq!(
        stdout(&out).matches(" completed ").count(),
        n_parts,
        "{}",
        stdout(&out)
    );
    assert_eq!(sim.jobs().len(), n_parts);
    assert_eq!(sim.list_count("Newsletter"), 300);
    let user = sim.user("email", "user42@example.com").unwrap();
    assert_eq!(user.vars["first_name"], "Zoë 42");
    assert!(parts.join("upload-journal.json").is_file());
    // The same command again sends nothing.
    let out = run(&sim, dir.path(), &["upload", &s(&parts)]);
    assert_exit(&out, 0, "");
    assert_eq!(
        stdout(&out).matches("(from an earlier run)").count(),
        n_parts
    );
    assert_eq!(sim.jobs().len(), n_parts);
}

#[test]
fn a_part_that_got_no_job_is_sent_again_on_the_next_run_and_only_it() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", "{\"email\":\"a@example.com\"}\n");
    let b = write(dir.path(), "b.json", "{\"email\":\"b@example.com\"}\n");
    let out = run(&sim, dir.path(), &["upload", &s(&a)]);
    assert_exit(&out, 0, "");
    sim.add_fault(Fault::status(Route::new("POST", "/job"), 503).always());
    let quick = ["--max-retries", "2", "--retry-delay", "10ms"];
    let out = run(
        &sim,
        dir.path(),
        &[&["upload", &s(&a), &s(&b)][..], &quick].concat(),
    );
    // Not sent for want of a server: the command could not run.
    assert_exit(&out, 2, "");
    assert_stdout_has(&out, "b.json  not submitted");
    assert_stderr_has(&out, "failed to submit `");
    assert_stderr_has(&out, "HTTP 503");
    assert_eq!(sim.jobs().len(), 1);
    sim.clear_faults();
    let out = run(
        &sim,
        dir.path(),
        &[&["upload", &s(&a), &s(&b)][..], &quick].concat(),
    );
    assert_exit(&out, 0, "sent before without a job id");
    assert_eq!(sim.jobs().len(), 2, "a once, b once");
}

#[test]
fn an_invalid_file_is_refused_with_its_report_and_nothing_is_sent() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", "{\"email\":\"a@example.com\"}\n");
    let bad = write(
        dir.path(),
        "bad.json",
        "{\"email\":\"a@example.com\"}\n{\"email\":\"a@\",\"vars\":{\"1x\":1}}\n",
    );
    let out = run(&sim, dir.path(), &["upload", &s(&good), &s(&bad)]);
    assert_exit(&out, 1, "");
    assert_stdout_has(&out, "bad.json:2:");
    assert_stdout_has(&out, "invalid_email");
    assert_stderr_has(&out, "nothing was sent");
    assert!(sim.requests().is_empty());
    let out = run(
        &sim,
        dir.path(),
        &["upload", &s(&good), &s(&bad), "--no-validate", "--wait"],
    );
    assert_exit(&out, 0, "");
    assert_stdout_has(&out, "rejected 1");
}

#[test]
fn import_files_over_the_limit_are_refused_or_split() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let line = "someone.with.a.long.address@example.com\n";
    let count = (sailbulk_spec::IMPORT_FILE_MAX_BYTES as usize / line.len()) + 10;
    let big = write(dir.path(), "emails.txt", line.repeat(count));
    let big_path = s(&big);
    let upload_big = |extra: &[&str]| {
        let mut args = vec!["upload", "--job", "import", "--list", "Big", &big_path];
        args.extend_from_slice(extra);
        run(&sim, dir.path(), &args)
    };
    let out = upload_big(&["--no-validate"]);
    assert_exit(&out, 1, "--split");
    assert!(sim.requests().is_empty());
    let out = upload_big(&["--split", "--no-validate", "--wait"]);
    assert_exit(&out, 0, "");
    let parts = dir.path().join("emails.txt.parts");
    assert!(parts.join("manifest.json").is_file());
    assert_eq!(sim.jobs().len(), 2);
    assert_eq!(sim.list_count("Big"), 1, "one address, many times");
    // A re-run reuses the parts and the journal: nothing new is sent.
    let out = upload_big(&["--split", "--no-validate"]);
    assert_exit(&out, 0, "using the parts already split");
    assert_eq!(sim.jobs().len(), 2);
    // The input rewritten to the same size with its old modification time (`cp -p`, `rsync
    // -t`): the checksum in the manifest tells, and the parts are not taken for it.
    let manifest = sailbulk_build::Manifest::read(&parts.join("manifest.json")).unwrap();
    assert_eq!(
        manifest.source.sha256,
        Some(sailbulk_build::sha256_file(&big).unwrap())
    );
    let modified = std::fs::metadata(&big).unwrap().modified().unwrap();
    let changed = line.replacen("someone", "sometwo", 1) + &line.repeat(count - 1);
    std::fs::write(&big, changed).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&big)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let out = upload_big(&["--split", "--no-validate"]);
    assert_exit(&out, 2, "changed after it was split");
    assert_eq!(sim.jobs().len(), 2);
}

#[test]
fn a_part_cap_over_the_job_limit_is_refused_before_anything_is_sent() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let small = write(dir.path(), "emails.txt", "a@example.com\n");
    for (job, size, limit) in [
        ("import", "11MB", "10000000"),
        ("update", "2GB", "1000000000"),
    ] {
        let mut args = vec!["upload", "--job", job, "--split", "--max-bytes", size];
        if job == "import" {
            args.extend(["--list", "Main"]);
        }
        let path = s(&small);
        args.push(&path);
        let out = run(&sim, dir.path(), &args);
        let text = format!("over the {job} job's upload limit of {limit} bytes");
        assert_exit(&out, 2, &text);
    }
    assert!(sim.requests().is_empty());
    assert!(!dir.path().join("emails.txt.parts").exists());
}

#[test]
fn a_part_changed_since_it_was_sent_is_refused() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", "{\"email\":\"a@example.com\"}\n");
    let out = run(&sim, dir.path(), &["upload", &s(&a)]);
    assert_exit(&out, 0, "");
    std::fs::write(&a, "{\"email\":\"b@example.com\"}\n").unwrap();
    let out = run(&sim, dir.path(), &["upload", &s(&a)]);
    assert_exit(&out, 2, "changed since it was sent");
    assert_eq!(sim.jobs().len(), 1);
}

#[test]
fn emails_query_and_update_objects_submit_without_a_file() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &sim,
        dir.path(),
        &[
            "upload",
            "--emails",
            "a@example.com,b@example.com",
            "--update-json",
            r#"{"lists":{"Main":1},"vars":{"tier":"gold"}}"#,
            "--wait",
        ],
    );
    assert_exit(&out, 0, "");
    assert_stdout_has(&out, "completed");
    assert_eq!(sim.list_count("Main"), 2);
    // The journal holds the status the wait ended with.
    let journal = sailbulk_upload::Journal::load(&dir.path().join("upload-journal.json")).unwrap();
    assert_eq!(journal.parts[0].status.as_deref(), Some("completed"));
    let update = write(dir.path(), "update.json", r#"{"optout":"blast"}"#);
    let out = run(
        &sim,
        dir.path(),
        &[
            "upload",
            "--query-json",
            r#"{"source_list":"Main"}"#,
            "--update-file",
            &s(&update),
            "--wait",
        ],
    );
    assert_exit(&out, 0, "");
    assert_eq!(sim.user("email", "b@example.com").unwrap().optout, "blast");
    let out = run(
        &sim,
        dir.path(),
        &[
            "upload",
            "--job",
            "import",
            "--list",
            "Imported",
            "--emails",
            "c@example.com",
            "--wait",
        ],
    );
    assert_exit(&out, 0, "");
    assert_eq!(sim.list_count("Imported"), 1);
    // Refusals: import without a list, an update object that is not an object, nothing to do.
    for args in [
        vec!["upload", "--job", "import", "--emails", "c@example.com"],
        vec![
            "upload",
            "--emails",
            "c@example.com",
            "--update-json",
            "[1]",
        ],
        vec!["upload"],
    ] {
        let out = run(&sim, dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    // The API refusing a job is a failed job: exit 1, with its code and message.
    let out = run(
        &sim,
        dir.path(),
        &["upload", "--query-json", r#"{"source_list":"Nope"}"#],
    );
    assert_exit(&out, 1, "HTTP 404, error 15: Unknown list: Nope");
}

#[test]
fn status_prints_follows_and_reports_jobs() {
    let sim = Sim::builder()
        .api_key(KEY)
        .api_secret(SECRET)
        // One worker takes the jobs in order, so the first fails and the second is still
        // pending while the first runs, however slow the machine.
        .job_delay(Duration::from_millis(500))
        .job_workers(1)
        .fail_jobs(1)
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run(&sim, dir.path(), &["upload", "--emails", "a@example.com"]);
    assert_exit(&out, 0, "");
    let failed = sim.jobs()[0].job_id.clone();
    let out = run(&sim, dir.path(), &["upload", "--emails", "b@example.com"]);
    assert_exit(&out, 0, "");
    let ok = sim.jobs()[1].job_id.clone();
    let out = run(&sim, dir.path(), &["status", &ok]);
    assert_exit(&out, 0, "");
    assert!(
        stdout(&out).starts_with(&format!("{ok}  pending")),
        "{}",
        stdout(&out)
    );
    let out = run(&sim, dir.path(), &["status", "--wait", &ok, &failed]);
    assert_exit(&out, 1, "");
    let lines: Vec<_> = stdout(&out).lines().map(str::to_string).collect();
    assert!(
        lines[0].starts_with(&format!("{ok}  completed")),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!("{failed}  error")),
        "{lines:?}"
    );
    assert!(lines[1].contains("reason:"), "{lines:?}");
    let out = run(&sim, dir.path(), &["status", "--json", &ok]);
    let body: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(body["status"], "completed");
    assert_eq!(body["applied"], 1);
    let out = run(&sim, dir.path(), &["status", "4dd58f036803fa3b5500000b"]);
    assert_exit(&out, 2, "Invalid job_id");
}

#[test]
fn the_secret_never_shows_even_when_it_is_wrong() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let wrong = "wrong-s3cr3t-value-here";
    let secret = write(dir.path(), "wrong", format!("{wrong}\n"));
    let a = write(dir.path(), "a.json", "{\"email\":\"a@example.com\"}\n");
    for args in [
        vec!["upload".to_string(), s(&a)],
        vec!["status".to_string(), "x".to_string()],
    ] {
        let mut all = args.clone();
        all.extend([
            "--api-url".into(),
            sim.url(),
            "--api-key".into(),
            KEY.into(),
            "--api-secret-file".into(),
            s(&secret),
        ]);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = sailbulk(&all, None);
        assert_ne!(out.status.code(), Some(0));
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(text.contains("error 5"), "{text}");
        assert!(!text.contains(wrong), "{text}");
    }
    // Without a secret the command says how to give one.
    let out = sailbulk(
        &["status", "x", "--api-url", &sim.url(), "--api-key", KEY],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "SAILTHRU_API_SECRET");
}

/// The peak resident memory (`VmHWM`, kB) of a child, read until it exits.
fn run_measuring_peak(mut cmd: Command) -> (Output, u64) {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status_path = format!("/proc/{}/status", child.id());
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let peak = peak.clone();
        std::thread::spawn(move || {
            while let Ok(status) = std::fs::read_to_string(&status_path) {
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak.fetch_max(kb, std::sync::atomic::Ordering::SeqCst);
                }
                // A zombie has no memory lines left: the process has ended.
                if !status.contains("VmHWM:") {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = child.wait_with_output().unwrap();
    watcher.join().unwrap();
    (out, peak.load(std::sync::atomic::Ordering::SeqCst))
}

/// A 1 GiB file is over the update limit (10^9 bytes, `sailbulk_spec`), so `--split` cuts it into
/// two parts under the limit and both are sent: the whole GiB streams from disk in bounded memory.
#[test]
fn a_1_gib_upload_keeps_peak_rss_under_50_mb() {
    const GIB: usize = 1 << 30;
    // The jobs stay pending: the upload, not the simulator's processing, is under test.
    let sim = Sim::builder()
        .api_key(KEY)
        .api_secret(SECRET)
        .job_delay(Duration::from_secs(3600))
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    let line = b"{\"email\":\"someone@example.com\",\"vars\":{\"plan\":\"gold\",\"n\":12345}}\n";
    {
        use std::io::Write;
        let block: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * 16_384)
            .collect();
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut left = GIB / line.len() * line.len();
        while left > 0 {
            let n = left.min(block.len());
            file.write_all(&block[..n]).unwrap();
            left -= n;
        }
    }
    let secret = write(dir.path(), ".secret", SECRET);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sailbulk"));
    cmd.args([
        "upload",
        &s(&path),
        "--split",
        "--no-validate",
        "--api-url",
        &sim.url(),
        "--api-key",
        KEY,
    ])
    .arg("--api-secret-file")
    .arg(&secret)
    .stdin(Stdio::null());
    let (out, peak_kb) = run_measuring_peak(cmd);
    assert_exit(&out, 0, "");
    let files = sim.received_files();
    assert_eq!(files.len(), 2);
    let sent: u64 = files.iter().map(|f| f.bytes).sum();
    assert_eq!(sent, std::fs::metadata(&path).unwrap().len());
    assert!(sent > 1_000_000_000);
    assert!(files
        .iter()
        .all(|f| f.bytes <= sailbulk_spec::UPDATE_FILE_MAX_BYTES));
    let parts = dir.path().join("big.json.parts");
    let first = sailbulk_build::sha256_file(&parts.join("part-00001.json")).unwrap();
    assert_eq!(files[0].sha256, first);
    eprintln!(
        "sailbulk upload --split of 1 GiB: peak RSS {} MB",
        peak_kb / 1024
    );
    assert!(peak_kb > 0 && peak_kb < 50 * 1024, "peak RSS {peak_kb} kB");
}

/// Ctrl-C while a part's answer is on its way: the answer is waited for and journalled (the job
/// exists, so sending again would duplicate it), no further part is sent, and the same command
/// run again sends only what is left.
#[test]
fn ctrl_c_leaves_a_journal_that_a_rerun_continues_from() {
    let sim = Sim::builder()
        .api_key(KEY)
        .api_secret(SECRET)
        .fault(Fault::delay(
            Route::new("POST", "/job"),
            Duration::from_secs(2),
        ))
        .start()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", "{\"email\":\"a@example.com\"}\n");
    let b = write(dir.path(), "b.json", "{\"email\":\"b@example.com\"}\n");
    let secret = write(dir.path(), ".secret", SECRET);
    let args = [
        "upload".to_string(),
        s(&a),
        s(&b),
        "--api-url".into(),
        sim.url(),
        "--api-key".into(),
        KEY.into(),
        "--api-secret-file".into(),
        s(&secret),
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_sailbulk"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first job exists once the simulator has processed the request; its answer is held.
    while sim.jobs().is_empty() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_exit(
        &out,
        2,
        "interrupted; run the same command again to continue",
    );
    assert_stdout_has(&out, "a.json  ");
    assert_stdout_has(&out, "b.json  not submitted");
    assert_eq!(sim.jobs().len(), 1);
    let journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("upload-journal.json")).unwrap())
            .unwrap();
    assert_eq!(journal["parts"][0]["job_id"], sim.jobs()[0].job_id.as_str());
    assert!(journal["parts"][1]["job_id"].is_null());

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sailbulk(&args, None);
    assert_exit(&out, 0, "already submitted as job");
    assert_eq!(sim.jobs().len(), 2, "a once, b once");
}

#[test]
fn the_same_emails_job_run_again_is_not_submitted_again() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "upload",
        "--emails",
        "a@example.com",
        "--update-json",
        r#"{"vars":{"n":1}}"#,
    ];
    let out = run(&sim, dir.path(), &args);
    assert_exit(&out, 0, "");
    assert!(dir.path().join("upload-journal.json").is_file());
    let out = run(&sim, dir.path(), &args);
    assert_exit(&out, 0, "was submitted before as");
    assert_eq!(sim.jobs().len(), 1);
    // Other parameters are another job.
    let out = run(&sim, dir.path(), &["upload", "--emails", "b@example.com"]);
    assert_exit(&out, 0, "");
    assert_eq!(sim.jobs().len(), 2);
}

#[test]
fn files_whose_journals_would_differ_need_one_named() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d2")).unwrap();
    let a = write(dir.path(), "a.json", "{\"email\":\"a@example.com\"}\n");
    let b = write(
        &dir.path().join("d2"),
        "b.json",
        "{\"email\":\"b@example.com\"}\n",
    );
    // Run in one order and then the other, each would read another journal and send again.
    let out = run(&sim, dir.path(), &["upload", &s(&a), &s(&b)]);
    assert_exit(&out, 2, "--journal");
    assert!(sim.requests().is_empty());
    let journal = dir.path().join("j.json");
    let out = run(
        &sim,
        dir.path(),
        &["upload", &s(&a), &s(&b), "--journal", &s(&journal)],
    );
    assert_exit(&out, 0, "");
    let out = run(
        &sim,
        dir.path(),
        &["upload", &s(&b), &s(&a), "--journal", &s(&journal)],
    );
    assert_exit(&out, 0, "");
    assert_eq!(sim.jobs().len(), 2);
    // Files of one directory, named by other spellings of it, share its journal.
    let c = write(
        &dir.path().join("d2"),
        "c.json",
        "{\"email\":\"c@example.com\"}\n",
    );
    let dotted = dir.path().join("d2").join("..").join("d2").join("c.json");
    let out = run(&sim, dir.path(), &["upload", &s(&c), &s(&dotted)]);
    assert_exit(&out, 0, "");
    assert_eq!(sim.jobs().len(), 3);
}

#[test]
fn a_refused_file_fails_the_run_and_holds_the_rest_back() {
    let sim = sim();
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.txt", "e1@example.com\n");
    let b = write(dir.path(), "b.txt", "e2@example.com\n");
    let out = run(
        &sim,
        dir.path(),
        &[
            "upload",
            "--job",
            "import",
            "--list",
            "bad$list",
            &s(&a),
            &s(&b),
        ],
    );
    // Exit 1: the API refused the upload (the second file was held back, not lost to a
    // network failure).
    assert_exit(&out, 1, "$ character");
    assert_eq!(
        sim.requests().iter().filter(|r| r.path == "/job").count(),
        1
    );
}
