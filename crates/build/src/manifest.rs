//! The manifest a split writes beside its parts, from which the uploader resumes.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

/// The file name of a manifest inside its directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// What a set of parts holds and where it came from.
///
/// ```
/// use sailbulk_build::Manifest;
/// let json = r#"{"version":1,"job":"update","max_bytes":1000,
///   "source":{"path":"in.json","bytes":12,"lines":1,"missing_final_newline":false},
///   "parts":[{"file":"part-00001.json","bytes":12,"lines":1,"first_line":1,"last_line":1,
///             "sha256":"00"}],"rejects":null}"#;
/// let manifest: Manifest = serde_json::from_str(json).unwrap();
/// assert_eq!(manifest.parts[0].file, "part-00001.json");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format's version (1).
    pub version: u32,
    /// The job the parts are for: `update` or `import`.
    pub job: String,
    /// The cap each part stays under, in bytes.
    pub max_bytes: u64,
    /// The input the parts come from.
    pub source: Source,
    /// The parts, in input order.
    pub parts: Vec<Part>,
    /// Lines set aside because they failed validation, when any were.
    pub rejects: Option<Rejects>,
}

/// The input of a split or conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The input path as given (`-` for standard input).
    pub path: String,
    /// Bytes read (decompressed, for gzip input).
    pub bytes: u64,
    /// Lines read; for a conversion, CSV data rows (a row may span lines).
    pub lines: u64,
    /// The input's last line had no `\n`; the parts end it with one.
    pub missing_final_newline: bool,
    /// The input's SHA-256 (lower-case hex), when the writer recorded it: `upload --split` does,
    /// so that a re-run tells the input it split from one changed since, whatever its size and
    /// modification time say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One part file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// The file name, relative to the manifest's directory.
    pub file: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Lines (records) in the part.
    pub lines: u64,
    /// The input line number of its first line, from 1 (for a conversion, the line its first
    /// row starts on).
    pub first_line: u64,
    /// The input line number of its last line (for a conversion, the line its last row starts
    /// on).
    pub last_line: u64,
    /// SHA-256 of the part's bytes, lowercase hex.
    pub sha256: String,
}

/// The rejects file of a split or conversion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejects {
    /// The file name, relative to the manifest's directory.
    pub file: String,
    /// Lines in it.
    pub lines: u64,
}

impl Manifest {
    /// Reads a manifest.
    pub fn read(path: &Path) -> io::Result<Manifest> {
        let text = std::fs::read(path)?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes the manifest atomically (a temporary file in the same directory, then a rename).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        text.push(b'\n');
        crate::atomic::write_atomic(path, &text)
    }
}
