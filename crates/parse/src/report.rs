//! Reports: the findings a run kept and its complete counts, as values and as JSON.

use crate::check::Format;
use crate::finding::Finding;
use crate::validator::{Sink, Summary};
use serde_json::{json, Map, Value};
use std::ops::ControlFlow;

/// The report on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The path as given (`-` for standard input).
    pub path: String,
    /// Complete counts.
    pub summary: Summary,
    /// The findings kept, in line order (at most the limit the run was given).
    pub findings: Vec<Finding>,
    /// How many findings were not kept because of the limit.
    pub omitted: u64,
}

impl FileReport {
    /// Whether the file is valid (warnings allowed).
    pub fn is_valid(&self) -> bool {
        self.summary.is_valid()
    }

    /// The report as JSON in the documented shape (`format` is `json` when the input had no
    /// non-blank line to detect it from).
    pub fn to_json(&self) -> Value {
        let s = &self.summary;
        let by_code: Map<String, Value> = s
            .by_code
            .iter()
            .map(|(code, n)| (code.as_str().to_string(), json!(n)))
            .collect();
        let issues: Vec<Value> = self.findings.iter().map(finding_json).collect();
        json!({
            "path": self.path,
            // A file with nothing to detect the format from reports the one its lines would have
            // been checked as, so that the field is always one of the two.
            "format": s.format.unwrap_or(Format::Json).as_str(),
            "gzip": s.gzip,
            "bytes": s.bytes,
            "lines": s.lines,
            "records": s.records,
            "invalid_lines": s.invalid_lines,
            "valid": self.is_valid(),
            "stopped": s.stopped,
            "errors": s.errors,
            "warnings": s.warnings,
            "by_code": by_code,
            "issues": issues,
            "issues_omitted": self.omitted,
        })
    }
}

/// A finding as JSON: `line`, `column` (or null), `severity`, `code`, `field` (or null), `message`.
pub fn finding_json(f: &Finding) -> Value {
    json!({
        "line": f.line,
        "column": f.column,
        "severity": f.severity.as_str(),
        "code": f.code.as_str(),
        "field": f.field,
        "message": f.message,
    })
}

/// The report on several files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// One report per file, in the order checked.
    pub files: Vec<FileReport>,
}

impl Report {
    /// Whether every file is valid.
    pub fn is_valid(&self) -> bool {
        self.files.iter().all(FileReport::is_valid)
    }

    /// `{"valid": bool, "files": [...]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "valid": self.is_valid(),
            "files": self.files.iter().map(FileReport::to_json).collect::<Vec<_>>(),
        })
    }
}

/// A sink that keeps the first `max` findings (0 keeps all) and counts the rest.
#[derive(Debug, Default)]
pub struct Collect {
    max: usize,
    findings: Vec<Finding>,
    omitted: u64,
}

impl Collect {
    /// Keeps at most `max` findings; 0 keeps all.
    pub fn new(max: usize) -> Self {
        Collect {
            max,
            findings: Vec::new(),
            omitted: 0,
        }
    }

    /// The report from what was kept and the run's summary.
    pub fn into_report(self, path: String, summary: Summary) -> FileReport {
        FileReport {
            path,
            summary,
            findings: self.findings,
            omitted: self.omitted,
        }
    }
}

impl Sink for Collect {
    fn finding(&mut self, finding: Finding) -> ControlFlow<()> {
        if self.max == 0 || self.findings.len() < self.max {
            self.findings.push(finding);
        } else {
            self.omitted += 1;
        }
        ControlFlow::Continue(())
    }
}
