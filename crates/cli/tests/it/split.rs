//! `sailbulk split`.

use crate::{
    assert_exit, assert_stderr_has, assert_stdout_has, entries, gzip, s, sailbulk, set, stderr,
    stdout, write,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

/// Runs `sailbulk split INPUT -o OUTPUT EXTRA...`.
fn split(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let (i, o) = (s(input), s(output));
    let mut args = vec!["split", i.as_str(), "-o", o.as_str()];
    args.extend_from_slice(extra);
    sailbulk(&args, None)
}

/// A valid update line whose length varies with `i`.
fn update_line(i: usize) -> String {
    format!(
        "{{\"email\":\"user{i}@example.com\",\"vars\":{{\"n\":{i},\"pad\":\"{}\"}}}}\n",
        "x".repeat(i * 7 % 60)
    )
}

/// `n` valid update lines.
fn updates(n: usize) -> Vec<u8> {
    (0..n).map(update_line).collect::<String>().into_bytes()
}

/// An email file of `n` addresses.
fn emails(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("person{i}@example.com\n"))
        .collect::<String>()
        .into_bytes()
}

fn manifest(dir: &Path) -> Value {
    let text = std::fs::read(dir.join("manifest.json")).expect("manifest.json");
    serde_json::from_slice(&text).expect("manifest.json is JSON")
}

fn newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// The part files on disk, sorted.
fn part_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = entries(dir)
        .into_iter()
        .filter(|n| n.starts_with("part-"))
        .collect();
    names.sort();
    names
}

/// Checks the manifest's parts against the files: names in order (`part-00001.EXT`, ...), each at
/// most `cap`, sizes and line counts as listed, SHA-256 as 64 lowercase hex digits and different
/// for different parts, and no part file that the manifest does not list. Returns the parts'
/// bytes, in order.
fn check_parts(dir: &Path, m: &Value, ext: &str, cap: u64) -> Vec<Vec<u8>> {
    let parts = m["parts"].as_array().expect("parts is an array");
    assert!(!parts.is_empty());
    let mut hashes = BTreeSet::new();
    let mut out = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let name = format!("part-{:05}.{ext}", i + 1);
        assert_eq!(part["file"], name.as_str());
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        assert!(!bytes.is_empty(), "{name} is empty");
        assert!(
            (bytes.len() as u64) <= cap,
            "{name} is {} bytes, over {cap}",
            bytes.len()
        );
        assert!(bytes.ends_with(b"\n"), "{name} ends mid-line");
        assert_eq!(part["bytes"], bytes.len(), "{name}");
        assert_eq!(part["lines"], newlines(&bytes), "{name}");
        let sha = part["sha256"].as_str().expect("sha256 is a string");
        assert_eq!(sha.len(), 64, "{sha}");
        assert!(
            sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{sha}"
        );
        assert!(hashes.insert(sha.to_string()), "two parts share {sha}");
        out.push(bytes);
    }
    let listed: Vec<String> = (1..=parts.len())
        .map(|i| format!("part-{i:05}.{ext}"))
        .collect();
    assert_eq!(part_files(dir), listed);
    out
}

/// Parts cover input lines 1..=total without gaps (no line was set aside).
fn check_contiguous(m: &Value, total: u64) {
    let mut next = 1u64;
    for part in m["parts"].as_array().unwrap() {
        let lines = part["lines"].as_u64().unwrap();
        assert_eq!(part["first_line"], next, "{part}");
        assert_eq!(part["last_line"], next + lines - 1, "{part}");
        next += lines;
    }
    assert_eq!(next, total + 1);
}

