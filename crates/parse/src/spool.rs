//! Findings kept for a report that lists all of them, in bounded memory: written at once as the
//! JSON they will be reported as, in memory up to a bound and in an unnamed temporary file past
//! it.
//!
//! A JSON report is one document, written once the run is over (its `valid` and counts are known
//! only then), so the findings it lists are kept until then. A file with millions of findings
//! would otherwise hold millions of them in memory: a spool holds at most
//! [`SPOOL_MEMORY_BYTES`] of their JSON text, and the rest on disk.

use crate::finding::Finding;
use serde::Serialize;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, Write};
use tempfile::SpooledTempFile;

/// How many bytes of JSON text a [`Spool`] keeps in memory before it moves them to a temporary
/// file (about 20,000 findings).
pub const SPOOL_MEMORY_BYTES: usize = 4 << 20;

/// A finding in the JSON report's shape: `line`, `column` (or null), `severity`, `code`, `field`
/// (or null), `message`, in that order.
#[derive(Serialize)]
pub(crate) struct IssueJson<'a> {
    line: u64,
    column: Option<u32>,
    severity: &'static str,
    code: &'static str,
    field: Option<&'a str>,
    message: &'a str,
}

impl<'a> From<&'a Finding> for IssueJson<'a> {
    fn from(f: &'a Finding) -> Self {
        IssueJson {
            line: f.line,
            column: f.column,
            severity: f.severity.as_str(),
            code: f.code.as_str(),
            field: f.field.as_deref(),
            message: &f.message,
        }
    }
}

/// The prefix of every line a spool writes: the finding's line number follows it.
const LINE_PREFIX: &[u8] = b"{\"line\":";

/// Findings in the order they were pushed, as lines of JSON, in memory up to a bound and in a
/// temporary file past it, to be written out as the elements of a JSON array.
///
/// ```
/// use sailbulk_parse::{Spool, ValidatorBuilder, Sink};
/// use std::ops::ControlFlow;
///
/// // A sink that keeps every finding, however many there are.
/// struct All(Spool);
/// impl Sink for All {
///     fn finding(&mut self, f: sailbulk_parse::Finding) -> ControlFlow<()> {
///         match self.0.push(&f) {
///             Ok(()) => ControlFlow::Continue(()),
///             Err(_) => ControlFlow::Break(()),
///         }
///     }
/// }
///
/// let mut all = All(Spool::with_memory_limit(0));
/// ValidatorBuilder::new()
///     .build()
///     .validate_slice(b"{\"email\":\"nope\"}\n{\"email\":\"a@b\"}\n", &mut all);
/// assert_eq!(all.0.len(), 2);
/// let mut out = Vec::new();
/// all.0.write_json_elements(&mut out, None, "")?;
/// let array: serde_json::Value = serde_json::from_slice(&[b"[", &out[..], b"]"].concat()).unwrap();
/// assert_eq!(array[1]["line"], 2);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Spool {
    text: BufWriter<SpooledTempFile>,
    len: u64,
}

impl Default for Spool {
    fn default() -> Self {
        Spool::new()
    }
}

impl Spool {
    /// A spool that keeps [`SPOOL_MEMORY_BYTES`] of JSON text in memory.
    pub fn new() -> Spool {
        Spool::with_memory_limit(SPOOL_MEMORY_BYTES)
    }

    /// A spool that keeps at most `bytes` bytes of JSON text in memory.
    pub fn with_memory_limit(bytes: usize) -> Spool {
        Spool {
            text: BufWriter::with_capacity(64 << 10, tempfile::spooled_tempfile(bytes)),
            len: 0,
        }
    }

    /// Keeps a finding. Fails only when the temporary file cannot be created or written.
    pub fn push(&mut self, finding: &Finding) -> io::Result<()> {
        serde_json::to_writer(&mut self.text, &IssueJson::from(finding))?;
        self.text.write_all(b"\n")?;
        self.len += 1;
        Ok(())
    }

    /// How many findings were pushed.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether none was.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the findings went to a temporary file.
    pub fn spilled(&self) -> bool {
        self.text.get_ref().is_rolled()
    }

    /// Writes out what is buffered, so that a failure to write the temporary file shows here,
    /// not while the findings are read back.
    pub fn flush(&mut self) -> io::Result<()> {
        self.text.flush()
    }

