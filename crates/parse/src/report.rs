//! Reports: the findings a run kept and its complete counts, as values and as JSON.

use crate::check::Format;
use crate::finding::Finding;
use crate::spool::IssueJson;
use crate::validator::{Sink, Summary};
use serde_json::{json, Map, Value};
use std::io;
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

/// Writes a finding as `sailbulk validate` prints it: `path:line:column: severity[code]: message`
/// (no column when the finding has none).
pub fn write_finding_text(out: &mut impl io::Write, path: &str, f: &Finding) -> io::Result<()> {
    writeln!(out, "{path}:{f}")
}

/// An error and its causes, each after a `: `: the errors of these crates display their own
/// text and hand their cause over as their source, so that a message names each once.
///
/// ```
/// let e = std::io::Error::other("disk on fire");
/// assert_eq!(sailbulk_parse::error_chain(&e), "disk on fire");
/// ```
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

/// A count and its noun, singular for one, as the reports write counts.
///
/// ```
/// assert_eq!(sailbulk_parse::counted(1, "line"), "1 line");
/// assert_eq!(sailbulk_parse::counted(2, "part"), "2 parts");
/// ```
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A byte count for people: `950 B`, `12.3 MB` (decimal units, as the API documents its limits).
///
/// ```
/// assert_eq!(sailbulk_parse::human_bytes(999), "999 B");
/// assert_eq!(sailbulk_parse::human_bytes(1_234_567), "1.2 MB");
/// ```
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl FileReport {
    /// Writes the summary of the text report, as `sailbulk validate` prints it after the
    /// findings: the verdict and counts, the findings not listed, whether the run stopped early,
    /// and the count of each code with the line it is first found on.
    pub fn write_text_summary(&self, out: &mut impl io::Write) -> io::Result<()> {
        let verdict = if self.is_valid() { "valid" } else { "INVALID" };
        self.write_summary(out, verdict)
    }

    /// Writes the summary of a file whose reading failed part way, as `sailbulk validate` prints
    /// it in its place among the files' summaries: [`FileReport::write_text_summary`]'s, for the lines
    /// checked before the failure, which the summary holds.
    pub fn write_failed_text_summary(&self, out: &mut impl io::Write) -> io::Result<()> {
        self.write_summary(out, "FAILED, counted up to the failure")
    }

    fn write_summary(&self, out: &mut impl io::Write, verdict: &str) -> io::Result<()> {
        let s = &self.summary;
        let format = s.format.map_or("empty", Format::as_str);
        let gzip = if s.gzip { ", gzip" } else { "" };
        writeln!(
            out,
            "{}: {verdict}: {}, {}, {}, {} ({format}{gzip}, {})",
            self.path,
            counted(s.lines, "line"),
            counted(s.records, "record"),
            counted(s.errors, "error"),
            counted(s.warnings, "warning"),
            human_bytes(s.bytes)
        )?;
        if self.omitted > 0 {
            writeln!(
                out,
                "  {} not listed (--max-errors 0 lists all)",
                counted(self.omitted, "more finding")
            )?;
        }
        if s.stopped {
            writeln!(out, "  stopped before the end of the input")?;
        }
        // Each code, its count, and where it is first found (in a report that lists only its
        // first findings, the others may not be among them).
        let width = s
            .by_code
            .keys()
            .map(|c| c.as_str().len())
            .max()
            .unwrap_or(0);
        let count_width = s.by_code.values().map(|n| n.to_string().len()).max();
        let count_width = count_width.unwrap_or(0);
        for (code, n) in &s.by_code {
            write!(out, "  {:width$}  {n:>count_width$}", code.as_str())?;
            match s.first_line_by_code.get(code) {
                Some(line) => writeln!(out, "  first on line {line}")?,
                None => writeln!(out)?,
            }
        }
        Ok(())
    }

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
        let first_line_by_code: Map<String, Value> = s
            .first_line_by_code
            .iter()
            .map(|(code, line)| (code.as_str().to_string(), json!(line)))
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
            "first_line_by_code": first_line_by_code,
            "issues": issues,
            "issues_omitted": self.omitted,
        })
    }
}

