//! JSONTestSuite's parsing cases (`fixtures/jsontestsuite`): the validator never panics on any of
//! them, every single-line `n_` case is an error, and its JSON verdict is serde_json's.

use sailbulk_parse::{Code, Severity, Validator, ValidatorBuilder};
use std::path::Path;

/// Codes that mean "this line is not acceptable JSON text".
const JSON_LEVEL: [Code; 5] = [
    Code::InvalidJson,
    Code::InvalidUtf8,
    Code::NulByte,
    Code::BareCr,
    Code::MultipleValues,
];

fn cases() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/jsontestsuite");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(out.len() > 300, "the suite is there");
    out
}

fn json_validator() -> Validator {
    let mut b = ValidatorBuilder::new();
    b.format(Some(sailbulk_parse::Format::Json));
    b.build()
}

#[test]
fn no_case_crashes_any_path() {
    let v = json_validator();
    for (name, bytes) in cases() {
        let report = v.report_slice(&bytes, 0);
        assert!(report.summary.lines >= 1 || bytes.is_empty(), "{name}");
        let mut sink = sailbulk_parse::Collect::new(0);
        v.validate_reader(std::io::Cursor::new(bytes.clone()), &mut sink)
            .unwrap();
    }
}

#[test]
fn single_line_cases_get_serde_json_s_verdict() {
    let v = json_validator();
    let strict = {
        let mut b = ValidatorBuilder::new();
        b.format(Some(sailbulk_parse::Format::Json)).strict(true);
        b.build()
    };
    let mut compared = 0;
    for (name, bytes) in cases() {
        let content = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
        if content.contains(&b'\n') {
            continue;
        }
        let findings = v.check_line(content, 2);
        let ours_ok = !findings
            .iter()
            .any(|f| f.severity == Severity::Error && JSON_LEVEL.contains(&f.code));
        let serde_ok = serde_json::from_slice::<serde_json::Value>(content).is_ok();
        // A whitespace-only line is a blank line of a line file: a warning, an error under
        // `strict`. Every other n_ case is an error as it stands.
        let blank = content.iter().all(u8::is_ascii_whitespace);
        if name.starts_with("n_") {
            let findings = if blank {
                strict.check_line(content, 2)
            } else {
                findings.clone()
            };
            assert!(
                findings.iter().any(|f| f.severity == Severity::Error),
                "{name}: an n_ case must be an error"
            );
        }
        // Raw carriage returns and NUL bytes are JSON whitespace or invalid, but in a line file
        // they are errors of their own, by design.
        if blank {
            continue;
        }
        if content.contains(&b'\r') || content.contains(&0) {
            assert!(!ours_ok, "{name}");
            continue;
        }
        assert_eq!(
            ours_ok, serde_ok,
            "{name}: ours={ours_ok} serde_json={serde_ok}: {findings:?}"
        );
        compared += 1;
    }
    assert!(compared > 250, "compared {compared}");
}
