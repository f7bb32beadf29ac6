//! Splitting a file into parts under a byte cap, validating lines as they are written.

use crate::atomic::AtomicFile;
use crate::chunk::{ChunkError, ChunkWriter};
use crate::manifest::{Manifest, Rejects, Source, MANIFEST_FILE};
use sailbulk_parse::{Finding, Format, LineBlock, Sink, UpdateRecord, ValidatorBuilder};
use sailbulk_spec::JobKind;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The rejects file's name inside a split's directory.
pub const REJECTS_FILE: &str = "rejects.json";

/// How to split.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// The job the parts are for: its upload limit is the default cap, and `Import` makes
    /// email-only parts. Default: [`JobKind::Update`].
    pub job: JobKind,
    /// The cap per part, in bytes. Default: the job's upload limit.
    pub max_bytes: Option<u64>,
    /// Move lines that fail validation to `rejects.json` instead of failing. Default: false.
    pub skip_invalid: bool,
    /// Check lines with the validator as they are written. Default: true.
    pub validate: bool,
    /// Threads for validation (0: one per core). Default: 0.
    pub threads: usize,
    /// The input's SHA-256 (lowercase hex), when the caller has taken it: recorded in the
    /// manifest as `source.sha256`. A split does not hash its input itself. Default: none.
    pub source_sha256: Option<String>,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            job: JobKind::Update,
            max_bytes: None,
            skip_invalid: false,
            validate: true,
            threads: 0,
            source_sha256: None,
        }
    }
}

/// What a split did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitOutcome {
    /// The manifest written to the directory.
    pub manifest: Manifest,
    /// Lines with errors, moved to `rejects.json` (with `skip_invalid`) or the reason the split
    /// failed (without).
    pub invalid_lines: u64,
    /// The first findings on invalid lines (at most 100), for the report.
    pub findings: Vec<Finding>,
}

