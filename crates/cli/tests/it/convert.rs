//! `sailbulk convert`.

use crate::{
    assert_exit, assert_stderr_has, assert_stdout_has, entries, gzip, s, sailbulk, set, stderr,
    stdout, write,
};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;

fn read(path: &Path) -> String {
    String::from_utf8(std::fs::read(path).unwrap()).expect("UTF-8 output")
}

/// Runs `sailbulk convert INPUT -o OUTPUT EXTRA...`.
fn convert(input: &Path, output: &Path, extra: &[&str]) -> Output {
    let (i, o) = (s(input), s(output));
    let mut args = vec!["convert", i.as_str(), "-o", o.as_str()];
    args.extend_from_slice(extra);
    sailbulk(&args, None)
}

#[test]
fn no_verify_writes_the_same_records_and_rejects() {
    let csv = "email,name,optout\na@example.com,Ann,all\nnope,Bob,none\nc@example.com,Cy,sometimes\nd@example.com,Di,\n";
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", csv);
    let mut runs = Vec::new();
    for extra in [&[][..], &["--no-verify"]] {
        let output = dir.path().join(format!("out{}.json", extra.len()));
        let rejects = dir.path().join(format!("rejects{}.csv", extra.len()));
        let mut args = vec![
            "--optout-column",
            "optout",
            "--rejects",
            rejects.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = convert(&input, &output, &args);
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), summary(&s(&input), 4, 2, 2), "{extra:?}");
        assert_valid(&output);
        runs.push((read(&output), read(&rejects)));
    }
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn a_cap_over_the_update_job_limit_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "email\na@example.com\n");
    let output = dir.path().join("parts");
    for size in ["5GB", "1000000001"] {
        let out = convert(&input, &output, &["--max-bytes", size]);
        assert_exit(
            &out,
            2,
            "over the update job's upload limit of 1000000000 bytes",
        );
    }
    assert_eq!(entries(dir.path()), set(&["in.csv"]));
    let out = convert(&input, &output, &["--max-bytes", "1GB"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The summary line `convert` prints on stdout.
fn summary(input: &str, rows: u64, records: u64, rejected: u64) -> String {
    format!("{input}: rows in: {rows}, records out: {records}, rejected: {rejected}\n")
}

/// `sailbulk validate PATH` exits 0.
fn assert_valid(path: &Path) {
    let out = sailbulk(&["validate", &s(path)], None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} does not validate:\n{}{}",
        path.display(),
        stdout(&out),
        stderr(&out)
    );
    assert_stdout_has(&out, "valid:");
}

/// No `.sailbulk-*.tmp` file and no `.NAME.sailbulk-*` staging directory is left in `dir`.
fn assert_no_temporaries(dir: &Path) {
    let left: Vec<String> = entries(dir)
        .into_iter()
        .filter(|n| n.contains(".sailbulk-") || n.ends_with(".tmp") || n.ends_with(".old"))
        .collect();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

/// Converting `csv` (as `in.csv`) with `args` exits 2 with `message` on stderr, writing nothing
/// and leaving no temporary file.
fn assert_refused(csv: impl AsRef<[u8]>, args: &[&str], message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", csv);
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, args);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        stderr(&out).contains(message),
        "{message}: {}",
        stderr(&out)
    );
    assert!(!output.exists());
}

/// Converts `csv` (as `in.csv`) into `out.json` with `extra` options and checks the run: exit 0,
/// nothing on stderr, exactly the `expected` lines, the summary, and that the output validates.
fn convert_ok(csv: impl AsRef<[u8]>, extra: &[&str], expected: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", csv);
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, extra);
    assert_eq!(out.status.code(), Some(0), "{extra:?}: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "{extra:?}");
    let want: String = expected.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(read(&output), want, "{extra:?}");
    let n = expected.len() as u64;
    assert_eq!(stdout(&out), summary(&s(&input), n, n, 0), "{extra:?}");
    assert_valid(&output);
    assert_eq!(entries(dir.path()), set(&["in.csv", "out.json"]));
}

