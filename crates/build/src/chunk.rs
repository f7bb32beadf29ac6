//! A writer that fills part files up to a byte cap, on line boundaries, and describes them.

use crate::atomic::AtomicFile;
use crate::manifest::Part;
use sailbulk_spec::api::hex;
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The most parts a set may have: names have five digits, so that name order is input order.
pub const MAX_PARTS: u32 = 99_999;

/// Why lines could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A single line is longer than the cap, so no part can hold it.
    #[error("line {line} is {bytes} bytes long, more than the {max} bytes a part may hold")]
    LineTooLong {
        /// Its input line number.
        line: u64,
        /// Its length, line end included.
        bytes: u64,
        /// The cap.
        max: u64,
    },
    /// More parts than names allow.
    #[error("more than {MAX_PARTS} parts would be needed; raise the size cap")]
    TooManyParts,
    /// Writing a part failed.
    #[error("cannot write {}", path.display())]
    Io {
        /// The part.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

struct Current {
    file: AtomicFile,
    name: String,
    hasher: Sha256,
    bytes: u64,
    lines: u64,
    first_line: u64,
    last_line: u64,
}

/// Writes lines into `part-00001.json`, `part-00002.json`, ... in a directory, each part at most
/// `max_bytes` and filled as close to it as whole lines allow. A part appears under its name only
/// when it is complete (it is written under a temporary name and renamed), and each part's size,
/// line range and SHA-256 are recorded for the manifest.
///
/// ```
/// use sailbulk_build::ChunkWriter;
///
/// let dir = tempfile::tempdir().unwrap();
/// let mut parts = ChunkWriter::new(dir.path(), 30, "json").unwrap();
/// parts.write_lines(b"{\"email\":\"a@example.com\"}\n", 1).unwrap(); // 26 bytes
/// parts.write_lines(b"{\"email\":\"b@example.com\"}\n", 2).unwrap(); // would pass 30: a new part
/// let parts = parts.finish().unwrap();
/// assert_eq!(parts.len(), 2);
/// assert_eq!((parts[1].file.as_str(), parts[1].first_line), ("part-00002.json", 2));
/// ```
pub struct ChunkWriter {
    dir: PathBuf,
    max_bytes: u64,
    extension: String,
    current: Option<Current>,
    parts: Vec<Part>,
}

impl std::fmt::Debug for ChunkWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkWriter")
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .field("parts", &self.parts.len())
            .finish()
    }
}