/// Why a split failed. Nothing is left in the target directory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// The input could not be read.
    #[error(transparent)]
    Input(#[from] sailbulk_parse::Error),
    /// A part could not be written, or a line is longer than the cap.
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// Lines failed validation and `skip_invalid` was not set.
    #[error("{count} line(s) failed validation or hold no address to import (first on line {first}); fix them, or pass --skip-invalid to set them aside")]
    Invalid {
        /// How many.
        count: u64,
        /// The first one's line number.
        first: u64,
        /// The first findings.
        findings: Vec<Finding>,
    },
    /// The part cap is over the job's upload limit: the API would refuse such parts.
    #[error(transparent)]
    CapOverLimit(#[from] CapOverLimit),
    /// Writing the manifest or rejects failed.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A part cap over the job's upload limit: the API would refuse parts that size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a part cap of {cap} bytes is over the {job} job's upload limit of {limit} bytes: the API would refuse parts that size")]
pub struct CapOverLimit {
    /// The cap asked for.
    pub cap: u64,
    /// The job's limit.
    pub limit: u64,
    /// The job (`update` or `import`).
    pub job: &'static str,
}

/// The cap on a part's bytes for `job`: `max_bytes` when given, else the job's upload limit; an
/// error when `max_bytes` is over that limit. What `split`, `convert -o DIR` and `upload --split`
/// all cut by.
///
/// ```
/// use sailbulk_build::part_cap;
/// use sailbulk_spec::JobKind;
/// assert_eq!(part_cap(JobKind::Import, None), Ok(10_000_000));
/// assert_eq!(part_cap(JobKind::Update, Some(500_000_000)), Ok(500_000_000));
/// assert!(part_cap(JobKind::Import, Some(1_000_000_000)).is_err());
/// ```
pub fn part_cap(job: JobKind, max_bytes: Option<u64>) -> Result<u64, CapOverLimit> {
    let limit = job.max_file_bytes();
    match max_bytes {
        Some(cap) if cap > limit => Err(CapOverLimit {
            cap,
            limit,
            job: job.as_str(),
        }),
        cap => Ok(cap.unwrap_or(limit)),
    }
}

/// Routes checked lines: valid ones to the parts, invalid ones to the rejects.
struct Router<'a> {
    parts: &'a mut ChunkWriter,
    rejects: Option<AtomicFile>,
    rejects_path: PathBuf,
    rejected: u64,
    findings: Vec<Finding>,
    first_invalid: Option<u64>,
    skip_invalid: bool,
    /// The job is an import: parts hold addresses.
    import: bool,
    /// What the lines hold, once the first non-blank line has been seen.
    format: Option<Format>,
    missing_final_newline: bool,
    error: Option<SplitError>,
    scratch: Vec<u8>,
}

/// Lines in a run of whole lines (the input's last line may lack its `\n`).
fn count_lines(bytes: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', bytes).count() as u64;
    newlines + u64::from(bytes.last().is_some_and(|&b| b != b'\n'))
}

impl Router<'_> {
    /// Writes a run of lines, all valid or all invalid; `first` is its first line's number.
    /// Returns the number of input lines in the run.
    fn run(&mut self, bytes: &[u8], valid: bool, first: u64) -> Result<u64, SplitError> {
        let owned;
        let unterminated = bytes.last().is_some_and(|&b| b != b'\n');
        let bytes = if unterminated {
            owned = [bytes, b"\n"].concat();
            &owned
        } else {
            bytes
        };
        if !valid {
            return self.reject(bytes, first);
        }
        if !(self.import && self.format == Some(Format::Json)) {
            // The input's last line lacks its `\n`: the part ends it (and the manifest says so).
            self.missing_final_newline |= unterminated;
            return Ok(self.parts.write_lines(bytes, first)?);
        }
        // Email-only parts from update lines: each record's address, one per line.
        let mut number = first;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            let content = line.strip_suffix(b"\n").unwrap_or(line);
            let content = content.strip_suffix(b"\r").unwrap_or(content);
            let content = match number {
                1 => content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content),
                _ => content,
            };
            if content.iter().all(u8::is_ascii_whitespace) {
                // A blank line holds no record: nothing to import, nothing lost.
                number += 1;
                continue;
            }
            // The record's address: its `email`, or an `id` whose key is `email`.
            let email = UpdateRecord::parse(content).ok().and_then(|r| {
                let address = match (&r.email, r.identity()) {
                    (Some(email), _) => email.trim().to_string(),
                    (None, ("email", id)) => id.trim().to_string(),
                    _ => String::new(),
                };
                (!address.is_empty()).then_some(address)
            });
            match email {
                Some(email) => {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(email.as_bytes());
                    self.scratch.push(b'\n');
                    let scratch = std::mem::take(&mut self.scratch);
                    let written = self.parts.write_lines(&scratch, number);
                    self.scratch = scratch;
                    written?;
                }
                // A record identified by another key has no address to import.
                None => {
                    self.reject(line, number)?;
                }
            }
            number += 1;
        }
        Ok(number - first)
    }

    /// Sets invalid lines aside (with `skip_invalid`) and counts them; returns how many.
    fn reject(&mut self, bytes: &[u8], first: u64) -> Result<u64, SplitError> {
        let lines = count_lines(bytes);
        self.first_invalid.get_or_insert(first);
        self.rejected += lines;
        if !self.skip_invalid {
            return Ok(lines);
        }
        let io = |source| SplitError::Io {
            path: self.rejects_path.clone(),
            source,
        };
        if self.rejects.is_none() {
            self.rejects = Some(AtomicFile::create(&self.rejects_path).map_err(io)?);
        }
        if let Some(out) = &mut self.rejects {
            out.write_all(bytes).map_err(io)?;
        }
        Ok(lines)
    }

    /// Detects the format from a block, as the validator does (from its first non-blank line), as
    /// the lines stream by: standard input can be read only once.
    /// `first_line` is the block's first line number (a byte-order mark counts only on line 1).
    fn detect(&mut self, block: &[u8], first_line: u64) {
        if self.format.is_none() {
            self.format = Format::detect_block(block, first_line == 1);
            if self.format == Some(Format::Emails) || self.import {
                self.parts.set_extension("txt");
            }
        }
    }

    /// Keeps a typed error beside the `io::Error` that the sink interface carries.
    fn keep<T>(&mut self, result: Result<T, SplitError>) -> io::Result<T> {
        result.map_err(|e| {
            let io = io::Error::other(e.to_string());
            self.error = Some(e);
            io
        })
    }
}

/// How many findings on invalid lines a split keeps for its report.
const KEPT_FINDINGS: usize = 100;