/// A small RFC 4180 reader for the rejects file (the csv crate is not a dev-dependency).
fn parse_csv(text: &str, delim: char) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && field.is_empty() && !was_quoted {
            quoted = true;
            was_quoted = true;
        } else if c == delim {
            row.push(std::mem::take(&mut field));
            was_quoted = false;
        } else if c == '\n' {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
            was_quoted = false;
        } else if c == '\r' && chars.peek() == Some(&'\n') {
            // A CRLF record end.
        } else {
            field.push(c);
        }
    }
    if !field.is_empty() || !row.is_empty() || was_quoted {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[test]
fn the_csv_helper_reads_quotes_and_newlines() {
    let rows = parse_csv("a,\"b,\"\"c\"\"\nd\",\n,x\n", ',');
    assert_eq!(
        rows,
        vec![
            vec!["a".to_string(), "b,\"c\"\nd".into(), "".into()],
            vec!["".to_string(), "x".into()],
        ]
    );
}

/// Rows of different lengths: `email,name,pad`.
fn varied_csv(rows: usize) -> String {
    let mut csv = String::from("email,name,pad\n");
    for i in 0..rows {
        csv += &format!("user{i}@example.com,Name {i},{}\n", "x".repeat(i * 13 % 70));
    }
    csv
}

// ---------------------------------------------------------------------------------------------
// Reading the CSV.

#[test]
fn the_email_column_is_found_in_any_case() {
    for header in ["email", "Email", "EMAIL", "eMail"] {
        convert_ok(
            format!("Name,{header},city\nAnn,ann@example.com,Paris\nBob,bob@example.com,Oslo\n"),
            &[],
            &[
                r#"{"email":"ann@example.com","vars":{"Name":"Ann","city":"Paris"}}"#,
                r#"{"email":"bob@example.com","vars":{"Name":"Bob","city":"Oslo"}}"#,
            ],
        );
    }
}

#[test]
fn a_byte_order_mark_in_the_header_is_ignored() {
    // On the email column itself.
    convert_ok(
        "\u{feff}Email,name\na@example.com,Ann\n",
        &[],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann"}}"#],
    );
    // On a var column: the var is `name`, not "\u{feff}name".
    convert_ok(
        "\u{feff}name,email\nAnn,a@example.com\n",
        &[],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann"}}"#],
    );
    // Named explicitly.
    convert_ok(
        "\u{feff}contact,name\na@example.com,Ann\n",
        &["--email-column", "contact"],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann"}}"#],
    );
    // Before a quoted header: the quote still opens a quoted field.
    convert_ok(
        "\u{feff}\"email\",\"name, full\"\na@example.com,Ann\n",
        &["--rename", "name, full=name"],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann"}}"#],
    );
}

#[test]
fn crlf_line_endings_are_read() {
    convert_ok(
        "email,name\r\na@example.com,Ann\r\nb@example.com,\"Two\r\nLines\"\r\nc@example.com,Cy\r\n",
        &[],
        &[
            r#"{"email":"a@example.com","vars":{"name":"Ann"}}"#,
            r#"{"email":"b@example.com","vars":{"name":"Two\r\nLines"}}"#,
            r#"{"email":"c@example.com","vars":{"name":"Cy"}}"#,
        ],
    );
}

/// The rejects file names the line a row is on, for CRLF files too (a record position taken
/// before the skipped line end would put every row after a CRLF a line early).
#[test]
fn crlf_rejects_name_the_line_the_row_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.csv",
        "email,name\r\na@example.com,Ann\r\nbad,Bob\r\nc@example.com,Cy\r\nworse,Di\r\n",
    );
    let output = dir.path().join("out.json");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(&input, &output, &["--rejects", &s(&rejects)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = parse_csv(&read(&rejects), ',');
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[1][..3], ["bad", "Bob", "3"], "{rows:?}");
    assert_eq!(rows[2][..3], ["worse", "Di", "5"], "{rows:?}");
}

#[test]
fn quoted_fields_keep_delimiters_quotes_and_newlines() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "email,name,note\n\
               a@example.com,\"Smith, Ann\",\"She said \"\"hi\"\"\nand left\"\n\
               b@example.com,Bob,\"tab\there\"\n\
               not-an-email,Cy,x\n";
    let input = write(dir.path(), "in.csv", csv);
    let output = dir.path().join("out.json");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(&input, &output, &["--rejects", &s(&rejects)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        read(&output),
        concat!(
            r#"{"email":"a@example.com","vars":{"name":"Smith, Ann","note":"She said \"hi\"\nand left"}}"#,
            "\n",
            r#"{"email":"b@example.com","vars":{"name":"Bob","note":"tab\there"}}"#,
            "\n"
        )
    );
    assert_eq!(stdout(&out), summary(&s(&input), 3, 2, 1));
    // The row after a two-line record starts on line 4, the rejected one on line 5.
    let rows = parse_csv(&read(&rejects), ',');
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][..4], ["not-an-email", "Cy", "x", "5"]);
    assert_valid(&output);
    // Parsed as JSON, the values are the cells as read.
    let first: Value = serde_json::from_str(read(&output).lines().next().unwrap()).unwrap();
    assert_eq!(first["vars"]["note"], "She said \"hi\"\nand left");
    assert_eq!(first["vars"]["name"], "Smith, Ann");
}

#[test]
fn unicode_cells_are_written_as_utf8() {
    convert_ok(
        "email,name,city,mood\nzoe@example.com,Zoë \"Z\",東京,🎉\n",
        &[],
        &[r#"{"email":"zoe@example.com","vars":{"name":"Zoë \"Z\"","city":"東京","mood":"🎉"}}"#],
    );
}

#[test]
fn a_tab_delimiter_reads_tsv() {
    for delim in ["\\t", "tab", "\t"] {
        convert_ok(
            "email\tname\tscore\na@example.com\tSmith, Ann\t007\nb@example.com\t\"Q\tuoted\"\t3\n",
            &["--delimiter", delim],
            &[
                r#"{"email":"a@example.com","vars":{"name":"Smith, Ann","score":"007"}}"#,
                r#"{"email":"b@example.com","vars":{"name":"Q\tuoted","score":3}}"#,
            ],
        );
    }
}

#[test]
fn a_semicolon_delimiter_reads_semicolon_files_and_writes_rejects_with_it() {
    convert_ok(
        "email;name;score\na@example.com;Ann, B;12\n",
        &["--delimiter", ";"],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann, B","score":12}}"#],
    );
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.csv",
        "email;name;score\na@example.com;Ann, B;12\nbad;X;1\n",
    );
    let output = dir.path().join("out.json");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(
        &input,
        &output,
        &["--delimiter", ";", "--rejects", &s(&rejects)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = read(&rejects);
    assert!(text.starts_with("email;name;score;line;reason\n"), "{text}");
    let rows = parse_csv(&text, ';');
    assert_eq!(rows[1][..4], ["bad", "X", "1", "3"]);
    assert!(rows[1][4].starts_with("invalid email \"bad\""), "{rows:?}");
}

#[test]
fn a_delimiter_of_more_than_one_character_exits_2() {
    assert_refused(
        "email\na@example.com\n",
        &["--delimiter", "ab"],
        "--delimiter must be one character",
    );
}

#[test]
fn a_quote_or_a_line_end_as_the_delimiter_exits_2() {
    for delim in ["\"", "\n", "\r"] {
        assert_refused(
            "email\na@example.com\n",
            &["--delimiter", delim],
            "the delimiter cannot be",
        );
    }
}

#[test]
fn a_dash_reads_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.json");
    let o = s(&output);
    let csv: &[u8] = b"email,name\na@example.com,Ann\nb@example.com,Bob\n";
    let out = sailbulk(&["convert", "-", "-o", &o], Some(csv));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary("-", 2, 2, 0));
    assert_eq!(
        read(&output),
        "{\"email\":\"a@example.com\",\"vars\":{\"name\":\"Ann\"}}\n{\"email\":\"b@example.com\",\"vars\":{\"name\":\"Bob\"}}\n"
    );
    // Gzip on standard input too.
    let output2 = dir.path().join("out2.json");
    let o2 = s(&output2);
    let out = sailbulk(&["convert", "-", "-o", &o2], Some(&gzip(csv)));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(&output2).unwrap(),
        std::fs::read(&output).unwrap()
    );
}