/// Each part but the last is as full as whole lines allow: the next part's first line would not
/// have fitted.
fn check_filled(parts: &[Vec<u8>], cap: usize) {
    for pair in parts.windows(2) {
        let next_first = pair[1].iter().position(|&b| b == b'\n').unwrap() + 1;
        assert!(
            pair[0].len() + next_first > cap,
            "a part of {} bytes could have held a {next_first}-byte line",
            pair[0].len()
        );
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn splits_into_parts_under_the_cap_with_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let data = updates(300);
    let input = write(dir.path(), "in.json", &data);
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--max-bytes", "2000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let m = manifest(&out_dir);
    assert_eq!(m["version"], 1);
    assert_eq!(m["job"], "update");
    assert_eq!(m["max_bytes"], 2000);
    assert_eq!(m["source"]["path"], s(&input));
    assert_eq!(m["source"]["bytes"], data.len());
    assert_eq!(m["source"]["lines"], 300);
    assert_eq!(m["source"]["missing_final_newline"], false);
    assert!(m.get("rejects").is_some_and(Value::is_null), "{m}");
    let parts = check_parts(&out_dir, &m, "json", 2000);
    assert!(parts.len() >= 5, "{} parts", parts.len());
    assert_eq!(parts.concat(), data, "the parts put together are the input");
    check_contiguous(&m, 300);
    check_filled(&parts, 2000);
    let mut expected = set(&["manifest.json"]);
    expected.extend(part_files(&out_dir));
    assert_eq!(entries(&out_dir), expected);
    assert_eq!(entries(dir.path()), set(&["in.json", "parts"]));
    // One line per part on stdout, then the summary.
    let text = stdout(&out);
    for part in m["parts"].as_array().unwrap() {
        let line = format!(
            "{}  {:>12} bytes  {:>10} lines  lines {}-{}",
            s(&out_dir.join(part["file"].as_str().unwrap())),
            part["bytes"].as_u64().unwrap(),
            part["lines"].as_u64().unwrap(),
            part["first_line"].as_u64().unwrap(),
            part["last_line"].as_u64().unwrap()
        );
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    assert_eq!(text.lines().count(), parts.len() + 1, "{text}");
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with(&format!("{}: 300 lines, ", s(&input))),
        "{last}"
    );
    assert!(
        last.ends_with(&format!(
            " into {} parts of at most 2.0 kB in {}",
            parts.len(),
            s(&out_dir.join("manifest.json"))
        )),
        "{last}"
    );
    // Every part is a valid update file on its own.
    for name in part_files(&out_dir) {
        let v = sailbulk(&["validate", &s(&out_dir.join(&name))], None);
        assert_eq!(v.status.code(), Some(0), "{name}: {}", stdout(&v));
    }
}

#[test]
fn sizes_are_read_with_units() {
    let dir = tempfile::tempdir().unwrap();
    let data = updates(300);
    let input = write(dir.path(), "in.json", &data);
    for (i, (size, cap)) in [
        ("2KB", 2000u64),
        ("2000", 2000),
        ("1KiB", 1024),
        ("2kb", 2000),
    ]
    .into_iter()
    .enumerate()
    {
        let out_dir = dir.path().join(format!("parts{i}"));
        let out = split(&input, &out_dir, &["--max-bytes", size]);
        assert_eq!(out.status.code(), Some(0), "{size}: {}", stderr(&out));
        let m = manifest(&out_dir);
        assert_eq!(m["max_bytes"], cap, "{size}");
        let parts = check_parts(&out_dir, &m, "json", cap);
        assert_eq!(parts.concat(), data, "{size}");
        check_filled(&parts, cap as usize);
    }
}

#[test]
fn a_bad_size_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.json", updates(10));
    let out_dir = dir.path().join("parts");
    for bad in ["ten", "0", "2XB", "1.2.3MB"] {
        let out = split(&input, &out_dir, &["--max-bytes", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("is not a size"),
            "{bad}: {}",
            stderr(&out)
        );
        assert!(!out_dir.exists(), "{bad}");
    }
    assert_eq!(entries(dir.path()), set(&["in.json"]));
}

#[test]
fn a_cap_over_the_job_limit_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.json", updates(10));
    let out_dir = dir.path().join("parts");
    for (job, size, limit) in [
        ("update", "2GB", "1000000000"),
        ("update", "1000000001", "1000000000"),
        ("import", "1GB", "10000000"),
        ("import", "10000001", "10000000"),
    ] {
        let out = split(&input, &out_dir, &["--job", job, "--max-bytes", size]);
        let text = format!("over the {job} job's upload limit of {limit} bytes");
        assert_exit(&out, 2, &text);
        assert!(!out_dir.exists(), "{job} {size}");
    }
    assert_eq!(entries(dir.path()), set(&["in.json"]));
    // At the limit, and the sizes the help names, are accepted.
    for (i, (job, size, cap)) in [
        ("import", "10MB", 10_000_000u64),
        ("update", "500MB", 500_000_000),
        ("update", "1GB", 1_000_000_000),
    ]
    .into_iter()
    .enumerate()
    {
        let out_dir = dir.path().join(format!("ok{i}"));
        let out = split(&input, &out_dir, &["--job", job, "--max-bytes", size]);
        assert_eq!(out.status.code(), Some(0), "{size}: {}", stderr(&out));
        assert_eq!(manifest(&out_dir)["max_bytes"], cap, "{size}");
    }
}

