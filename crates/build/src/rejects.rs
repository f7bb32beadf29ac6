//! The rejects file of a conversion: the rows that did not become records, with why.

use std::io;

/// Writes rejected CSV rows as a CSV file: the input's header plus `line` and `reason` columns,
/// then each rejected row as it was read, with the CSV line it starts on and why it was
/// rejected. A short (ragged) row is padded to the header's width and a long row's extra fields
/// come after `reason`, so that `line` and `reason` always stand under their headers.
///
/// ```
/// use sailbulk_build::RejectsWriter;
/// let mut rejects = RejectsWriter::new(Vec::new(), b',');
/// rejects.header(&["email".into(), "name".into()])?;
/// rejects.reject(&csv::ByteRecord::from(vec!["nobody"]), 2, "invalid email")?;
/// let text = String::from_utf8(rejects.into_inner()?).unwrap();
/// assert_eq!(text, "email,name,line,reason\nnobody,,2,invalid email\n");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct RejectsWriter<W: io::Write> {
    out: csv::Writer<W>,
    width: usize,
    rows: u64,
}

impl<W: io::Write> RejectsWriter<W> {
    /// A writer into `out`, with the input's delimiter.
    pub fn new(out: W, delimiter: u8) -> Self {
        RejectsWriter {
            // Flexible: a long row keeps its extra fields.
            out: csv::WriterBuilder::new()
                .delimiter(delimiter)
                .flexible(true)
                .from_writer(out),
            width: 0,
            rows: 0,
        }
    }

    /// Writes the header row: the input's, then `line` and `reason`.
    pub fn header(&mut self, header: &[String]) -> io::Result<()> {
        self.width = header.len();
        let mut h = csv::StringRecord::from(header.to_vec());
        h.push_field("line");
        h.push_field("reason");
        self.out.write_record(&h).map_err(io::Error::other)
    }

    /// Writes a rejected row, the CSV line it starts on, and why.
    pub fn reject(&mut self, row: &csv::ByteRecord, line: u64, reason: &str) -> io::Result<()> {
        let mut r = csv::ByteRecord::new();
        let fields = row.iter().chain(std::iter::repeat(&b""[..]));
        for field in fields.take(self.width) {
            r.push_field(field);
        }
        r.push_field(line.to_string().as_bytes());
        r.push_field(reason.as_bytes());
        for extra in row.iter().skip(self.width) {
            r.push_field(extra);
        }
        self.rows += 1;
        self.out.write_byte_record(&r).map_err(io::Error::other)
    }

    /// Rows written so far (the header aside).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Flushes the writer and gives back what it wrote into (an `AtomicFile` to commit, say).
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_reason_stand_under_their_headers_for_ragged_rows() {
        let mut w = RejectsWriter::new(Vec::new(), b'\t');
        w.header(&["email".into(), "a".into(), "b".into()]).unwrap();
        w.reject(&csv::ByteRecord::from(vec!["x"]), 2, "short")
            .unwrap();
        w.reject(
            &csv::ByteRecord::from(vec!["x", "1", "2", "3", "4"]),
            3,
            "long",
        )
        .unwrap();
        w.reject(
            &csv::ByteRecord::from(vec!["q\"uote", "a\tb", ""]),
            4,
            "quoted",
        )
        .unwrap();
        assert_eq!(w.rows(), 3);
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "email\ta\tb\tline\treason\nx\t\t\t2\tshort\nx\t1\t2\t3\tlong\t3\t4\n\"q\"\"uote\"\t\"a\tb\"\t\t4\tquoted\n"
        );
    }
}