#[test]
fn gzip_input_is_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let csv = varied_csv(50);
    let plain = write(dir.path(), "in.csv", &csv);
    let gz = write(dir.path(), "in.csv.gz", gzip(csv.as_bytes()));
    let from_plain = dir.path().join("plain.json");
    let from_gz = dir.path().join("gz.json");
    assert_eq!(convert(&plain, &from_plain, &[]).status.code(), Some(0));
    let out = convert(&gz, &from_gz, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary(&s(&gz), 50, 50, 0));
    let bytes = std::fs::read(&from_gz).unwrap();
    assert_eq!(bytes, std::fs::read(&from_plain).unwrap());
    assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 50);
    assert_valid(&from_gz);
    // In a parts directory, the manifest gives the decompressed size.
    let parts = dir.path().join("parts");
    let out = convert(&gz, &parts, &["--max-bytes", "1000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(parts.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["source"]["bytes"], csv.len());
    assert_eq!(manifest["source"]["lines"], 50);
}

// ---------------------------------------------------------------------------------------------
// The mapping.

#[test]
fn email_column_names_the_identity_column() {
    convert_ok(
        "contact,name\na@example.com,Ann\n",
        &["--email-column", "contact"],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann"}}"#],
    );
    // A header that is not a var name is fine for the identity column.
    convert_ok(
        "Work Address,name\n  a@example.com ,Ann\n",
        &["--email-column", "Work Address"],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann"}}"#],
    );
}

#[test]
fn an_unknown_email_column_exits_2() {
    assert_refused(
        "email,name\na@example.com,Ann\n",
        &["--email-column", "nope"],
        "no column named \"nope\" in the header",
    );
}

#[test]
fn id_column_and_key_identify_rows_by_id() {
    for key in ["extid", "sid", "sms"] {
        let first = format!(r#"{{"id":"42","key":"{key}","vars":{{"name":"Ann"}}}}"#);
        let second = format!(r#"{{"id":"007","key":"{key}","vars":{{"name":"Bob"}}}}"#);
        convert_ok(
            "cid,name\n42,Ann\n007,Bob\n",
            &["--id-column", "cid", "--key", key],
            &[first.as_str(), second.as_str()],
        );
    }
    // Output parsed: "id" and "key", no "email"; the id is a string.
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "cid,name\n42,Ann\n,Nobody\n");
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, &["--id-column", "cid", "--key", "extid"]);
    assert_eq!(out.status.code(), Some(1));
    let line: Value = serde_json::from_str(read(&output).trim_end()).unwrap();
    assert_eq!(line["id"], "42");
    assert_eq!(line["key"], "extid");
    assert!(line.get("email").is_none());
    assert_stderr_has(&out, "line 3: row rejected: missing identity");
}

#[test]
fn id_column_key_and_email_column_must_be_combined_properly() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "email,cid\na@example.com,1\n");
    let output = dir.path().join("out.json");
    for args in [
        &["--id-column", "cid"][..],
        &["--key", "extid"][..],
        &[
            "--email-column",
            "email",
            "--id-column",
            "cid",
            "--key",
            "extid",
        ][..],
        &["--id-column", "cid", "--key", "email"][..],
        &["--id-column", "cid", "--key", "bogus"][..],
    ] {
        let out = convert(&input, &output, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!stderr(&out).is_empty(), "{args:?}");
        assert!(!output.exists(), "{args:?}");
    }
}

#[test]
fn vars_picks_the_columns_that_become_vars() {
    convert_ok(
        "email,name,city,secret\na@example.com,Ann,Paris,hunter2\n",
        &["--vars", "name,city"],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann","city":"Paris"}}"#],
    );
    convert_ok(
        "email,name,city,secret\na@example.com,Ann,Paris,hunter2\n",
        &["--vars", "city"],
        &[r#"{"email":"a@example.com","vars":{"city":"Paris"}}"#],
    );
}

#[test]
fn an_unknown_vars_column_exits_2_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "email,name\na@example.com,Ann\n");
    let output = dir.path().join("out.json");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(
        &input,
        &output,
        &["--vars", "name,nope", "--rejects", &s(&rejects)],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "no column named \"nope\" in the header");
    assert_eq!(stdout(&out), "");
    assert!(!output.exists());
    assert!(!rejects.exists());
    assert_eq!(entries(dir.path()), set(&["in.csv"]));
}

