//! Request parameters: the query string, a form-urlencoded body, or a multipart body whose
//! `file` part streams to disk.

use memchr::memmem;
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::Path;

/// The most text a form body or a multipart text part may hold.
pub(crate) const MAX_TEXT: u64 = 64 * 1024 * 1024;

/// A file part, written to disk as it arrived. The file is deleted when this is dropped, unless a
/// job adopts it (`TempPath::keep`).
#[derive(Debug)]
pub(crate) struct Upload {
    pub path: tempfile::TempPath,
    pub filename: Option<String>,
    pub bytes: u64,
    pub sha256: String,
}

/// The parameters of one request, in the order they came. Values are raw bytes until checked.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pub pairs: Vec<(String, Vec<u8>)>,
    pub file: Option<Upload>,
}

/// Why the parameters could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ParamsError {
    #[error("the request body is malformed: {0}")]
    Malformed(String),
    #[error("the {what} is larger than {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

#[cfg(test)]
impl Params {
    /// The first value of a parameter.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Parses `a=1&b=%C3%A9+x` into pairs of raw bytes (`+` is a space).
pub(crate) fn parse_urlencoded(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    text.split(|&b| b == b'&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = match memchr::memchr(b'=', part) {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &b""[..]),
            };
            (
                String::from_utf8_lossy(&percent_decode(name)).into_owned(),
                percent_decode(value),
            )
        })
        .collect()
}