    /// Writes the findings on lines up to `last_line` (all of them with `None`), in order, as
    /// the elements of a JSON array, to go between its brackets: each on a line of its own after
    /// `indent`, followed by a comma but for the last, and a line end after the last. Writes
    /// nothing when there are none; returns how many it wrote.
    pub fn write_json_elements(
        self,
        out: &mut dyn Write,
        last_line: Option<u64>,
        indent: &str,
    ) -> io::Result<u64> {
        let mut text = self
            .text
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        text.rewind()?;
        let mut reader = BufReader::with_capacity(64 << 10, text);
        let mut json = Vec::new();
        let mut written = 0u64;
        loop {
            json.clear();
            if reader.read_until(b'\n', &mut json)? == 0 {
                break;
            }
            let element = json.strip_suffix(b"\n").unwrap_or(&json);
            if last_line.is_some_and(|last| line_of(element) > Some(last)) {
                continue;
            }
            out.write_all(if written > 0 { b",\n" } else { b"\n" })?;
            out.write_all(indent.as_bytes())?;
            out.write_all(element)?;
            written += 1;
        }
        if written > 0 {
            out.write_all(b"\n")?;
        }
        Ok(written)
    }
}

/// The line number of a finding as [`Spool::push`] wrote it (`None` if the text is damaged,
/// which the filter then leaves out).
fn line_of(json: &[u8]) -> Option<u64> {
    let rest = json.strip_prefix(LINE_PREFIX)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Code, Severity};
    use serde_json::Value;

    fn finding(line: u64, message: &str) -> Finding {
        Finding {
            line,
            column: line.is_multiple_of(2).then_some(3),
            severity: Severity::Error,
            code: Code::InvalidEmail,
            field: line.is_multiple_of(3).then(|| "email".to_string()),
            message: message.to_string(),
        }
    }

    fn elements(spool: Spool, last_line: Option<u64>) -> (u64, Vec<Value>, String) {
        let mut out = Vec::new();
        let n = spool
            .write_json_elements(&mut out, last_line, "  ")
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let array: Value = serde_json::from_str(&format!("[{text}]")).unwrap();
        (n, array.as_array().unwrap().clone(), text)
    }

    /// In memory or spilled to a file, a spool writes the same elements, in order, and filters
    /// them by line the same way.
    #[test]
    fn memory_and_file_write_the_same_elements() {
        let messages = [
            "plain",
            "a \"quote\" and a \\",
            "line\nbreak",
            "ünïcödé 🎉",
            "",
        ];
        for last_line in [None, Some(0), Some(7), Some(100)] {
            let mut outputs = Vec::new();
            for limit in [0, 100, 500, 1 << 20] {
                let mut spool = Spool::with_memory_limit(limit);
                for line in 1..=12 {
                    spool
                        .push(&finding(line, messages[line as usize % 5]))
                        .unwrap();
                }
                spool.flush().unwrap();
                assert_eq!(spool.len(), 12);
                // Twelve findings take about a kilobyte of text.
                assert_eq!(spool.spilled(), limit < 1 << 20, "{limit}");
                outputs.push(elements(spool, last_line));
            }
            let expected = last_line.map_or(12, |l| l.min(12));
            for (n, array, text) in &outputs {
                assert_eq!(*n, expected);
                assert_eq!(array.len() as u64, expected);
                let lines: Vec<&str> = text.lines().skip(1).collect();
                assert_eq!(lines.len() as u64, expected, "one element a line");
                assert!(
                    lines.iter().all(|l| l.starts_with("  {\"line\":")),
                    "{text}"
                );
                assert!(text.is_empty() || text.starts_with('\n') && text.ends_with("}\n"));
            }
            assert!(outputs.windows(2).all(|w| w[0] == w[1]));
            if let Some((_, array, _)) = outputs.first().filter(|o| o.0 > 2) {
                assert_eq!(array[1]["line"], 2);
                assert_eq!(array[1]["column"], 3);
                assert_eq!(array[0]["column"], Value::Null);
                assert_eq!(array[2]["field"], "email");
                assert_eq!(array[2]["message"], messages[3]);
                assert_eq!(array[1]["code"], "invalid_email");
                assert_eq!(array[1]["severity"], "error");
            }
        }
    }

    #[test]
    fn an_empty_spool_writes_nothing() {
        let (n, array, text) = elements(Spool::new(), None);
        assert_eq!((n, array.len(), text.as_str()), (0, 0, ""));
    }

    /// The elements have the report's shape, field for field, JSON's escapes and all; and
    /// [`crate::finding_json`] agrees.
    #[test]
    fn elements_have_the_report_shape() {
        let f = finding(6, "say \"hi\"\n");
        let mut spool = Spool::with_memory_limit(0);
        spool.push(&f).unwrap();
        let mut out = Vec::new();
        spool.write_json_elements(&mut out, None, "").unwrap();
        let expected = r#"{"line":6,"column":3,"severity":"error","code":"invalid_email","field":"email","message":"say \"hi\"\n"}"#;
        assert_eq!(String::from_utf8(out).unwrap(), format!("\n{expected}\n"));
        let value: Value = serde_json::from_str(expected).unwrap();
        assert_eq!(crate::finding_json(&f), value);
    }
}