#[test]
fn rename_gives_columns_var_names() {
    convert_ok(
        "email,first-name,2nd\na@example.com,Ann,x\n",
        &[
            "--rename",
            "first-name=first_name",
            "--rename",
            "2nd=second",
        ],
        &[r#"{"email":"a@example.com","vars":{"first_name":"Ann","second":"x"}}"#],
    );
}

#[test]
fn headers_that_are_not_var_names_are_refused_with_a_suggested_rename() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.csv",
        "email,first-name,2nd\na@example.com,Ann,x\n",
    );
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("\"first-name\""), "{err}");
    assert!(err.contains("--rename 'first-name=first_name'"), "{err}");
    assert!(
        err.contains("sailbulk: error: these column headers are not valid var names (letters, digits and `_`, not starting with a digit): \"first-name\" (try --rename 'first-name=first_name'), \"2nd\" (try --rename '2nd=v_2nd'); rename them or leave them out with --vars"),
        "{err}"
    );
    assert!(!output.exists());
    assert_no_temporaries(dir.path());
    // Leaving them out with --vars works.
    convert_ok(
        "email,first-name,city\na@example.com,Ann,Paris\n",
        &["--vars", "city"],
        &[r#"{"email":"a@example.com","vars":{"city":"Paris"}}"#],
    );
}

#[test]
fn bad_renames_exit_2() {
    for (rename, message) in [
        ("first-name", "--rename \"first-name\": write COL=var"),
        ("first-name=", "write COL=var"),
        ("=x", "no column named \"\" in the header"),
        (
            "first-name=first-name",
            "--rename first-name=first-name: \"first-name\" is not a valid var name",
        ),
        ("nope=x", "no column named \"nope\" in the header"),
    ] {
        let csv = "email,first-name\na@example.com,Ann\n";
        assert_refused(csv, &["--rename", rename], message);
    }
}