#[test]
fn the_parts_are_the_same_on_any_number_of_threads() {
    let dir = tempfile::tempdir().unwrap();
    let data = updates(500);
    let input = write(dir.path(), "in.json", &data);
    let mut seen = Vec::new();
    for threads in ["1", "2", "3"] {
        let out_dir = dir.path().join(format!("parts{threads}"));
        let out = split(
            &input,
            &out_dir,
            &["--max-bytes", "3KB", "--threads", threads],
        );
        assert_eq!(out.status.code(), Some(0), "{threads}: {}", stderr(&out));
        let m = manifest(&out_dir);
        let parts = check_parts(&out_dir, &m, "json", 3000);
        assert_eq!(parts.concat(), data, "{threads}");
        seen.push((parts, m["parts"].clone()));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn the_default_cap_is_the_update_job_limit() {
    let dir = tempfile::tempdir().unwrap();
    let data = updates(20);
    let input = write(dir.path(), "in.json", &data);
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = manifest(&out_dir);
    assert_eq!(m["max_bytes"], 1_000_000_000u64);
    assert_eq!(m["job"], "update");
    let parts = check_parts(&out_dir, &m, "json", 1_000_000_000);
    assert_eq!(parts, vec![data]);
    check_contiguous(&m, 20);
    assert_stdout_has(&out, " into 1 part of at most 1.0 GB in ");
}

#[test]
fn a_missing_final_newline_is_added_to_the_last_part_and_noted() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = updates(50);
    assert_eq!(data.pop(), Some(b'\n'));
    let input = write(dir.path(), "in.json", &data);
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--max-bytes", "1000"]);
    assert_exit(&out, 0, "the input's last line had no line end");
    let m = manifest(&out_dir);
    assert_eq!(m["source"]["missing_final_newline"], true);
    assert_eq!(m["source"]["bytes"], data.len());
    assert_eq!(m["source"]["lines"], 50);
    let parts = check_parts(&out_dir, &m, "json", 1000);
    assert!(parts.len() > 1);
    let mut expected = data.clone();
    expected.push(b'\n');
    assert_eq!(parts.concat(), expected);
    check_contiguous(&m, 50);
}

#[test]
fn a_line_longer_than_the_cap_fails_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!(
        "{{\"email\":\"long@example.com\",\"vars\":{{\"pad\":\"{}\"}}}}\n",
        "y".repeat(2500)
    );
    let data: String = (0..10)
        .map(|i| if i == 6 { long.clone() } else { update_line(i) })
        .collect();
    let input = write(dir.path(), "in.json", &data);
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--max-bytes", "2000"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "line 7 is {} bytes long, more than the 2000 bytes a part may hold",
            long.len()
        )),
        "{err}"
    );
    assert!(!out_dir.exists());
    assert_eq!(entries(dir.path()), set(&["in.json"]), "no staging left");
}

/// 20 lines; line 5 has an invalid email, line 12 an invalid list value.
fn with_invalid_lines() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let (mut all, mut valid, mut invalid) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..20 {
        let line = match i + 1 {
            5 => "{\"email\":\"dave@example\"}\n".to_string(),
            12 => "{\"email\":\"a@example.com\",\"lists\":{\"Main\":2}}\n".to_string(),
            _ => update_line(i),
        };
        all.extend_from_slice(line.as_bytes());
        if i + 1 == 5 || i + 1 == 12 {
            invalid.extend_from_slice(line.as_bytes());
        } else {
            valid.extend_from_slice(line.as_bytes());
        }
    }
    (all, valid, invalid)
}

#[test]
fn invalid_lines_fail_the_split_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _, _) = with_invalid_lines();
    let input = write(dir.path(), "in.json", &data);
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--max-bytes", "400"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!out_dir.exists());
    assert_eq!(entries(dir.path()), set(&["in.json"]), "no staging left");
    let text = stdout(&out);
    let file = s(&input);
    assert_eq!(text.lines().count(), 2, "{text}");
    for line in text.lines() {
        assert!(line.starts_with(&format!("{file}:")), "{line}");
        assert!(line.contains(": error["), "{line}");
    }
    let email = format!("{file}:5:10: error[invalid_email]: `email` \"dave@example\" is not a valid email address: the domain has no dot");
    assert!(text.lines().any(|l| l == email), "{text}");
    let list = format!("{file}:12:42: error[invalid_list_value]: list value is 2");
    assert!(text.lines().any(|l| l.starts_with(&list)), "{text}");
    let err = stderr(&out);
    assert!(
        err.contains("2 line(s) failed validation or hold no address to import (first on line 5); nothing was written"),
        "{err}"
    );
    assert!(err.contains("--skip-invalid"), "{err}");
}