/// A finding as JSON: `line`, `column` (or null), `severity`, `code`, `field` (or null), `message`.
pub fn finding_json(f: &Finding) -> Value {
    // A struct of numbers and strings always converts.
    serde_json::to_value(IssueJson::from(f)).unwrap_or(Value::Null)
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

/// How many findings a sink lists: the first `max` (0 lists all), the rest only counted, as
/// `sailbulk validate --max-errors` does.
///
/// ```
/// let mut limit = sailbulk_parse::ListLimit::new(2);
/// assert!(limit.take() && limit.take() && !limit.take());
/// assert_eq!((limit.listed(), limit.omitted(), limit.left()), (2, 1, 0));
/// assert_eq!(sailbulk_parse::ListLimit::new(0).left(), u64::MAX);
/// ```
#[derive(Debug, Default, Clone, Copy)]
pub struct ListLimit {
    max: usize,
    listed: usize,
    omitted: u64,
}

impl ListLimit {
    /// Lists at most `max` findings; 0 lists all.
    pub fn new(max: usize) -> Self {
        ListLimit {
            max,
            listed: 0,
            omitted: 0,
        }
    }

    /// Counts the next finding: `true` when it is to be listed, `false` when it is only counted.
    pub fn take(&mut self) -> bool {
        if self.max != 0 && self.listed >= self.max {
            self.omitted += 1;
            false
        } else {
            self.listed += 1;
            true
        }
    }

    /// How many more findings will be listed: the answer for [`Sink::details_wanted`].
    pub fn left(&self) -> u64 {
        match self.max {
            0 => u64::MAX,
            max => max.saturating_sub(self.listed) as u64,
        }
    }

    /// The findings listed so far.
    pub fn listed(&self) -> usize {
        self.listed
    }

    /// The findings counted but not listed so far.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }
}

/// A sink that keeps the first `max` findings (0 keeps all) and counts the rest.
#[derive(Debug, Default)]
pub struct Collect {
    limit: ListLimit,
    findings: Vec<Finding>,
}

impl Collect {
    /// Keeps at most `max` findings; 0 keeps all.
    pub fn new(max: usize) -> Self {
        Collect {
            limit: ListLimit::new(max),
            findings: Vec::new(),
        }
    }

    /// The report from what was kept and the run's summary.
    pub fn into_report(self, path: String, summary: Summary) -> FileReport {
        FileReport {
            path,
            summary,
            findings: self.findings,
            omitted: self.limit.omitted(),
        }
    }
}

impl Sink for Collect {
    fn finding(&mut self, finding: Finding) -> ControlFlow<()> {
        if self.limit.take() {
            self.findings.push(finding);
        }
        ControlFlow::Continue(())
    }

    fn details_wanted(&self) -> u64 {
        self.limit.left()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ValidatorBuilder;

    #[test]
    fn human_bytes_uses_decimal_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(1_000_000_000), "1.0 GB");
    }

    #[test]
    fn counts_take_the_singular_for_one() {
        assert_eq!(counted(0, "line"), "0 lines");
        assert_eq!(counted(1, "line"), "1 line");
        assert_eq!(counted(2, "error"), "2 errors");
        let summary = |text: &[u8], max| {
            let mut out = Vec::new();
            let report = ValidatorBuilder::new().build().report_slice(text, max);
            report.write_text_summary(&mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let out = summary(
            b"{\"email\":\"nope\"}\n{\"email\":\"a@example.com\",\"x\":1}\n{\"x\":1}\n",
            1,
        );
        assert!(
            out.starts_with("-: INVALID: 3 lines, 3 records, 2 errors, 2 warnings (json, "),
            "{out}"
        );
        assert!(
            out.contains("\n  3 more findings not listed (--max-errors 0 lists all)\n"),
            "{out}"
        );
        let out = summary(b"{\"email\":\"a@example.com\",\"x\":1}\n", 0);
        assert!(
            out.starts_with("-: valid: 1 line, 1 record, 0 errors, 1 warning (json, "),
            "{out}"
        );
    }

    #[test]
    fn the_text_report_lists_findings_then_the_summary() {
        let text = b"{\"email\":\"a@example.com\"}\n{\"email\":\"nope\"}\n\n{\"email\":\"b@example.com\",\"x\":1}\n";
        let report = ValidatorBuilder::new().build().report_slice(text, 1);
        let mut out = Vec::new();
        for f in &report.findings {
            write_finding_text(&mut out, &report.path, f).unwrap();
        }
        report.write_text_summary(&mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with("-:2:10: error[invalid_email]: "),
            "{out}"
        );
        assert_eq!(
            lines[1],
            "-: INVALID: 4 lines, 3 records, 1 error, 2 warnings (json, 76 B)"
        );
        assert_eq!(
            lines[2],
            "  2 more findings not listed (--max-errors 0 lists all)"
        );
        assert_eq!(
            &lines[3..],
            [
                "  invalid_email  1  first on line 2",
                "  blank_line     1  first on line 3",
                "  unknown_field  1  first on line 4"
            ]
        );
    }
}