#[test]
fn columns_with_no_header_take_a_name_or_are_left_out() {
    // A trailing delimiter on the header line: one unnamed column, named with `--rename =var`.
    let csv = "email,name,\na@example.com,Ann,vip\n";
    assert_refused(
        csv,
        &[],
        "\"\" (a column with no header; try --rename '=column_3')",
    );
    convert_ok(
        csv,
        &["--rename", "=note"],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann","note":"vip"}}"#],
    );
    // Several: left out by naming the columns to keep.
    let csv = "email,name,,\na@example.com,Ann,,\n";
    assert_refused(csv, &[], "2 columns with no header");
    convert_ok(
        csv,
        &["--vars", "name"],
        &[r#"{"email":"a@example.com","vars":{"name":"Ann"}}"#],
    );
}

#[test]
fn nest_builds_nested_vars() {
    convert_ok(
        "email,name,address__city,address__zip\na@example.com,Ann,Paris,02139\nb@example.com,Bob,,\n",
        &["--nest", "__"],
        &[
            r#"{"email":"a@example.com","vars":{"name":"Ann","address":{"city":"Paris","zip":"02139"}}}"#,
            r#"{"email":"b@example.com","vars":{"name":"Bob"}}"#,
        ],
    );
    // Without --nest the separator is part of the name.
    convert_ok(
        "email,name,address__city,address__zip\na@example.com,Ann,Paris,02139\n",
        &[],
        &[
            r#"{"email":"a@example.com","vars":{"name":"Ann","address__city":"Paris","address__zip":"02139"}}"#,
        ],
    );
}

#[test]
fn nested_vars_that_clash_exit_2() {
    assert_refused(
        "email,a,a__b\nx@example.com,1,2\n",
        &["--nest", "__"],
        "columns \"a\" and \"a__b\" map to the same var",
    );
}

#[test]
fn list_adds_every_record_to_the_lists() {
    convert_ok(
        "email,name\na@example.com,Ann\nb@example.com,\n",
        &["--list", "Main", "--list", "Weekly News"],
        &[
            r#"{"email":"a@example.com","vars":{"name":"Ann"},"lists":{"Main":1,"Weekly News":1}}"#,
            r#"{"email":"b@example.com","lists":{"Main":1,"Weekly News":1}}"#,
        ],
    );
}

#[test]
fn a_bad_list_name_exits_2() {
    for (list, message) in [
        (
            "a$b",
            "--list \"a$b\": a list name cannot contain a $ character",
        ),
        ("!!", "--list \"!!\": a list name needs a letter or digit"),
    ] {
        assert_refused("email\na@example.com\n", &["--list", list], message);
    }
}

#[test]
fn lists_column_items_subscribe_and_unsubscribe() {
    convert_ok(
        "email,groups\na@example.com,a; b:0; c:1\nb@example.com,\n",
        &["--lists-column", "groups"],
        &[
            r#"{"email":"a@example.com","lists":{"a":1,"b":0,"c":1}}"#,
            r#"{"email":"b@example.com"}"#,
        ],
    );
    // Items override --list.
    convert_ok(
        "email,groups\nc@example.com,Main:0; Weekly\nd@example.com,\n",
        &["--lists-column", "groups", "--list", "Main"],
        &[
            r#"{"email":"c@example.com","lists":{"Main":0,"Weekly":1}}"#,
            r#"{"email":"d@example.com","lists":{"Main":1}}"#,
        ],
    );
}

#[test]
fn optout_column_sets_optout() {
    convert_ok(
        "email,name,optout\na@example.com,Ann,all\nb@example.com,Bob,blast\nc@example.com,Cy,basic\nd@example.com,Di,none\ne@example.com,Ed,\n",
        &["--optout-column", "optout"],
        &[
            r#"{"email":"a@example.com","vars":{"name":"Ann"},"optout":"all"}"#,
            r#"{"email":"b@example.com","vars":{"name":"Bob"},"optout":"blast"}"#,
            r#"{"email":"c@example.com","vars":{"name":"Cy"},"optout":"basic"}"#,
            r#"{"email":"d@example.com","vars":{"name":"Di"},"optout":"none"}"#,
            r#"{"email":"e@example.com","vars":{"name":"Ed"}}"#,
        ],
    );
}

#[test]
fn signup_date_column_sets_signup_date() {
    convert_ok(
        "email,joined\na@example.com,2013-01-18\nb@example.com,\"Jan 18, 2013\"\nc@example.com,18 Jan 2013\nd@example.com,\n",
        &["--signup-date-column", "joined"],
        &[
            r#"{"email":"a@example.com","signup_date":"2013-01-18"}"#,
            r#"{"email":"b@example.com","signup_date":"Jan 18, 2013"}"#,
            r#"{"email":"c@example.com","signup_date":"18 Jan 2013"}"#,
            r#"{"email":"d@example.com"}"#,
        ],
    );
}

#[test]
fn fields_come_in_order_identity_vars_lists_optout_signup_date() {
    convert_ok(
        "joined,optout,groups,city,EMAIL,name\n2013-01-18,basic,Weekly,Paris,a@example.com,Ann\n",
        &[
            "--lists-column",
            "groups",
            "--optout-column",
            "optout",
            "--signup-date-column",
            "joined",
            "--list",
            "Main",
        ],
        &[
            r#"{"email":"a@example.com","vars":{"city":"Paris","name":"Ann"},"lists":{"Main":1,"Weekly":1},"optout":"basic","signup_date":"2013-01-18"}"#,
        ],
    );
}

const TYPES_CSV: &str = "email,zip,count,ratio,flag,off,phone,neg,plus,exp,upper,big,us,intl,nine,negzero\n\
                         a@example.com,02139,12,12.5,true,false,5551234567890123,-3,+1,1e5,TRUE,123456789012345,4155551234,14155551234,123456789,-0\n";

#[test]
fn types_are_inferred_conservatively_by_default() {
    convert_ok(
        TYPES_CSV,
        &[],
        &[
            r#"{"email":"a@example.com","vars":{"zip":"02139","count":12,"ratio":12.5,"flag":true,"off":false,"phone":"5551234567890123","neg":-3,"plus":"+1","exp":"1e5","upper":"TRUE","big":"123456789012345","us":"4155551234","intl":"14155551234","nine":123456789,"negzero":"-0"}}"#,
        ],
    );
    convert_ok(
        TYPES_CSV,
        &["--types", "infer"],
        &[
            r#"{"email":"a@example.com","vars":{"zip":"02139","count":12,"ratio":12.5,"flag":true,"off":false,"phone":"5551234567890123","neg":-3,"plus":"+1","exp":"1e5","upper":"TRUE","big":"123456789012345","us":"4155551234","intl":"14155551234","nine":123456789,"negzero":"-0"}}"#,
        ],
    );
}

#[test]
fn types_string_keeps_every_cell_a_string() {
    convert_ok(
        TYPES_CSV,
        &["--types", "string"],
        &[
            r#"{"email":"a@example.com","vars":{"zip":"02139","count":"12","ratio":"12.5","flag":"true","off":"false","phone":"5551234567890123","neg":"-3","plus":"+1","exp":"1e5","upper":"TRUE","big":"123456789012345","us":"4155551234","intl":"14155551234","nine":"123456789","negzero":"-0"}}"#,
        ],
    );
}

#[test]
fn empty_cells_are_left_out_or_null() {
    let csv = "email,a,b\nx@example.com,,1\ny@example.com,,\n";
    convert_ok(
        csv,
        &[],
        &[
            r#"{"email":"x@example.com","vars":{"b":1}}"#,
            r#"{"email":"y@example.com"}"#,
        ],
    );
    convert_ok(
        csv,
        &["--empty", "omit"],
        &[
            r#"{"email":"x@example.com","vars":{"b":1}}"#,
            r#"{"email":"y@example.com"}"#,
        ],
    );
    convert_ok(
        csv,
        &["--empty", "null"],
        &[
            r#"{"email":"x@example.com","vars":{"a":null,"b":1}}"#,
            r#"{"email":"y@example.com","vars":{"a":null,"b":null}}"#,
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Outputs.

#[test]
fn a_file_output_is_written_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "email,name\na@example.com,Ann\n");
    let output = write(dir.path(), "out.json", "old\n");
    let out = convert(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        read(&output),
        "{\"email\":\"a@example.com\",\"vars\":{\"name\":\"Ann\"}}\n"
    );
    assert_eq!(entries(dir.path()), set(&["in.csv", "out.json"]));
    // A run that cannot work leaves the previous file as it was, and no temporary file.
    std::fs::write(&output, "old\n").unwrap();
    let out = convert(&input, &output, &["--vars", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(read(&output), "old\n");
    assert_eq!(entries(dir.path()), set(&["in.csv", "out.json"]));
    assert_no_temporaries(dir.path());
}

#[test]
fn a_header_only_csv_gives_an_empty_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "email,name\n");
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary(&s(&input), 0, 0, 0));
    assert_eq!(std::fs::read(&output).unwrap(), b"");
}

#[test]
fn max_bytes_writes_parts_and_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let csv = varied_csv(200);
    let input = write(dir.path(), "in.csv", &csv);
    let parts = dir.path().join("parts");
    let single = dir.path().join("single.json");
    let out = convert(&input, &parts, &["--max-bytes", "1000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary(&s(&input), 200, 200, 0));
    assert_eq!(convert(&input, &single, &[]).status.code(), Some(0));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(parts.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["version"], 1);
    assert_eq!(manifest["job"], "update");
    assert_eq!(manifest["max_bytes"], 1000);
    assert_eq!(manifest["source"]["path"], s(&input));
    assert_eq!(manifest["source"]["bytes"], csv.len());
    assert_eq!(manifest["source"]["lines"], 200);
    assert_eq!(manifest["source"]["missing_final_newline"], false);
    assert!(manifest.get("rejects").is_some_and(Value::is_null));
    let listed = manifest["parts"].as_array().unwrap();
    assert!(listed.len() > 5, "{}", listed.len());
    let mut names = set(&["manifest.json"]);
    let mut concat = Vec::new();
    let mut hashes = BTreeSet::new();
    let mut next_line = 2u64;
    let bodies: Vec<Vec<u8>> = listed
        .iter()
        .map(|p| std::fs::read(parts.join(p["file"].as_str().unwrap())).unwrap())
        .collect();
    for (i, (part, bytes)) in listed.iter().zip(&bodies).enumerate() {
        let file = part["file"].as_str().unwrap();
        assert_eq!(file, format!("part-{:05}.json", i + 1));
        names.insert(file.to_string());
        assert!(bytes.len() <= 1000, "{file}: {} bytes", bytes.len());
        assert_eq!(part["bytes"], bytes.len());
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        assert!(bytes.ends_with(b"\n"));
        assert_eq!(part["lines"], lines);
        // CSV line numbers: the header is line 1.
        assert_eq!(part["first_line"], next_line, "{file}");
        assert_eq!(part["last_line"], next_line + lines - 1, "{file}");
        next_line += lines;
        let sha = part["sha256"].as_str().unwrap();
        assert_eq!(sha.len(), 64, "{sha}");
        assert!(
            sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{sha}"
        );
        assert!(hashes.insert(sha.to_string()), "two parts with one hash");
        // Parts are filled: the next part's first line would not have fit.
        if let Some(next) = bodies.get(i + 1) {
            let first = next.iter().position(|&b| b == b'\n').unwrap() + 1;
            assert!(
                bytes.len() + first > 1000,
                "{file} could have held another line"
            );
        }
        concat.extend_from_slice(bytes);
        assert_valid(&parts.join(file));
    }
    assert_eq!(next_line, 202);
    assert_eq!(concat, std::fs::read(&single).unwrap());
    assert_eq!(entries(&parts), names);
    assert_eq!(
        entries(dir.path()),
        set(&["in.csv", "parts", "single.json"])
    );
}

#[test]
fn an_existing_empty_directory_gets_parts_at_the_update_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", varied_csv(20));
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    let single = dir.path().join("single.json");
    let out = convert(&input, &parts, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(convert(&input, &single, &[]).status.code(), Some(0));
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(parts.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["max_bytes"], 1_000_000_000u64);
    assert_eq!(manifest["parts"].as_array().unwrap().len(), 1);
    assert_eq!(
        std::fs::read(parts.join("part-00001.json")).unwrap(),
        std::fs::read(&single).unwrap()
    );
    assert_eq!(entries(&parts), set(&["manifest.json", "part-00001.json"]));
}

#[test]
fn a_non_empty_output_directory_is_refused_unless_force() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", varied_csv(40));
    let parts = dir.path().join("parts");
    std::fs::create_dir(&parts).unwrap();
    std::fs::write(parts.join("old.txt"), "keep me\n").unwrap();
    let out = convert(&input, &parts, &["--max-bytes", "1000"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains(&s(&parts)), "{err}");
    assert!(
        err.contains("exists and is not empty; pass --force to replace it"),
        "{err}"
    );
    assert_eq!(entries(&parts), set(&["old.txt"]));
    assert_no_temporaries(dir.path());
    // Same without --max-bytes (an existing directory means parts).
    let out = convert(&input, &parts, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(entries(&parts), set(&["old.txt"]));
    let out = convert(&input, &parts, &["--max-bytes", "1000", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let now = entries(&parts);
    assert!(!now.contains("old.txt"), "{now:?}");
    assert!(now.contains("manifest.json") && now.contains("part-00001.json"));
    assert!(now.contains("part-00002.json"), "{now:?}");
    assert_no_temporaries(dir.path());
    assert_eq!(entries(dir.path()), set(&["in.csv", "parts"]));
}

#[test]
fn a_record_longer_than_max_bytes_is_rejected_and_the_rest_written() {
    let dir = tempfile::tempdir().unwrap();
    let csv = format!(
        "email,pad\na@example.com,x\nb@example.com,y\nc@example.com,{}\nd@example.com,w\n",
        "z".repeat(300)
    );
    let input = write(dir.path(), "in.csv", &csv);
    // Without --rejects, the reason is shown.
    let parts = dir.path().join("parts");
    let out = convert(&input, &parts, &["--max-bytes", "200"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).lines().last().unwrap(),
        summary(&s(&input), 4, 3, 1).trim_end()
    );
    assert_stderr_has(
        &out,
        "line 4: row rejected: the record is 344 bytes long, over the part cap of 200 bytes",
    );
    let written: String = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("manifest.json"))
        .map(|p| read(&p))
        .collect();
    assert_eq!(written.lines().count(), 3, "{written}");
    assert!(!written.contains("c@example.com"));
    // With --rejects, the row is there with its line and reason.
    let parts = dir.path().join("parts2");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(
        &input,
        &parts,
        &["--max-bytes", "200", "--rejects", &s(&rejects)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let rows = parse_csv(&read(&rejects), ',');
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][0], "c@example.com");
    assert_eq!(rows[1][2], "4");
    assert!(
        rows[1][3].contains("over the part cap of 200 bytes"),
        "{rows:?}"
    );
    assert_no_temporaries(dir.path());
}

#[test]
fn a_bad_max_bytes_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "email\na@example.com\n");
    let parts = dir.path().join("parts");
    for bad in ["ten", "0", "2XB"] {
        let out = convert(&input, &parts, &["--max-bytes", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&out).contains("is not a size"),
            "{bad}: {}",
            stderr(&out)
        );
        assert!(!parts.exists());
    }
}

// ---------------------------------------------------------------------------------------------
// Rejected rows.

#[test]
fn rejects_holds_each_rejected_row_with_its_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "email,name,groups,optout,joined\n\
               a@example.com,Ann,Main,none,2013-01-18\n\
               not-an-email,Bob,,,\n\
               ,Cy,,,\n\
               d@example.com,Di,a$b,,\n\
               e@example.com,Ed,!!,,\n\
               f@example.com,Flo,,sometimes,\n\
               g@example.com,Gus,,,2013-02-30\n\
               h@example.com,Hal,,,\n";
    let input = write(dir.path(), "in.csv", csv);
    let output = dir.path().join("out.json");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(
        &input,
        &output,
        &[
            "--lists-column",
            "groups",
            "--optout-column",
            "optout",
            "--signup-date-column",
            "joined",
            "--rejects",
            &s(&rejects),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary(&s(&input), 8, 2, 6));
    // With --rejects, rows are not listed on stderr.
    assert!(!stderr(&out).contains("row rejected"), "{}", stderr(&out));
    assert_eq!(
        read(&output),
        concat!(
            r#"{"email":"a@example.com","vars":{"name":"Ann"},"lists":{"Main":1},"optout":"none","signup_date":"2013-01-18"}"#,
            "\n",
            r#"{"email":"h@example.com","vars":{"name":"Hal"}}"#,
            "\n"
        )
    );
    assert_valid(&output);
    let rows = parse_csv(&read(&rejects), ',');
    assert_eq!(
        rows[0],
        ["email", "name", "groups", "optout", "joined", "line", "reason"]
    );
    assert_eq!(rows.len(), 7, "{rows:?}");
    let expect: [([&str; 6], &str); 6] = [
        (
            ["not-an-email", "Bob", "", "", "", "3"],
            "invalid email \"not-an-email\": ",
        ),
        (
            ["", "Cy", "", "", "", "4"],
            "missing identity: the identity column is empty",
        ),
        (
            ["d@example.com", "Di", "a$b", "", "", "5"],
            "list name \"a$b\" contains a $ character",
        ),
        (
            ["e@example.com", "Ed", "!!", "", "", "6"],
            "list name \"!!\" holds no letter or digit",
        ),
        (
            ["f@example.com", "Flo", "", "sometimes", "", "7"],
            "invalid optout \"sometimes\": use one of all, blast, basic, none",
        ),
        (
            ["g@example.com", "Gus", "", "", "2013-02-30", "8"],
            "invalid signup_date \"2013-02-30\": use ",
        ),
    ];
    for (row, (cells, reason)) in rows[1..].iter().zip(expect) {
        assert_eq!(row.len(), 7, "{row:?}");
        assert_eq!(row[..6], cells, "{row:?}");
        assert!(
            row[6].starts_with(reason),
            "{row:?} should start with {reason:?}"
        );
    }
    assert_eq!(
        entries(dir.path()),
        set(&["in.csv", "out.json", "rejects.csv"])
    );
}

#[test]
fn rejects_with_no_rejected_rows_holds_the_header_and_exit_is_0() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "email,name\na@example.com,Ann\n");
    let output = dir.path().join("out.json");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(&input, &output, &["--rejects", &s(&rejects)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary(&s(&input), 1, 1, 0));
    assert_eq!(read(&rejects), "email,name,line,reason\n");
}

/// Ragged rows (too few or too many fields) are rejected rows like any other: they go to the
/// rejects file with their fields as read. (The rejects CSV writer must accept records whose
/// length differs from the header's.)
#[test]
fn ragged_rows_go_to_the_rejects_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.csv",
        "email,name,city\na@example.com,Ann,Paris\nb@example.com,Bob\nc@example.com,Cy,Oslo,extra\nd@example.com,Di,Rome\n",
    );
    let output = dir.path().join("out.json");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(&input, &output, &["--rejects", &s(&rejects)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary(&s(&input), 4, 2, 2));
    assert_eq!(read(&output).lines().count(), 2);
    let rows = parse_csv(&read(&rejects), ',');
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        rows[1],
        [
            "b@example.com",
            "Bob",
            "",
            "3",
            "ragged row: 2 fields where the header has 3"
        ]
    );
    assert_eq!(
        rows[2],
        [
            "c@example.com",
            "Cy",
            "Oslo",
            "4",
            "ragged row: 4 fields where the header has 3",
            "extra"
        ]
    );
}

