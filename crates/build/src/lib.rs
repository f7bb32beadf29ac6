//! Building Sailthru upload files: CSV to update JSON, and files split into parts that are each
//! valid and under the job's size limit, with a manifest.
//!
//! Three types do the work:
//!
//! - [`Converter`] turns CSV rows into update JSON lines under a column mapping
//!   ([`ConvertOptions`]), row by row for ETL code, or a whole stream with [`convert_csv`];
//! - [`ChunkWriter`] writes lines into `part-00001.json`, `part-00002.json`, ... each at most a byte
//!   cap, on line boundaries, recording each part's size, line range and SHA-256;
//! - [`Manifest`] describes a set of parts (serde), for the uploader to resume from.
//!
//! [`split_file`] puts them together: it reads a file as the validator does, checks every line with
//! the same code as `sailbulk validate`, and writes the valid lines into parts.
//!
//! ```
//! use sailbulk_build::{ChunkWriter, ConvertOptions, Converter};
//!
//! let converter = Converter::new(&ConvertOptions::default(), &["email", "city"]).unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let mut parts = ChunkWriter::new(dir.path(), 1_000_000, "json").unwrap();
//! let mut line = Vec::new();
//! for (n, row) in [["ann@example.com", "Paris"], ["bob@example.com", "Oslo"]].iter().enumerate() {
//!     line.clear();
//!     converter.convert_row(row, &mut line).unwrap();
//!     parts.write_lines(&line, n as u64 + 2).unwrap();
//! }
//! let parts = parts.finish().unwrap();
//! assert_eq!(parts[0].lines, 2);
//! ```
#![deny(missing_docs)]

mod atomic;
mod chunk;
mod cleanup;
mod convert;
mod manifest;
mod records;
mod rejects;
mod size;
mod split;
mod staged;

pub use atomic::{write_atomic, AtomicFile};
pub use chunk::{sha256_file, ChunkError, ChunkWriter, MAX_PARTS};
pub use cleanup::remove_temporaries;
pub use convert::{
    convert_csv, infers_as_literal, ConvertError, ConvertOptions, ConvertSink, ConvertSummary,
    Converter, Empty, Identity, MappingError, Reject, Types, MAX_INFERRED_INT_DIGITS,
};
pub use manifest::{Manifest, Part, Rejects, Source, MANIFEST_FILE};
pub use rejects::RejectsWriter;
pub use size::{parse_size, ParseSizeError};
pub use split::{
    part_cap, split_file, CapOverLimit, SplitError, SplitOptions, SplitOutcome, REJECTS_FILE,
};
pub use staged::{parent_dir, Published, StagedDir};
