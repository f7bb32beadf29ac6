//! The fixtures in `fixtures/accepted` and `fixtures/rejected`, each run through every input path
//! and compared with its `.expected` file. `SAILBULK_BLESS=1` rewrites the expected files.

use crate::tester::run_all_paths;
use sailbulk_parse::{Finding, Severity, ValidatorBuilder};
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn render(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "{}:{}: {}[{}] {}: {}\n",
                f.line,
                f.column.map_or("-".to_string(), |c| c.to_string()),
                f.severity,
                f.code,
                f.field.as_deref().unwrap_or("-"),
                f.message
            )
        })
        .collect()
}

fn inputs(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir().join(kind))
        .unwrap_or_else(|e| panic!("fixtures/{kind}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "txt")))
        .collect();
    files.sort();
    files
}

fn check(kind: &str) {
    let bless = std::env::var_os("SAILBULK_BLESS").is_some();
    let files = inputs(kind);
    assert!(!files.is_empty(), "no fixtures in {kind}");
    for path in files {
        let input = std::fs::read(&path).unwrap();
        let outcome = run_all_paths(&ValidatorBuilder::new(), &input);
        let errors = outcome
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count();
        match kind {
            "accepted" => assert_eq!(errors, 0, "{} has errors", path.display()),
            _ => assert!(errors > 0, "{} has no errors", path.display()),
        }
        let rendered = render(&outcome.findings);
        let expected_path = path.with_extension(format!(
            "{}.expected",
            path.extension().unwrap().to_str().unwrap()
        ));
        if bless {
            std::fs::write(&expected_path, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; run with SAILBULK_BLESS=1 to create it",
                expected_path.display()
            )
        });
        assert_eq!(rendered, expected, "findings of {}", path.display());
    }
}

#[test]
fn accepted_fixtures_have_no_errors_and_their_expected_warnings() {
    check("accepted");
}

#[test]
fn rejected_fixtures_have_their_expected_findings() {
    check("rejected");
}