#[test]
fn ragged_rows_are_reported_on_stderr_without_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.csv",
        "email,name,city\na@example.com,Ann,Paris\nb@example.com,Bob\nc@example.com,Cy,Oslo,extra\nd@example.com,Di,Rome\n",
    );
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary(&s(&input), 4, 2, 2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "sailbulk: line 3: row rejected: ragged row: 2 fields where the header has 3\n"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "sailbulk: line 4: row rejected: ragged row: 4 fields where the header has 3\n"
        ),
        "{err}"
    );
    assert_eq!(
        read(&output),
        concat!(
            r#"{"email":"a@example.com","vars":{"name":"Ann","city":"Paris"}}"#,
            "\n",
            r#"{"email":"d@example.com","vars":{"name":"Di","city":"Rome"}}"#,
            "\n"
        )
    );
}

#[test]
fn without_rejects_the_first_ten_rejections_are_shown() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("email,n\ngood@example.com,1\n");
    for i in 0..13 {
        csv += &format!("bad{i},{i}\n");
    }
    let input = write(dir.path(), "in.csv", csv);
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), summary(&s(&input), 14, 1, 13));
    let err = stderr(&out);
    let shown: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(": row rejected: "))
        .collect();
    assert_eq!(shown.len(), 10, "{err}");
    assert!(
        shown[0].starts_with("sailbulk: line 3: row rejected: invalid email \"bad0\": "),
        "{err}"
    );
    assert!(
        shown[9].starts_with("sailbulk: line 12: row rejected: invalid email \"bad9\": "),
        "{err}"
    );
    assert!(
        err.contains("sailbulk: 3 more rows rejected (--rejects FILE keeps them all)"),
        "{err}"
    );
}