fn percent_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < text.len() => match (hex(text[i + 1]), hex(text[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Reads a form-urlencoded body of at most [`MAX_TEXT`] bytes.
pub(crate) fn read_form(body: &mut impl Read) -> Result<Vec<(String, Vec<u8>)>, ParamsError> {
    let mut text = Vec::new();
    body.take(MAX_TEXT + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MAX_TEXT {
        return Err(ParamsError::TooLarge {
            what: "form body",
            limit: MAX_TEXT,
        });
    }
    Ok(parse_urlencoded(&text))
}

/// The `boundary` of a `multipart/form-data` content type.
pub(crate) fn multipart_boundary(content_type: &str) -> Option<String> {
    let (kind, rest) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    rest.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Reads a multipart body: text parts into memory (each at most [`MAX_TEXT`]), the part named
/// `file` streamed into a new file in `dir` while its SHA-256 is computed. `file_limit` gives the
/// cap of the file part from the text parts before it (the job's upload limit, once the `json`
/// part has named the job), so an upload over the limit is refused as soon as it passes it.
pub(crate) fn read_multipart(
    body: &mut impl Read,
    boundary: &str,
    dir: &Path,
    file_limit: impl Fn(&[(String, Vec<u8>)]) -> u64,
) -> Result<Params, ParamsError> {
    let mut reader = PartReader::new(body, boundary);
    reader.skip_preamble()?;
    let mut params = Params::default();
    // One budget for all text parts together, as for a form body.
    let mut text_bytes = 0u64;
    while let Some(headers) = reader.next_part_headers()? {
        let (name, filename) = disposition(&headers)
            .ok_or_else(|| ParamsError::Malformed("a part has no form-data name".into()))?;
        if name == "file" {
            if params.file.is_some() {
                return Err(ParamsError::Malformed("more than one `file` part".into()));
            }
            let file_limit = file_limit(&params.pairs);
            let mut file = tempfile::Builder::new()
                .prefix("upload-")
                .suffix(".part")
                .tempfile_in(dir)?;
            let mut hasher = Sha256::new();
            let mut bytes = 0u64;
            {
                let mut out = io::BufWriter::with_capacity(256 * 1024, file.as_file_mut());
                reader.copy_part(|chunk| {
                    bytes += chunk.len() as u64;
                    if bytes > file_limit {
                        return Err(ParamsError::TooLarge {
                            what: "file",
                            limit: file_limit,
                        });
                    }
                    hasher.update(chunk);
                    out.write_all(chunk)?;
                    Ok(())
                })?;
                out.flush()?;
            }
            let (_, path) = file.into_parts();
            params.file = Some(Upload {
                path,
                filename,
                bytes,
                sha256: sailbulk_spec::api::hex(&hasher.finalize()),
            });
        } else {
            let mut value = Vec::new();
            reader.copy_part(|chunk| {
                text_bytes += chunk.len() as u64;
                if text_bytes > MAX_TEXT {
                    return Err(ParamsError::TooLarge {
                        what: "text parts",
                        limit: MAX_TEXT,
                    });
                }
                value.extend_from_slice(chunk);
                Ok(())
            })?;
            params.pairs.push((name, value));
        }
    }
    Ok(params)
}

/// `name` and `filename` from a part's `Content-Disposition: form-data; name="x"`.
fn disposition(headers: &str) -> Option<(String, Option<String>)> {
    let line = headers.lines().find(|l| {
        l.split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-disposition"))
    })?;
    let (_, value) = line.split_once(':')?;
    let mut name = None;
    let mut filename = None;
    for item in value.split(';').skip(1) {
        let Some((k, v)) = item.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "name" => name = Some(v),
            "filename" => filename = Some(v),
            _ => {}
        }
    }
    Some((name?, filename))
}

/// Reads multipart parts from a stream with a bounded buffer.
struct PartReader<'r, R: Read> {
    inner: &'r mut R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// `\r\n--boundary`: what ends a part's data.
    delimiter: Vec<u8>,
}

const BUF: usize = 256 * 1024;

impl<'r, R: Read> PartReader<'r, R> {
    fn new(inner: &'r mut R, boundary: &str) -> Self {
        PartReader {
            inner,
            buf: vec![0; BUF],
            start: 0,
            end: 0,
            eof: false,
            delimiter: format!("\r\n--{boundary}").into_bytes(),
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more bytes; false at the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.inner.read(&mut self.buf[self.end..])?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.end += n;
        Ok(true)
    }

    fn malformed(what: &str) -> ParamsError {
        ParamsError::Malformed(what.to_string())
    }

    /// Skips up to and including the first `--boundary`.
    fn skip_preamble(&mut self) -> Result<(), ParamsError> {
        // The first delimiter may come without the leading CRLF.
        let first = self.delimiter[2..].to_vec();
        loop {
            if let Some(i) = memmem::find(self.data(), &first) {
                self.start += i + first.len();
                return Ok(());
            }
            if self.end - self.start > MAX_TEXT as usize {
                return Err(Self::malformed("no multipart boundary"));
            }
            if !self.fill()? {
                return Err(Self::malformed("no multipart boundary"));
            }
        }
    }

    /// After a delimiter: `--` ends the body (None), else the part's headers up to the blank line.
    fn next_part_headers(&mut self) -> Result<Option<String>, ParamsError> {
        while self.end - self.start < 2 {
            if !self.fill()? {
                return Err(Self::malformed(
                    "the multipart body ends without its closing boundary",
                ));
            }
        }
        if self.data().starts_with(b"--") {
            return Ok(None);
        }
        loop {
            if let Some(i) = memmem::find(self.data(), b"\r\n\r\n") {
                let headers = String::from_utf8_lossy(&self.data()[..i]).into_owned();
                self.start += i + 4;
                return Ok(Some(headers));
            }
            if self.end - self.start > 64 * 1024 {
                return Err(Self::malformed("part headers too long"));
            }
            if !self.fill()? {
                return Err(Self::malformed(
                    "the multipart body ends inside part headers",
                ));
            }
        }
    }

    /// Passes the part's data to `f` in pieces, and consumes the delimiter after it.
    fn copy_part(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Result<(), ParamsError>,
    ) -> Result<(), ParamsError> {
        let finder = memmem::Finder::new(&self.delimiter).into_owned();
        let keep = self.delimiter.len() - 1;
        loop {
            if let Some(i) = finder.find(self.data()) {
                let piece = self.start..self.start + i;
                f(&self.buf[piece])?;
                self.start += i + self.delimiter.len();
                return Ok(());
            }
            // Everything but a possible partial delimiter at the end is data.
            let safe = (self.end - self.start).saturating_sub(keep);
            if safe > 0 {
                let piece = self.start..self.start + safe;
                f(&self.buf[piece])?;
                self.start += safe;
            }
            if !self.fill()? {
                return Err(Self::malformed("the multipart body ends inside a part"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_urlencoded() {
        let pairs =
            parse_urlencoded(b"a=1&json=%7B%22x%22%3A%22%C3%A9+y%22%7D&empty=&bare&bad=%zz%4");
        assert_eq!(pairs[0], ("a".into(), b"1".to_vec()));
        assert_eq!(pairs[1].1, "{\"x\":\"é y\"}".as_bytes());
        assert_eq!(pairs[2], ("empty".into(), vec![]));
        assert_eq!(pairs[3], ("bare".into(), vec![]));
        assert_eq!(pairs[4].1, b"%zz%4".to_vec());
        // Bytes that are not UTF-8 survive decoding, to be refused later with error 6.
        assert_eq!(parse_urlencoded(b"x=%FF")[0].1, vec![0xFF]);
    }

    #[test]
    fn finds_the_boundary() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(
            multipart_boundary("multipart/form-data;boundary=x1").as_deref(),
            Some("x1")
        );
        assert_eq!(multipart_boundary("application/json"), None);
    }

    fn body(file: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"api_key\"\r\n\r\nk\r\n",
        );
        b.extend_from_slice(b"--XyZ\r\nContent-Disposition: form-data; name=\"json\"\r\n\r\n{\"job\":\"update\"}\r\n");
        b.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.json\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        );
        b.extend_from_slice(file);
        b.extend_from_slice(b"\r\n--XyZ--\r\n");
        b
    }

    /// A reader that hands out at most `n` bytes per read, to cut the stream everywhere.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn streams_the_file_part_whatever_the_read_sizes() {
        let dir = tempfile::tempdir().unwrap();
        // Data that holds CRLFs and a near-delimiter.
        let file: Vec<u8> = b"{\"email\":\"a@example.com\"}\r\n--XyQ\r\n--Xy\n\r\n-"
            .iter()
            .copied()
            .cycle()
            .take(700_000)
            .collect();
        let bytes = body(&file);
        for step in [1, 3, 7, 64, 4096, usize::MAX] {
            if step == 1 && bytes.len() > 100_000 {
                // Byte-by-byte over 700 kB is slow in debug builds; 3 covers the same splits.
                continue;
            }
            let params =
                read_multipart(&mut Trickle(&bytes, step), "XyZ", dir.path(), |_| u64::MAX)
                    .unwrap();
            assert_eq!(params.get("api_key"), Some(&b"k"[..]));
            assert_eq!(params.get("json"), Some(&b"{\"job\":\"update\"}"[..]));
            let upload = params.file.unwrap();
            assert_eq!(upload.filename.as_deref(), Some("a.json"));
            assert_eq!(upload.bytes, file.len() as u64);
            assert_eq!(std::fs::read(&upload.path).unwrap(), file);
            assert_eq!(
                upload.sha256,
                sailbulk_spec::api::hex(&Sha256::digest(&file))
            );
        }
    }

    #[test]
    fn refuses_a_file_over_the_limit_and_truncated_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = body(&[b'x'; 1000]);
        let err = read_multipart(&mut &bytes[..], "XyZ", dir.path(), |_| 999).unwrap_err();
        assert!(
            matches!(err, ParamsError::TooLarge { what: "file", .. }),
            "{err}"
        );
        let err = read_multipart(&mut &bytes[..bytes.len() - 20], "XyZ", dir.path(), |_| {
            u64::MAX
        })
        .unwrap_err();
        assert!(matches!(err, ParamsError::Malformed(_)), "{err}");
        let err =
            read_multipart(&mut &b"no boundary here"[..], "XyZ", dir.path(), |_| 10).unwrap_err();
        assert!(matches!(err, ParamsError::Malformed(_)), "{err}");
    }
}