impl Sink for Router<'_> {
    fn finding(&mut self, finding: Finding) -> ControlFlow<()> {
        if finding.severity == sailbulk_parse::Severity::Error
            && finding.code != sailbulk_parse::Code::FileTooLarge
            && self.findings.len() < KEPT_FINDINGS
        {
            self.findings.push(finding);
        }
        ControlFlow::Continue(())
    }

    fn wants_lines(&self) -> bool {
        true
    }

    /// The findings kept are errors only, which any number of warnings may come before: all
    /// of them whole until the report has its fill.
    fn details_wanted(&self) -> u64 {
        if self.findings.len() < KEPT_FINDINGS {
            u64::MAX
        } else {
            0
        }
    }

    fn lines(&mut self, block: &LineBlock<'_>) -> io::Result<()> {
        self.detect(block.bytes, block.first_line);
        let mut line = block.first_line;
        block.for_each_run(|bytes, valid| {
            let result = self.run(bytes, valid, line);
            line += self.keep(result)?;
            Ok(())
        })
    }
}

/// Splits `input` into parts in `dir` (created; it should be empty), writing `manifest.json`
/// last. The caller makes the whole directory appear at once (the CLI writes into a temporary
/// directory and renames it).
///
/// ```
/// use sailbulk_build::{split_file, SplitOptions};
///
/// let dir = tempfile::tempdir().unwrap();
/// let input = dir.path().join("in.json");
/// std::fs::write(&input, "{\"email\":\"a@example.com\"}\n{\"email\":\"b@example.com\"}\n").unwrap();
/// let options = SplitOptions { max_bytes: Some(30), ..Default::default() };
/// let out = split_file(&input, &dir.path().join("parts"), &options).unwrap();
/// assert_eq!(out.manifest.parts.len(), 2);
/// ```
pub fn split_file(
    input: &Path,
    dir: &Path,
    options: &SplitOptions,
) -> Result<SplitOutcome, SplitError> {
    let max = part_cap(options.job, options.max_bytes)?;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SplitError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut builder = ValidatorBuilder::new();
    builder.threads(options.threads);
    // The size limit is what a split is for: every other rule applies.
    builder.job(JobKind::Update);
    let validator = builder.build();
    let import = options.job == JobKind::Import;
    let extension = if import { "txt" } else { "json" };
    let mut parts = ChunkWriter::new(dir, max, extension).map_err(io_err(dir))?;
    let mut router = Router {
        parts: &mut parts,
        rejects: None,
        rejects_path: dir.join(REJECTS_FILE),
        rejected: 0,
        findings: Vec::new(),
        first_invalid: None,
        skip_invalid: options.skip_invalid,
        import,
        format: None,
        missing_final_newline: false,
        error: None,
        scratch: Vec::new(),
    };
    // Import parts from update lines need each line parsed, so they always take the validator.
    let (bytes, lines) = if options.validate || import {
        let summary = match validator.validate_path(input, &mut router) {
            Ok(s) => s,
            Err(sailbulk_parse::Error::Sink(e)) => {
                return Err(router.error.take().unwrap_or(SplitError::Io {
                    path: dir.to_path_buf(),
                    source: e,
                }))
            }
            Err(e) => return Err(e.into()),
        };
        (summary.bytes, summary.lines)
    } else {
        let mut lines = 0u64;
        let result = validator.for_each_block(input, |block| {
            router.detect(block, lines + 1);
            let result = router.run(block, true, lines + 1);
            lines += router.keep(result)?;
            Ok(())
        });
        let (bytes, _) = match result {
            Ok(r) => r,
            Err(sailbulk_parse::Error::Sink(e)) => {
                return Err(router.error.take().unwrap_or(SplitError::Io {
                    path: dir.to_path_buf(),
                    source: e,
                }))
            }
            Err(e) => return Err(e.into()),
        };
        (bytes, lines)
    };
    let Router {
        rejects,
        rejected,
        findings,
        first_invalid,
        missing_final_newline,
        ..
    } = router;
    if rejected > 0 && !options.skip_invalid {
        return Err(SplitError::Invalid {
            count: rejected,
            first: first_invalid.unwrap_or(0),
            findings,
        });
    }
    let rejects = match rejects {
        Some(file) => {
            file.commit().map_err(io_err(&dir.join(REJECTS_FILE)))?;
            Some(Rejects {
                file: REJECTS_FILE.to_string(),
                lines: rejected,
            })
        }
        None => None,
    };
    let manifest = Manifest {
        version: 1,
        job: options.job.as_str().to_string(),
        max_bytes: max,
        source: Source {
            path: input.display().to_string(),
            bytes,
            lines,
            missing_final_newline,
            sha256: options.source_sha256.clone(),
        },
        parts: parts.finish()?,
        rejects,
    };
    let path = dir.join(MANIFEST_FILE);
    manifest.write(&path).map_err(io_err(&path))?;
    Ok(SplitOutcome {
        manifest,
        invalid_lines: rejected,
        findings,
    })
}