#[test]
fn a_cell_that_is_not_utf8_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(
        dir.path(),
        "in.csv",
        b"email,name\na@example.com,A\xffB\nb@example.com,Bob\n",
    );
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out)
            .contains("sailbulk: line 2: row rejected: column 2 is not valid UTF-8 (byte 1)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        read(&output),
        "{\"email\":\"b@example.com\",\"vars\":{\"name\":\"Bob\"}}\n"
    );
    let rejects = dir.path().join("rejects.csv");
    let out = convert(&input, &output, &["--rejects", &s(&rejects)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read(&rejects).unwrap(),
        b"email,name,line,reason\na@example.com,A\xffB,2,column 2 is not valid UTF-8 (byte 1)\n"
    );
}

#[test]
fn rows_in_equal_records_out_plus_rejected_in_input_order() {
    // More rows than one batch of the reader thread, so order across batches is checked.
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("email,n\n");
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for i in 0..5000u64 {
        if i % 7 == 3 {
            csv += &format!("bad{i},{i}\n");
            bad.push(i);
        } else {
            csv += &format!("u{i}@example.com,{i}\n");
            good.push(i);
        }
    }
    let input = write(dir.path(), "in.csv", csv);
    let output = dir.path().join("out.json");
    let rejects = dir.path().join("rejects.csv");
    let out = convert(&input, &output, &["--rejects", &s(&rejects)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        summary(&s(&input), 5000, good.len() as u64, bad.len() as u64)
    );
    let want: String = good
        .iter()
        .map(|i| format!("{{\"email\":\"u{i}@example.com\",\"vars\":{{\"n\":{i}}}}}\n"))
        .collect();
    assert_eq!(read(&output), want);
    let rows = parse_csv(&read(&rejects), ',');
    assert_eq!(rows.len(), bad.len() + 1);
    for (row, i) in rows[1..].iter().zip(&bad) {
        assert_eq!(row[0], format!("bad{i}"));
        assert_eq!(row[1], i.to_string());
        assert_eq!(row[2], (i + 2).to_string());
        assert!(
            row[3].starts_with(&format!("invalid email \"bad{i}\"")),
            "{row:?}"
        );
    }
    assert_valid(&output);
}

// ---------------------------------------------------------------------------------------------
// When the command cannot run.

#[test]
fn a_missing_input_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.json");
    let out = convert(Path::new("/nonexistent/in.csv"), &output, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_stderr_has(&out, "cannot open /nonexistent/in.csv");
    assert_eq!(stdout(&out), "");
    assert!(!output.exists());
    assert!(entries(dir.path()).is_empty());
}

#[test]
fn a_header_without_an_email_column_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in.csv", "name,city\nAnn,Paris\n");
    let output = dir.path().join("out.json");
    let out = convert(&input, &output, &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("no column named `email` (any case)"), "{err}");
    assert!(err.contains("--email-column"), "{err}");
    assert!(!output.exists());
    assert_no_temporaries(dir.path());
}