#[test]
fn skip_invalid_sets_invalid_lines_aside_in_rejects_json() {
    let dir = tempfile::tempdir().unwrap();
    let (data, valid, invalid) = with_invalid_lines();
    let input = write(dir.path(), "in.json", &data);
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--max-bytes", "400", "--skip-invalid"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_stderr_has(
        &out,
        &format!(
            "2 invalid lines set aside in {}",
            s(&out_dir.join("rejects.json"))
        ),
    );
    assert_eq!(
        std::fs::read(out_dir.join("rejects.json")).unwrap(),
        invalid
    );
    let m = manifest(&out_dir);
    assert_eq!(m["rejects"]["file"], "rejects.json");
    assert_eq!(m["rejects"]["lines"], 2);
    assert_eq!(m["source"]["lines"], 20);
    assert_eq!(m["source"]["bytes"], data.len());
    let parts = check_parts(&out_dir, &m, "json", 400);
    assert!(parts.len() > 1);
    assert_eq!(parts.concat(), valid);
    let part_lines: u64 = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["lines"].as_u64().unwrap())
        .sum();
    assert_eq!(part_lines + 2, 20);
    let listed = m["parts"].as_array().unwrap();
    assert_eq!(listed[0]["first_line"], 1);
    assert_eq!(listed[listed.len() - 1]["last_line"], 20);
    let mut expected = set(&["manifest.json", "rejects.json"]);
    expected.extend(part_files(&out_dir));
    assert_eq!(entries(&out_dir), expected);
}