impl ChunkWriter {
    /// A writer of parts with the given extension (`json`, `txt`) into `dir`, created if missing.
    pub fn new(dir: &Path, max_bytes: u64, extension: &str) -> io::Result<ChunkWriter> {
        std::fs::create_dir_all(dir)?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            max_bytes: max_bytes.max(1),
            extension: extension.to_string(),
            current: None,
            parts: Vec::new(),
        })
    }

    /// Sets the extension of the parts not yet begun.
    pub fn set_extension(&mut self, extension: &str) {
        self.extension = extension.to_string();
    }

    /// The cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Writes whole lines, each ending with `\n`; `first_line` is the input line number of the
    /// first. A part is closed and another begun whenever the next line would pass the cap.
    /// Returns the number of lines written.
    pub fn write_lines(&mut self, mut block: &[u8], first_line: u64) -> Result<u64, ChunkError> {
        let mut line = first_line;
        while !block.is_empty() {
            let room = self.max_bytes - self.current.as_ref().map_or(0, |c| c.bytes);
            let take = if block.len() as u64 <= room {
                block.len()
            } else {
                // The most whole lines that fit in the room left.
                match memchr::memrchr(b'\n', &block[..room as usize]) {
                    Some(i) => i + 1,
                    None if self.current.as_ref().is_some_and(|c| c.bytes > 0) => {
                        self.close()?;
                        continue;
                    }
                    None => {
                        let len = memchr::memchr(b'\n', block).map_or(block.len(), |i| i + 1);
                        return Err(ChunkError::LineTooLong {
                            line,
                            bytes: len as u64,
                            max: self.max_bytes,
                        });
                    }
                }
            };
            let (now, rest) = block.split_at(take);
            line += self.append(now, line)?;
            block = rest;
            if !block.is_empty() {
                self.close()?;
            }
        }
        Ok(line - first_line)
    }

    /// Appends whole lines to the open part (opening one if needed); returns how many.
    fn append(&mut self, bytes: &[u8], first_line: u64) -> Result<u64, ChunkError> {
        if self.current.is_none() {
            let n = self.parts.len() as u32 + 1;
            if n > MAX_PARTS {
                return Err(ChunkError::TooManyParts);
            }
            let name = format!("part-{n:05}.{}", self.extension);
            let path = self.dir.join(&name);
            let file = AtomicFile::create(&path).map_err(|source| ChunkError::Io {
                path: path.clone(),
                source,
            })?;
            self.current = Some(Current {
                file,
                name,
                hasher: Sha256::new(),
                bytes: 0,
                lines: 0,
                first_line,
                last_line: first_line,
            });
        }
        let cur = self.current.as_mut().expect("a part is open");
        // Hashing (and counting lines) runs beside the write: SHA-256 is the costliest step of a
        // split, and this way it overlaps the copy into the file.
        let (hasher, file) = (&mut cur.hasher, &mut cur.file);
        let (lines, written) = rayon::join(
            || {
                hasher.update(bytes);
                memchr::memchr_iter(b'\n', bytes).count() as u64
            },
            || file.write_all(bytes),
        );
        written.map_err(|source| ChunkError::Io {
            path: cur.file.target().to_path_buf(),
            source,
        })?;
        cur.bytes += bytes.len() as u64;
        cur.lines += lines;
        // Callers may skip line numbers (rejected rows), so the last is tracked, not derived.
        cur.last_line = first_line + lines.saturating_sub(1);
        Ok(lines)
    }

    fn close(&mut self) -> Result<(), ChunkError> {
        let Some(cur) = self.current.take() else {
            return Ok(());
        };
        let path = cur.file.target().to_path_buf();
        cur.file
            .commit()
            .map_err(|source| ChunkError::Io { path, source })?;
        self.parts.push(Part {
            file: cur.name,
            bytes: cur.bytes,
            lines: cur.lines,
            first_line: cur.first_line,
            last_line: cur.last_line,
            sha256: hex(&cur.hasher.finalize()),
        });
        Ok(())
    }

    /// Closes the last part and returns the parts written, in order.
    pub fn finish(mut self) -> Result<Vec<Part>, ChunkError> {
        self.close()?;
        Ok(std::mem::take(&mut self.parts))
    }
}

/// SHA-256 of a file, lowercase hex (for checking parts against a manifest).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_parts_to_the_cap_on_line_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 10, "txt").unwrap();
        w.write_lines(b"aaaa\nbbbb\ncc\n", 1).unwrap();
        w.write_lines(b"dddddddd\n", 4).unwrap();
        w.write_lines(b"e\n", 5).unwrap();
        let parts = w.finish().unwrap();
        let shape: Vec<_> = parts
            .iter()
            .map(|p| (p.file.as_str(), p.bytes, p.lines, p.first_line, p.last_line))
            .collect();
        assert_eq!(
            shape,
            [
                ("part-00001.txt", 10, 2, 1, 2),
                ("part-00002.txt", 3, 1, 3, 3),
                ("part-00003.txt", 9, 1, 4, 4),
                ("part-00004.txt", 2, 1, 5, 5),
            ]
        );
        assert_eq!(
            std::fs::read(dir.path().join("part-00001.txt")).unwrap(),
            b"aaaa\nbbbb\n"
        );
        assert_eq!(
            parts[0].sha256,
            sha256_file(&dir.path().join("part-00001.txt")).unwrap()
        );
        // No temporary files are left.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn a_line_over_the_cap_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 5, "txt").unwrap();
        w.write_lines(b"ab\n", 1).unwrap();
        let err = w.write_lines(b"abcdef\n", 2).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2 is 7 bytes long, more than the 5 bytes a part may hold"
        );
    }

    #[test]
    fn a_line_exactly_at_the_cap_fits() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path(), 5, "txt").unwrap();
        w.write_lines(b"abcd\nefgh\n", 1).unwrap();
        assert_eq!(w.finish().unwrap().len(), 2);
    }
}