#[test]
fn bad_headers_exit_2() {
    for (csv, message) in [
        (
            &b"email,name,name\na@example.com,A,B\n"[..],
            "the header holds the column \"name\" twice",
        ),
        (&b""[..], "the header is empty"),
        (
            &b"\xffemail,name\na@example.com,A\n"[..],
            "the header is not valid UTF-8",
        ),
    ] {
        assert_refused(csv, &[], message);
    }
}

#[test]
fn everything_at_once_passes_validate() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "\u{feff}EMAIL,first-name,address__city,address__zip,groups,optout,joined,score,vip,note\r\n\
               a@example.com,Zoë,Paris,02139,Weekly; Daily:0,basic,2013-01-18,12.5,true,\"multi\r\nline, \"\"quoted\"\"\"\r\n\
               b@example.com,Bob,,,,,,,,\r\n\
               c@example.com,,Oslo,0150,Main:0,none,\"Jan 18, 2013\",-3,false,東京\r\n";
    let input = write(dir.path(), "in.csv", csv);
    let output = dir.path().join("out.json");
    let out = convert(
        &input,
        &output,
        &[
            "--rename",
            "first-name=first_name",
            "--nest",
            "__",
            "--list",
            "Main",
            "--lists-column",
            "groups",
            "--optout-column",
            "optout",
            "--signup-date-column",
            "joined",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), summary(&s(&input), 3, 3, 0));
    assert_valid(&output);
    let lines: Vec<Value> = read(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["vars"]["first_name"], "Zoë");
    assert_eq!(lines[0]["vars"]["address"]["zip"], "02139");
    assert_eq!(lines[0]["vars"]["note"], "multi\r\nline, \"quoted\"");
    assert_eq!(lines[0]["lists"]["Daily"], 0);
    assert_eq!(lines[1]["lists"]["Main"], 1);
    assert_eq!(lines[2]["lists"]["Main"], 0);
    assert_eq!(lines[2]["vars"]["score"], -3);
    assert_eq!(lines[2]["signup_date"], "Jan 18, 2013");
}