#[test]
fn an_existing_directory_is_refused_unless_force() {
    let dir = tempfile::tempdir().unwrap();
    let data = updates(300);
    let input = write(dir.path(), "in.json", &data);
    let out_dir = dir.path().join("parts");
    let first = split(&input, &out_dir, &["--max-bytes", "2000"]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let first_parts = part_files(&out_dir).len();
    std::fs::write(out_dir.join("stale.txt"), "old\n").unwrap();
    let before = entries(&out_dir);
    let manifest_before = std::fs::read(out_dir.join("manifest.json")).unwrap();
    let again = split(&input, &out_dir, &["--max-bytes", "2000"]);
    assert_eq!(again.status.code(), Some(2));
    let err = stderr(&again);
    assert!(err.contains(&s(&out_dir)), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(
        err.contains("exists and is not empty; pass --force to replace it"),
        "{err}"
    );
    assert_eq!(entries(&out_dir), before);
    assert_eq!(
        std::fs::read(out_dir.join("manifest.json")).unwrap(),
        manifest_before
    );
    // With --force the directory is replaced as a whole: the stale file and the parts the new
    // split does not need are gone.
    let forced = split(&input, &out_dir, &["--max-bytes", "5000", "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    let m = manifest(&out_dir);
    assert_eq!(m["max_bytes"], 5000);
    let parts = check_parts(&out_dir, &m, "json", 5000);
    assert!(
        parts.len() < first_parts,
        "{} vs {first_parts}",
        parts.len()
    );
    assert_eq!(parts.concat(), data);
    assert!(!out_dir.join("stale.txt").exists());
    let mut expected = set(&["manifest.json"]);
    expected.extend(part_files(&out_dir));
    assert_eq!(entries(&out_dir), expected);
    assert_eq!(
        entries(dir.path()),
        set(&["in.json", "parts"]),
        "no staging or .old left"
    );
}

#[test]
fn job_import_splits_an_email_file_into_txt_parts() {
    let dir = tempfile::tempdir().unwrap();
    let data = emails(300);
    let input = write(dir.path(), "emails.txt", &data);
    let out_dir = dir.path().join("parts");
    let out = split(
        &input,
        &out_dir,
        &["--job", "import", "--max-bytes", "1000"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = manifest(&out_dir);
    assert_eq!(m["job"], "import");
    assert_eq!(m["max_bytes"], 1000);
    assert_eq!(m["source"]["lines"], 300);
    let parts = check_parts(&out_dir, &m, "txt", 1000);
    assert!(parts.len() > 3, "{}", parts.len());
    assert_eq!(parts.concat(), data);
    check_contiguous(&m, 300);
    check_filled(&parts, 1000);
    // By default the cap is the import job's 10 MB: one part.
    let one = dir.path().join("one");
    let out = split(&input, &one, &["--job", "import"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = manifest(&one);
    assert_eq!(m["max_bytes"], 10_000_000);
    assert_eq!(m["job"], "import");
    assert_eq!(check_parts(&one, &m, "txt", 10_000_000), vec![data]);
}

const ID_LINE: &str = "{\"id\":\"12\",\"key\":\"extid\",\"vars\":{\"n\":3}}\n";

fn update_file_with_an_id_line() -> Vec<u8> {
    [
        "{\"email\":\"ann@example.com\",\"vars\":{\"n\":1}}\n",
        "{\"email\":\"bob@example.com\",\"lists\":{\"Main\":1}}\n",
        ID_LINE,
        "{\"email\":\"Cy@Example.com\"}\n",
    ]
    .concat()
    .into_bytes()
}

#[test]
fn job_import_takes_the_addresses_of_an_update_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.json", update_file_with_an_id_line());
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--job", "import", "--skip-invalid"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = manifest(&out_dir);
    assert_eq!(m["job"], "import");
    assert_eq!(m["max_bytes"], 10_000_000);
    assert_eq!(m["source"]["lines"], 4);
    let parts = check_parts(&out_dir, &m, "txt", 10_000_000);
    assert_eq!(
        parts,
        vec![b"ann@example.com\nbob@example.com\nCy@Example.com\n".to_vec()]
    );
    assert_eq!(m["parts"][0]["lines"], 3);
    assert_eq!(m["parts"][0]["first_line"], 1);
    assert_eq!(m["parts"][0]["last_line"], 4);
    // The line identified by extid has no address: it is set aside.
    assert_eq!(
        std::fs::read(out_dir.join("rejects.json")).unwrap(),
        ID_LINE.as_bytes()
    );
    assert_eq!(m["rejects"]["file"], "rejects.json");
    assert_eq!(m["rejects"]["lines"], 1);
    assert_stderr_has(
        &out,
        &format!(
            "1 invalid lines set aside in {}",
            s(&out_dir.join("rejects.json"))
        ),
    );
    // With a small cap, one address per part, with the input line numbers.
    let small = dir.path().join("small");
    let out = split(
        &input,
        &small,
        &["--job", "import", "--skip-invalid", "--max-bytes", "20"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = manifest(&small);
    let parts = check_parts(&small, &m, "txt", 20);
    assert_eq!(
        parts,
        vec![
            b"ann@example.com\n".to_vec(),
            b"bob@example.com\n".to_vec(),
            b"Cy@Example.com\n".to_vec()
        ]
    );
    let firsts: Vec<u64> = m["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["first_line"].as_u64().unwrap())
        .collect();
    assert_eq!(firsts, [1, 2, 4]);
}

#[test]
fn job_import_without_skip_invalid_fails_on_a_line_without_an_address() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.json", update_file_with_an_id_line());
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--job", "import"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!out_dir.exists());
    assert_eq!(entries(dir.path()), set(&["in.json"]));
    assert!(
        stderr(&out)
            .contains("1 line(s) failed validation or hold no address to import (first on line 3)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn no_validate_splits_even_invalid_lines_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let data: String = (0..30)
        .map(|i| match i + 1 {
            4 => "not json at all\n".to_string(),
            9 => "{\"email\":\"dave@example\"}\n".to_string(),
            _ => update_line(i),
        })
        .collect();
    let input = write(dir.path(), "in.json", &data);
    // Checked, the file is refused.
    let checked = dir.path().join("checked");
    assert_eq!(
        split(&input, &checked, &["--max-bytes", "500"])
            .status
            .code(),
        Some(1)
    );
    assert!(!checked.exists());
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--max-bytes", "500", "--no-validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = manifest(&out_dir);
    assert!(m.get("rejects").is_some_and(Value::is_null), "{m}");
    assert_eq!(m["source"]["lines"], 30);
    assert_eq!(m["source"]["bytes"], data.len());
    let parts = check_parts(&out_dir, &m, "json", 500);
    assert!(parts.len() > 1);
    assert_eq!(parts.concat(), data.as_bytes());
    check_contiguous(&m, 30);
    check_filled(&parts, 500);
}

#[test]
fn gzip_input_splits_into_plain_parts() {
    let dir = tempfile::tempdir().unwrap();
    let data = updates(300);
    let input = write(dir.path(), "in.json.gz", gzip(&data));
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--max-bytes", "2000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = manifest(&out_dir);
    assert_eq!(m["source"]["path"], s(&input));
    assert_eq!(m["source"]["bytes"], data.len());
    assert_eq!(m["source"]["lines"], 300);
    let parts = check_parts(&out_dir, &m, "json", 2000);
    for part in &parts {
        assert!(!part.starts_with(&[0x1f, 0x8b]), "a part is gzip");
    }
    assert_eq!(parts.concat(), data);
    check_contiguous(&m, 300);
    // The same parts as from the plain file.
    let plain = write(dir.path(), "in.json", &data);
    let plain_dir = dir.path().join("plain");
    assert_eq!(
        split(&plain, &plain_dir, &["--max-bytes", "2000"])
            .status
            .code(),
        Some(0)
    );
    let pm = manifest(&plain_dir);
    assert_eq!(check_parts(&plain_dir, &pm, "json", 2000), parts);
    assert_eq!(pm["parts"], m["parts"]);
}

#[test]
fn standard_input_is_split() {
    let dir = tempfile::tempdir().unwrap();
    let data = updates(300);
    let out_dir = dir.path().join("parts");
    let o = s(&out_dir);
    let out = sailbulk(
        &["split", "-", "-o", &o, "--max-bytes", "2000"],
        Some(&data),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m = manifest(&out_dir);
    assert_eq!(m["source"]["path"], "-");
    assert_eq!(m["source"]["bytes"], data.len());
    assert_eq!(m["source"]["lines"], 300);
    let parts = check_parts(&out_dir, &m, "json", 2000);
    assert_eq!(parts.concat(), data);
    check_contiguous(&m, 300);
}

/// Import parts hold email addresses. An update file on standard input with `--job import` must
/// give parts of its addresses (or be refused), never import parts that hold JSON lines.
#[test]
fn job_import_from_standard_input_never_writes_json_into_import_parts() {
    let dir = tempfile::tempdir().unwrap();
    let data = [
        "{\"email\":\"ann@example.com\",\"vars\":{\"n\":1}}\n",
        "{\"email\":\"bob@example.com\"}\n",
    ]
    .concat();
    let out_dir = dir.path().join("parts");
    let o = s(&out_dir);
    let out = sailbulk(
        &["split", "-", "-o", &o, "--job", "import"],
        Some(data.as_bytes()),
    );
    match out.status.code() {
        Some(0) => {
            let m = manifest(&out_dir);
            let parts = check_parts(&out_dir, &m, "txt", 10_000_000);
            assert_eq!(
                parts.concat(),
                b"ann@example.com\nbob@example.com\n",
                "import parts must hold addresses, not JSON"
            );
        }
        code => {
            assert!(matches!(code, Some(1) | Some(2)), "{code:?}");
            assert!(!stderr(&out).is_empty());
            assert!(!out_dir.exists());
        }
    }
}

#[test]
fn a_missing_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("parts");
    let out = split(Path::new("/nonexistent/in.json"), &out_dir, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "cannot open /nonexistent/in.json");
    assert!(!out_dir.exists());
    assert!(entries(dir.path()).is_empty(), "no staging left");
}

#[test]
fn force_refuses_an_output_directory_that_holds_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.json", updates(10));
    let out = split(&input, dir.path(), &["--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_has(&out, "the input is inside the output directory");
    assert!(input.exists());
}

#[test]
fn an_invalid_last_line_without_a_newline_is_not_reported_as_added_to_the_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = updates(3);
    body.extend_from_slice(b"{\"email\":\"nope\"}");
    let input = write(dir.path(), "in.json", &body);
    let out_dir = dir.path().join("parts");
    let out = split(&input, &out_dir, &["--skip-invalid"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(manifest(&out_dir)["source"]["missing_final_newline"], false);
    assert!(!stderr(&out).contains("last part ends it"));
    let rejects = std::fs::read(out_dir.join("rejects.json")).unwrap();
    assert_eq!(rejects, b"{\"email\":\"nope\"}\n");
}
