//! `sailbulk validate`.

use crate::{
    assert_exit, assert_stderr_has, assert_stdout_has, entries, fixture, gzip, s, sailbulk, set,
    stderr, stdout, write,
};
use serde_json::Value;
use std::io::Write;

fn path(rel: &str) -> String {
    fixture(rel).display().to_string()
}

#[test]
fn a_valid_file_exits_0_with_a_summary() {
    let out = sailbulk(&["validate", &path("accepted/docs_examples.json")], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("docs_examples.json: valid: 6 lines, 6 records, 0 errors, 0 warnings (json"),
        "{text}"
    );
}

#[test]
fn findings_print_path_line_column_code_and_message_and_exit_1() {
    let file = path("rejected/mixed.json");
    let out = sailbulk(&["validate", &file], None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        format!("{file}:4:10: error[invalid_email]: `email` \"dave@example\" is not a valid email address: the domain has no dot")
    );
    assert!(text.contains(&format!("{file}:10: warning[blank_line]: ")));
    assert!(text.contains("INVALID: 26 lines"));
    assert!(
        text.contains("\n  invalid_email          2  first on line 4\n"),
        "{text}"
    );
}

#[test]
fn json_report_has_the_documented_shape() {
    let out = sailbulk(
        &[
            "validate",
            "--report",
            "json",
            &path("rejected/mixed.json"),
            &path("accepted/emails.txt"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    assert_eq!(doc["valid"], false);
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    let mixed = &files[0];
    for key in [
        "path", "format", "bytes", "lines", "records", "valid", "errors", "warnings", "by_code",
        "issues",
    ] {
        assert!(mixed.get(key).is_some(), "{key}");
    }
    assert_eq!(mixed["format"], "json");
    assert_eq!(mixed["lines"], 26);
    assert_eq!(mixed["by_code"]["invalid_email"], 2);
    let issue = &mixed["issues"][0];
    assert_eq!(issue["line"], 4);
    assert_eq!(issue["column"], 10);
    assert_eq!(issue["severity"], "error");
    assert_eq!(issue["code"], "invalid_email");
    assert_eq!(issue["field"], "email");
    let blank = mixed["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "blank_line")
        .unwrap();
    assert_eq!(blank["column"], Value::Null);
    assert_eq!(files[1]["format"], "emails");
    assert_eq!(files[1]["valid"], true);
}

/// `--max-errors 0` lists every finding, however many: past what a spool keeps in memory, the
/// report streams them back from a temporary file, in order, one to a line.
#[test]
fn a_json_report_lists_every_finding_of_a_file_with_many() {
    let dir = tempfile::tempdir().unwrap();
    // Each finding takes about 130 bytes of JSON: more than the spool keeps in memory.
    let n = 50_000;
    assert!(n * 100 > sailbulk_parse::SPOOL_MEMORY_BYTES);
    let lines: String = (0..n)
        .map(|i| format!("{{\"email\":\"nobody{i}\"}}\n"))
        .collect();
    let bad = s(&write(dir.path(), "bad.json", lines));
    let good = s(&write(
        dir.path(),
        "good.json",
        "{\"email\":\"a@example.com\"}\n",
    ));
    let out = sailbulk(
        &[
            "validate",
            "--report",
            "json",
            "--max-errors",
            "0",
            &good,
            &bad,
            &good,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    let doc: Value = serde_json::from_str(&text).expect("one JSON document");
    assert_eq!(doc["valid"], false);
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["issues"], serde_json::json!([]));
    assert_eq!(files[2]["issues"], serde_json::json!([]));
    let issues = files[1]["issues"].as_array().unwrap();
    assert_eq!(issues.len(), n);
    assert_eq!(files[1]["errors"], n);
    assert_eq!(files[1]["issues_omitted"], 0);
    for (i, issue) in issues.iter().enumerate() {
        assert_eq!(issue["line"], i + 1);
        assert_eq!(issue["code"], "invalid_email");
        assert_eq!(issue["field"], "email");
        assert_eq!(issue["column"], 10);
    }
    let last = issues.last().unwrap();
    assert_eq!(
        last["message"],
        format!(
            "`email` \"nobody{}\" is not a valid email address: it has no `@`",
            n - 1
        )
    );
    // One issue to a line, so that a long report can be read (and grepped) line by line.
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with("{\"line\":"))
            .count(),
        n
    );
}

/// A code found only past the findings a report lists is still located: the summary names the
/// line of each code's first finding, in text and in JSON.
#[test]
fn the_summary_names_where_each_code_is_first_found() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = (0..5000)
        .map(|i| format!("{{\"email\":\"u{i}@example.com\",\"vars\":{{\"first-name\":\"x\"}}}}\n"))
        .collect();
    lines[4321] = "{\"email\":\"nobody\"}\n".to_string();
    let file = s(&write(dir.path(), "export.json", lines.concat()));
    let out = sailbulk(&["validate", "--max-errors", "10", &file], None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(!text.contains("error[invalid_email]"), "{text}");
    assert!(
        text.contains("\n  invalid_email             1  first on line 4322\n"),
        "{text}"
    );
    assert!(
        text.contains("\n  var_name_invalid_char  4999  first on line 1\n"),
        "{text}"
    );
    let out = sailbulk(
        &["validate", "--report", "json", "--max-errors", "10", &file],
        None,
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &doc["files"][0]["first_line_by_code"];
    assert_eq!(
        *first,
        serde_json::json!({"invalid_email": 4322, "var_name_invalid_char": 1})
    );
    assert_eq!(doc["files"][0]["issues"].as_array().unwrap().len(), 10);
}

#[test]
fn max_errors_limits_the_list_not_the_counts() {
    let out = sailbulk(
        &[
            "validate",
            "--report",
            "json",
            "--max-errors",
            "3",
            &path("rejected/emails.json"),
        ],
        None,
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = &doc["files"][0];
    assert_eq!(file["issues"].as_array().unwrap().len(), 3);
    assert_eq!(file["errors"], 30);
    assert_eq!(file["issues_omitted"], 27);
    let out = sailbulk(
        &[
            "validate",
            "--max-errors",
            "0",
            &path("rejected/emails.json"),
        ],
        None,
    );
    assert_eq!(stdout(&out).matches("error[invalid_email]").count(), 30);
    let out = sailbulk(
        &[
            "validate",
            "--max-errors",
            "2",
            &path("rejected/emails.json"),
        ],
        None,
    );
    assert_eq!(stdout(&out).matches("error[invalid_email]").count(), 2);
    assert!(stdout(&out).contains("28 more findings not listed"));
}

#[test]
fn strict_turns_warnings_into_errors() {
    let file = path("accepted/warnings_fields.json");
    assert_eq!(sailbulk(&["validate", &file], None).status.code(), Some(0));
    let out = sailbulk(&["validate", "--strict", &file], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("error[unknown_field]"));
}

#[test]
fn stdin_and_gzip_give_the_same_report_as_the_file() {
    let file = fixture("rejected/mixed.json");
    let bytes = std::fs::read(&file).unwrap();
    let from_file = sailbulk(
        &["validate", "--report", "json", &file.display().to_string()],
        None,
    );
    let from_stdin = sailbulk(&["validate", "--report", "json", "-"], Some(&bytes));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz_path = dir.path().join("mixed.json.gz");
    std::fs::write(&gz_path, gz.finish().unwrap()).unwrap();
    let from_gz = sailbulk(
        &[
            "validate",
            "--report",
            "json",
            &gz_path.display().to_string(),
        ],
        None,
    );
    let issues = |out: &std::process::Output| {
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            doc["files"][0]["issues"].clone(),
            doc["files"][0]["bytes"].clone(),
        )
    };
    assert_eq!(issues(&from_stdin), issues(&from_file));
    assert_eq!(issues(&from_gz), issues(&from_file));
    let doc: Value = serde_json::from_slice(&from_gz.stdout).unwrap();
    assert_eq!(doc["files"][0]["gzip"], true);
}

#[test]
fn threads_and_mmap_do_not_change_the_report() {
    let file = path("rejected/mixed.json");
    let base = stdout(&sailbulk(&["validate", "--threads", "1", &file], None));
    for args in [
        ["--threads", "2"],
        ["--threads", "3"],
        // Far more threads than a block has pieces: no more are started than can work.
        ["--threads", "4294967296"],
        ["--no-mmap", "--no-progress"],
    ] {
        let mut all = vec!["validate"];
        all.extend(args);
        all.push(&file);
        assert_eq!(stdout(&sailbulk(&all, None)), base, "{args:?}");
    }
}

#[test]
fn valid_and_invalid_lines_are_routed_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.json");
    let invalid = dir.path().join("invalid.json");
    let a = fixture("rejected/mixed.json");
    let b = fixture("accepted/no_final_newline.json");
    let out = sailbulk(
        &[
            "validate",
            "--valid-out",
            &valid.display().to_string(),
            "--invalid-out",
            &invalid.display().to_string(),
            &a.display().to_string(),
            &b.display().to_string(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let valid = std::fs::read(&valid).unwrap();
    let invalid = std::fs::read(&invalid).unwrap();
    let mixed = std::fs::read(&a).unwrap();
    let tail = std::fs::read(&b).unwrap();
    // mixed.json's lines split between the two files, in order; no_final_newline.json follows,
    // after the line end its predecessor's last line needed.
    let valid_text = String::from_utf8_lossy(&valid);
    let invalid_text = String::from_utf8_lossy(&invalid);
    let report = sailbulk(
        &[
            "validate",
            "--report",
            "json",
            "--max-errors",
            "0",
            &a.display().to_string(),
        ],
        None,
    );
    let doc: Value = serde_json::from_slice(&report.stdout).unwrap();
    let bad: std::collections::BTreeSet<u64> = doc["files"][0]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(bad.len(), 9);
    assert_eq!(invalid_text.lines().count(), bad.len());
    assert_eq!(
        valid_text.lines().count(),
        26 - bad.len() + tail.split(|&b| b == b'\n').count()
    );
    assert!(valid.ends_with(&tail));
    let mut rebuilt: Vec<&str> = Vec::new();
    let (mut v, mut i) = (valid_text.lines(), invalid_text.lines());
    for n in 1..=26u64 {
        rebuilt.push(if bad.contains(&n) {
            i.next().unwrap()
        } else {
            v.next().unwrap()
        });
    }
    let original: Vec<&str> = std::str::from_utf8(&mixed).unwrap().lines().collect();
    assert_eq!(rebuilt, original);
}

#[test]
fn outputs_are_not_written_when_the_run_fails() {
    let dir = tempfile::tempdir().unwrap();
    let valid = dir.path().join("valid.json");
    std::fs::write(&valid, "old\n").unwrap();
    let out = sailbulk(
        &[
            "validate",
            "--valid-out",
            &valid.display().to_string(),
            &path("accepted/emails.txt"),
            "/nonexistent/file.json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&valid).unwrap(), "old\n");
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 1, "no temporary file is left behind");
}

/// Outputs that would lose lines are refused before anything is read or written: an output that
/// is an input (by any name), both outputs on one file, an output that is a directory.
#[test]
fn outputs_that_would_lose_lines_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let mixed = std::fs::read(fixture("rejected/mixed.json")).unwrap();
    let input = write(dir.path(), "in.json", &mixed);
    let other = write(dir.path(), "other.json", "old\n");
    std::os::unix::fs::symlink("in.json", dir.path().join("link.json")).unwrap();
    std::fs::hard_link(&input, dir.path().join("hard.json")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let alias = format!("{}/sub/../in.json", s(dir.path()));
    let link = s(&dir.path().join("link.json"));
    let hard = s(&dir.path().join("hard.json"));
    let (input, other) = (s(&input), s(&other));
    let subdir = s(&dir.path().join("sub"));
    for (args, message) in [
        (vec!["--valid-out", &input], "--valid-out"),
        (vec!["--invalid-out", &alias], "is the input"),
        (vec!["--valid-out", &link], "is the input"),
        (vec!["--invalid-out", &hard], "is the input"),
        (
            vec!["--valid-out", &other, "--invalid-out", &other],
            "are the same file",
        ),
        (
            vec!["--valid-out", &other, "--invalid-out", &subdir],
            "directory",
        ),
    ] {
        let mut all = vec!["validate"];
        all.extend(&args);
        all.push(&input);
        let out = sailbulk(&all, None);
        assert_exit(&out, 2, message);
        assert!(stdout(&out).is_empty(), "nothing checked: {args:?}");
        assert_eq!(std::fs::read(&input).unwrap(), mixed, "{args:?}");
        assert_eq!(
            std::fs::read_to_string(&other).unwrap(),
            "old\n",
            "{args:?}"
        );
    }
    assert_eq!(
        entries(dir.path()).len(),
        5,
        "no temporary file is left behind"
    );
}

/// Update lines and email lines in one output could be uploaded as neither: not written.
#[test]
fn outputs_are_not_written_with_lines_of_two_formats() {
    let dir = tempfile::tempdir().unwrap();
    let json = write(dir.path(), "a.json", "{\"email\":\"a@example.com\"}\n");
    let emails = write(dir.path(), "b.txt", "b@example.com\n");
    let valid = dir.path().join("valid.out");
    let out = sailbulk(
        &[
            "validate",
            "--valid-out",
            &s(&valid),
            &s(&json),
            &s(&emails),
        ],
        None,
    );
    assert_exit(&out, 2, "holds json lines and");
    assert!(!valid.exists());
    // Forced to one format, the email line is an invalid update line: both are written.
    let invalid = dir.path().join("invalid.out");
    let out = sailbulk(
        &[
            "validate",
            "--format",
            "json",
            "--valid-out",
            &s(&valid),
            "--invalid-out",
            &s(&invalid),
            &s(&json),
            &s(&emails),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&valid).unwrap(),
        "{\"email\":\"a@example.com\"}\n"
    );
    assert_eq!(
        std::fs::read_to_string(&invalid).unwrap(),
        "b@example.com\n"
    );
}

#[test]
fn standard_input_named_twice_is_refused() {
    let out = sailbulk(&["validate", "-", "-"], Some(b"a@example.com\n"));
    assert_exit(&out, 2, "`-` (standard input) is named more than once");
}

/// A byte-order mark that starts a later file would land mid-output, where it is no longer one.
#[test]
fn a_later_files_byte_order_mark_is_not_routed_into_the_middle_of_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let line = "{\"email\":\"a@example.com\"}\n";
    let first = write(dir.path(), "1.json", format!("\u{feff}{line}"));
    let second = write(dir.path(), "2.json", format!("\u{feff}{line}{line}"));
    let valid = dir.path().join("valid.json");
    let out = sailbulk(
        &[
            "validate",
            "--valid-out",
            &s(&valid),
            &s(&first),
            &s(&second),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = std::fs::read_to_string(&valid).unwrap();
    assert_eq!(written, format!("\u{feff}{line}{line}{line}"));
    let again = sailbulk(&["validate", &s(&valid)], None);
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
    // Only line 1's mark, which is tolerated there.
    assert_stdout_has(&again, "valid: 3 lines, 3 records, 0 errors, 1 warning (");
}

/// Ctrl-C (or SIGTERM) in the middle of a run ends it at once, without the temporary files and
/// directories its outputs were being written to.
#[test]
fn an_interrupted_run_leaves_no_temporary_output_behind() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    for (signal, command) in [
        ("-INT", vec!["validate", "--valid-out", "valid.json", "-"]),
        (
            "-TERM",
            vec!["validate", "--invalid-out", "invalid.json", "-"],
        ),
        ("-INT", vec!["split", "-", "-o", "parts"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_sailbulk"))
            .args(&command)
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The run waits for the rest of its input, its temporary output open.
        let mut input = child.stdin.take().unwrap();
        input.write_all(b"{\"email\":\"a@example.com\"}\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while entries(dir.path()).is_empty() {
            assert!(Instant::now() < deadline, "{command:?} wrote nothing");
            std::thread::sleep(Duration::from_millis(10));
        }
        let kill = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        assert_eq!(child.wait().unwrap().code(), Some(130), "{command:?}");
        assert_eq!(entries(dir.path()), set(&[]), "{command:?}");
        drop(input);
    }
}

#[test]
fn a_missing_file_exits_2_with_a_message() {
    let out = sailbulk(&["validate", "/nonexistent/file.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(
        &out,
        "cannot open /nonexistent/file.json: No such file or directory",
    );
}

#[test]
fn the_json_report_names_a_format_even_for_a_file_with_no_line() {
    for (input, format) in [
        (&b""[..], "json"),
        (b"\n  \n", "json"),
        (b"\xEF\xBB\xBF", "json"),
        (b"a@example.com\n", "emails"),
    ] {
        let out = sailbulk(&["validate", "--report", "json", "-"], Some(input));
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(report["files"][0]["format"], format, "{input:?}");
    }
    let out = sailbulk(
        &["validate", "--report", "json", "--format", "emails", "-"],
        Some(b""),
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["files"][0]["format"], "emails");
}

#[test]
fn the_json_report_of_a_file_that_cannot_be_read_gives_the_cause() {
    let out = sailbulk(
        &["validate", "--report", "json", "/nonexistent/file.json"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["failed"][0]["path"], "/nonexistent/file.json");
    assert_eq!(report["failed"][0]["checked_lines"], Value::Null);
    assert_eq!(
        report["failed"][0]["error"],
        "cannot open /nonexistent/file.json: No such file or directory (os error 2)"
    );
    // A directory opens, and fails at its first read: no line was checked, so the JSON entry
    // counts none and the text report has no summary for it.
    let dir = tempfile::tempdir().unwrap();
    let out = sailbulk(&["validate", "--report", "json", &s(dir.path())], None);
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["failed"][0]["checked_lines"], 0);
    assert_eq!(report["failed"][0]["lines"], 0);
    let out = sailbulk(&["validate", &s(dir.path())], None);
    assert_exit(&out, 2, "Is a directory");
    assert_eq!(stdout(&out), "");
}

/// A damaged gzip file is an error, and what its readable lines hold is still reported, in the
/// text report and in the JSON report's `failed` entry.
#[test]
fn a_damaged_gzip_file_reports_the_findings_before_the_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines: Vec<String> = (0..50)
        .map(|i| format!("{{\"email\":\"user{i}@example.com\"}}\n"))
        .collect();
    lines[2] = "{\"email\":\"not-an-email\"}\n".to_string();
    let mut packed = gzip(lines.concat().as_bytes());
    packed.extend_from_slice(b"\x1f\x8b this is not a gzip member");
    let file = s(&write(dir.path(), "damaged.json.gz", packed));

    let out = sailbulk(&["validate", &file], None);
    assert_eq!(out.status.code(), Some(2));
    assert_stdout_has(&out, &format!("{file}:3:10: error[invalid_email]"));
    assert_stderr_has(&out, &format!("cannot read {file} after line 50: "));
    // The counts of the lines before the damage.
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "{file}: FAILED, counted up to the failure: 50 lines, 50 records, 1 error, 0 warnings (json, gzip, "
        )),
        "{text}"
    );
    assert!(
        text.contains("\n  invalid_email  1  first on line 3\n"),
        "{text}"
    );

    // Among other files, its summary comes in its place: the files' order.
    let before = s(&write(
        dir.path(),
        "before.json",
        b"{\"email\":\"a@example.com\"}\n",
    ));
    let after = s(&write(
        dir.path(),
        "after.json",
        b"{\"email\":\"b@example.com\"}\n",
    ));
    let out = sailbulk(&["validate", &before, &file, &after], None);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    let summaries: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(": valid: ") || l.contains(": FAILED"))
        .collect();
    assert_eq!(summaries.len(), 3, "{text}");
    assert!(
        summaries[0].starts_with(&format!("{before}: valid: 1 line,")),
        "{text}"
    );
    assert!(
        summaries[1].starts_with(&format!("{file}: FAILED")),
        "{text}"
    );
    assert!(
        summaries[2].starts_with(&format!("{after}: valid: 1 line,")),
        "{text}"
    );

    let out = sailbulk(&["validate", "--report", "json", &file], None);
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["valid"], false);
    let failed = &report["failed"][0];
    assert_eq!(failed["path"], file.as_str());
    assert!(failed["error"].as_str().unwrap().starts_with("cannot read"));
    assert_eq!(failed["issues"].as_array().unwrap().len(), 1);
    assert_eq!(failed["issues"][0]["line"], 3);
    assert_eq!(failed["issues"][0]["code"], "invalid_email");
    assert_eq!(failed["issues_omitted"], 0);
    assert_eq!(failed["checked_lines"], 50);
    assert_eq!(failed["lines"], 50);
    assert_eq!(failed["errors"], 1);
    assert_eq!(failed["invalid_lines"], 1);
    assert_eq!(failed["by_code"], serde_json::json!({"invalid_email": 1}));
    assert_eq!(failed["valid"], false);
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(sailbulk(&["validate"], None).status.code(), Some(2));
    assert_eq!(
        sailbulk(&["validate", "--job", "export", "x"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(sailbulk(&["frobnicate"], None).status.code(), Some(2));
    let help = sailbulk(&["validate", "--help"], None);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout(&help).contains("update files at most 1000000000 bytes"));
}

#[test]
fn job_import_applies_the_import_limit_and_format_can_be_forced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.txt");
    let line = "abcdefghijklmnopqrstu@example.com\n";
    let body = line.repeat(10_000_000 / line.len() + 1);
    std::fs::write(&file, &body).unwrap();
    let f = file.display().to_string();
    assert_eq!(sailbulk(&["validate", &f], None).status.code(), Some(0));
    let out = sailbulk(&["validate", "--job", "import", &f], None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let expected_line = 10_000_000 / line.len() + 1;
    assert!(text.contains(&format!(":{expected_line}: error[file_too_large]: the file is larger than the import job's limit of 10000000 bytes")), "{text}");
    let forced = sailbulk(
        &["validate", "--format", "json", &path("accepted/emails.txt")],
        None,
    );
    assert_eq!(forced.status.code(), Some(1));
    assert!(stdout(&forced).contains("error[invalid_json]"));
}

#[test]
fn a_file_truncated_while_it_is_read_is_reported_not_a_crash() {
    // A truncation lands while a mapped window is being read (a read past the new end used to
    // kill the process with SIGBUS). Whenever it lands, the run must end with a status, and
    // what it writes must be the file's bytes, never the zeros read past its new end: valid
    // lines copied out by `--valid-out`, or `split`'s parts, are a prefix of the input (all of
    // it when the run ended before the truncation), or not written at all.
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..60_000)
        .map(|i| format!("{{\"email\":\"u{i}@example.com\",\"vars\":{{\"n\":{i}}}}}\n"))
        .collect();
    let mut crashes = Vec::new();
    for command in ["validate", "split"] {
        for (round, delay_ms) in [2u64, 5, 10, 20, 40].into_iter().enumerate() {
            let path = write(dir.path(), &format!("race-{command}-{round}.json"), &text);
            let out_path = dir.path().join(format!("out-{command}-{round}"));
            let args: Vec<String> = if command == "validate" {
                vec![
                    "validate".into(),
                    "--no-progress".into(),
                    "--valid-out".into(),
                    s(&out_path),
                    s(&path),
                ]
            } else {
                vec![
                    "split".into(),
                    s(&path),
                    "-o".into(),
                    s(&out_path),
                    "--max-bytes".into(),
                    "500000".into(),
                ]
            };
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_sailbulk"))
                .args(&args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(1000)
                .unwrap();
            let out = child.wait_with_output().unwrap();
            let code = out.status.code();
            match code {
                Some(0 | 1) => {}
                Some(2) => assert!(
                    stderr(&out).contains("changed size while it was read"),
                    "{}",
                    stderr(&out)
                ),
                _ => crashes.push((command, delay_ms, code, stderr(&out))),
            }
            // What was written: the input's bytes only.
            let written = if out_path.is_dir() {
                let mut names: Vec<_> = std::fs::read_dir(&out_path)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .filter(|p| {
                        p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with("part-")
                    })
                    .collect();
                names.sort();
                Some(
                    names
                        .iter()
                        .flat_map(|p| std::fs::read(p).unwrap())
                        .collect::<Vec<u8>>(),
                )
            } else {
                std::fs::read(&out_path).ok()
            };
            if let Some(written) = written {
                assert!(
                    !written.contains(&0),
                    "{command} at {delay_ms} ms wrote NUL bytes"
                );
                assert!(
                    text.as_bytes().starts_with(&written),
                    "{command} at {delay_ms} ms"
                );
                if code == Some(0) {
                    assert_eq!(written.len(), text.len(), "{command} at {delay_ms} ms");
                }
            }
            if code == Some(2) {
                assert!(
                    !out_path.exists(),
                    "{command} at {delay_ms} ms kept its output"
                );
            }
        }
    }
    assert!(crashes.is_empty(), "{crashes:?}");
    let staging: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(staging.is_empty(), "{staging:?}");
}
