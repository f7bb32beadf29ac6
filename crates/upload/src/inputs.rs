//! From what a user names to the parts an upload sends: files, directories, manifests, and
//! files over the job's limit split into parts (and those parts reused by a later run of the
//! same input), with the journal that records them. What `sailbulk upload` does before sending.

use crate::journal::JOURNAL_FILE;
use crate::runner::{lock_path, PartFile};
use sailbulk_build::{
    parent_dir, part_cap, sha256_file, split_file, CapOverLimit, Manifest, SplitError,
    SplitOptions, StagedDir, MANIFEST_FILE, REJECTS_FILE,
};
use sailbulk_spec::JobKind;
use std::io;
use std::path::{Path, PathBuf};

/// How [`resolve_inputs`] reads the inputs.
#[derive(Debug, Clone)]
pub struct InputOptions {
    /// The job the parts are for: a manifest made for another is refused, and the job's upload
    /// limit decides which files need splitting.
    pub job: JobKind,
    /// The journal the caller will use, if it chose one; `None` takes the inputs' own (beside the
    /// manifest, in the directory, or beside the file), which must then be one for all inputs.
    pub journal: Option<PathBuf>,
    /// Whether and how to split a file over the job's limit (see [`split_for_upload`]); `None`
    /// leaves it a part of its own, which the upload then refuses as too large.
    pub split: Option<SplitPolicy>,
}

/// How a file over the job's limit is split for upload.
#[derive(Debug, Clone, Copy, Default)]
pub struct SplitPolicy {
    /// The cap on a part's bytes (default: the job's upload limit; over it is refused).
    pub max_bytes: Option<u64>,
    /// Whether the parts are validated as they are written.
    pub validate: bool,
}

/// The parts of some inputs, and the journal for them.
#[derive(Debug, Clone)]
pub struct ResolvedInputs {
    /// The parts, in the order of the inputs (a directory's files in name order, a manifest's
    /// in its order); a part from a manifest carries the SHA-256 the manifest records.
    pub parts: Vec<PartFile>,
    /// The journal: the one given, or the inputs' own.
    pub journal: PathBuf,
    /// The files that were split, or whose parts were reused.
    pub splits: Vec<SplitForUpload>,
}

/// A file over the job's limit, as parts in `FILE.parts/`.
#[derive(Debug, Clone)]
pub struct SplitForUpload {
    /// The file.
    pub input: PathBuf,
    /// The directory of its parts and manifest.
    pub dir: PathBuf,
    /// The parts were made by an earlier run of the same input, and used as they are.
    pub reused: bool,
    /// Their manifest.
    pub manifest: Manifest,
}

/// Why inputs could not be made into parts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputsError {
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A `manifest.json` that is not one.
    #[error("{} is not a manifest: {message}", path.display())]
    NotAManifest {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A manifest made for another job.
    #[error("{} was made for {made_for} jobs, not {job}", path.display())]
    OtherJob {
        /// The manifest.
        path: PathBuf,
        /// The job it was made for.
        made_for: String,
        /// The job asked for.
        job: &'static str,
    },
    /// A directory with no file to upload.
    #[error("{} holds no files to upload", dir.display())]
    Empty {
        /// The directory.
        dir: PathBuf,
    },
    /// Inputs whose own journals would differ: another order of them, or a run with some of
    /// them, would read another journal and send again what this one records as sent.
    #[error("{} and {} would keep their upload journals in different places ({} and {}); name one for all of them with --journal FILE", first_input.display(), input.display(), first.display(), other.display())]
    Journals {
        /// The first input.
        first_input: PathBuf,
        /// The input whose journal differs.
        input: PathBuf,
        /// The first input's journal.
        first: PathBuf,
        /// This input's.
        other: PathBuf,
    },
    /// The input changed since it was split: its parts are not of it.
    #[error("{} changed after it was split into {}; remove that directory to split it again (its upload-journal.json records what was sent from the parts: keep a copy)", input.display(), dir.display())]
    ChangedSinceSplit {
        /// The file.
        input: PathBuf,
        /// Its parts directory.
        dir: PathBuf,
    },
    /// The parts directory holds parts for another job or another part size, or no manifest.
    #[error("{} exists and does not hold parts of {} for this job and --max-bytes; remove it or split by hand (its upload-journal.json, if any, records what was sent from those parts: keep a copy)", dir.display(), input.display())]
    NotItsParts {
        /// The file.
        input: PathBuf,
        /// The directory in the way.
        dir: PathBuf,
    },
    /// The part cap is over the job's upload limit.
    #[error(transparent)]
    Cap(#[from] CapOverLimit),
    /// The split failed (invalid lines, a line over the cap, the input unreadable).
    #[error(transparent)]
    Split(#[from] SplitError),
    /// The parts could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn read_err(path: &Path) -> impl Fn(io::Error) -> InputsError + '_ {
    move |source| InputsError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Turns what a user names into parts to upload: a directory means its `manifest.json`, or else
/// every file in it (in name order, leaving out hidden files and the journal, manifest, rejects
/// and lock files); a `manifest.json` means its parts, each with the SHA-256 it records; any
/// other file is a part, or, when `options.split` is set and it is over the part cap (the
/// job's limit, or a smaller `max_bytes`), the parts [`split_for_upload`] makes of it.
///
/// ```no_run
/// use sailbulk_spec::JobKind;
/// use sailbulk_upload::{resolve_inputs, InputOptions, SplitPolicy};
/// let options = InputOptions {
///     job: JobKind::Update,
///     journal: None,
///     split: Some(SplitPolicy { max_bytes: None, validate: true }),
/// };
/// let resolved = resolve_inputs(&["export.json".into()], &options)?;
/// println!("{} parts, journal {}", resolved.parts.len(), resolved.journal.display());
/// # Ok::<(), sailbulk_upload::InputsError>(())
/// ```
pub fn resolve_inputs(
    inputs: &[PathBuf],
    options: &InputOptions,
) -> Result<ResolvedInputs, InputsError> {
    let job = options.job;
    let mut parts = Vec::new();
    let mut splits = Vec::new();
    let mut journal: Option<PathBuf> = None;
    for input in inputs {
        let (mut found, dir) = if input.is_dir() {
            let manifest = input.join(MANIFEST_FILE);
            if manifest.is_file() {
                (manifest_parts(&manifest, job)?, input.clone())
            } else {
                (dir_parts(input, options.journal.as_deref())?, input.clone())
            }
        } else if input.file_name().is_some_and(|n| n == MANIFEST_FILE) {
            (manifest_parts(input, job)?, parent_dir(input).to_path_buf())
        } else {
            let bytes = std::fs::metadata(input).map_err(read_err(input))?.len();
            // Split when over the part cap: the job's limit, or the smaller one asked for.
            // (A cap over the limit is refused by the split, when there is one.)
            match options.split {
                Some(policy)
                    if bytes > part_cap(job, policy.max_bytes).unwrap_or(job.max_file_bytes()) =>
                {
                    let split = split_for_upload(input, job, policy)?;
                    // Made, or taken over, for this job.
                    let found = manifest_part_files(&split.manifest, &split.dir);
                    let dir = split.dir.clone();
                    splits.push(split);
                    (found, dir)
                }
                _ => (
                    vec![PartFile {
                        path: input.clone(),
                        expected_sha256: None,
                    }],
                    parent_dir(input).to_path_buf(),
                ),
            }
        };
        let own = dir.join(JOURNAL_FILE);
        match &journal {
            None => journal = Some(own),
            Some(first) if options.journal.is_none() && !same_file(first, &own) => {
                return Err(InputsError::Journals {
                    first_input: inputs[0].clone(),
                    input: input.clone(),
                    first: first.clone(),
                    other: own,
                });
            }
            Some(_) => {}
        }
        parts.append(&mut found);
    }
    let journal = options
        .journal
        .clone()
        .or(journal)
        .unwrap_or_else(|| PathBuf::from(JOURNAL_FILE));
    Ok(ResolvedInputs {
        parts,
        journal,
        splits,
    })
}

/// Whether two paths name the same file (their directories compared canonically).
fn same_file(a: &Path, b: &Path) -> bool {
    let dir = |p: &Path| {
        let parent = parent_dir(p);
        std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf())
    };
    a.file_name() == b.file_name() && dir(a) == dir(b)
}

fn manifest_parts(path: &Path, job: JobKind) -> Result<Vec<PartFile>, InputsError> {
    let manifest = Manifest::read(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => InputsError::NotAManifest {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
        _ => read_err(path)(e),
    })?;
    if manifest.job != job.as_str() {
        return Err(InputsError::OtherJob {
            path: path.to_path_buf(),
            made_for: manifest.job,
            job: job.as_str(),
        });
    }
    Ok(manifest_part_files(&manifest, parent_dir(path)))
}

/// The parts a manifest in `dir` lists, each with the checksum it records.
fn manifest_part_files(manifest: &Manifest, dir: &Path) -> Vec<PartFile> {
    manifest
        .parts
        .iter()
        .map(|p| PartFile {
            path: dir.join(&p.file),
            expected_sha256: Some(p.sha256.clone()),
        })
        .collect()
}

fn dir_parts(dir: &Path, journal: Option<&Path>) -> Result<Vec<PartFile>, InputsError> {
    let journal = journal.and_then(|j| std::path::absolute(j).ok());
    let default_lock = lock_path(Path::new(JOURNAL_FILE));
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_err(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let path = std::path::absolute(p).ok();
            !name.starts_with('.')
                && ![JOURNAL_FILE, MANIFEST_FILE, REJECTS_FILE].contains(&name.as_str())
                && Path::new(&name) != default_lock
                && journal.as_deref() != path.as_deref()
                && journal.as_deref().map(lock_path) != path
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(InputsError::Empty {
            dir: dir.to_path_buf(),
        });
    }
    Ok(files
        .into_iter()
        .map(|path| PartFile {
            path,
            expected_sha256: None,
        })
        .collect())
}

/// The directory [`split_for_upload`] splits `input` into: `FILE.parts` beside it.
pub fn parts_dir(input: &Path) -> PathBuf {
    let mut name = input.as_os_str().to_owned();
    name.push(".parts");
    PathBuf::from(name)
}

/// Splits a file over the job's limit into [`parts_dir`] (parts of at most `policy.max_bytes`,
/// with a manifest that records the input's SHA-256), or, when a run before did that for the
/// same input, job and part size, uses those parts as they are, so that the journal beside them
/// goes on recording what was sent. The input's checksum decides whether it is the same input:
/// a file rewritten to the same size with its old modification time (`cp -p`, `rsync -t`, an
/// archive) is a changed file, and its old parts are refused rather than sent for it.
pub fn split_for_upload(
    input: &Path,
    job: JobKind,
    policy: SplitPolicy,
) -> Result<SplitForUpload, InputsError> {
    let dir = parts_dir(input);
    let cap = part_cap(job, policy.max_bytes)?;
    let manifest_path = dir.join(MANIFEST_FILE);
    let not_its_parts = || InputsError::NotItsParts {
        input: input.to_path_buf(),
        dir: dir.clone(),
    };
    // Parts of an earlier run: its manifest says (an empty directory is split into).
    if manifest_path.exists() {
        let manifest = Manifest::read(&manifest_path).map_err(|_| not_its_parts())?;
        let changed = || InputsError::ChangedSinceSplit {
            input: input.to_path_buf(),
            dir: dir.clone(),
        };
        match &manifest.source.sha256 {
            Some(split_from) => {
                if sha256_file(input).map_err(read_err(input))? != *split_from {
                    return Err(changed());
                }
            }
            // A manifest without it (written by an earlier version): the modification times.
            None => {
                let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
                if modified(input) > modified(&manifest_path) {
                    return Err(changed());
                }
            }
        }
        let bytes = std::fs::metadata(input).map_err(read_err(input))?.len();
        if manifest.source.bytes != bytes
            || manifest.job != job.as_str()
            || manifest.max_bytes != cap
        {
            return Err(not_its_parts());
        }
        return Ok(SplitForUpload {
            input: input.to_path_buf(),
            dir,
            reused: true,
            manifest,
        });
    }
    // Taken before the split, so that a file that changes meanwhile makes the next run refuse
    // the parts.
    let input_sha256 = sha256_file(input).map_err(read_err(input))?;
    let write_err = |source| InputsError::Write {
        path: dir.clone(),
        source,
    };
    let staged = StagedDir::new(&dir, Some(input), false).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => not_its_parts(),
        _ => write_err(e),
    })?;
    let options = SplitOptions {
        job,
        max_bytes: Some(cap),
        skip_invalid: false,
        validate: policy.validate,
        threads: 0,
        source_sha256: Some(input_sha256),
    };
    let outcome = split_file(input, staged.path(), &options)?;
    // Nothing is replaced (the directory was missing or empty), so nothing old is left behind;
    // a directory filled meanwhile (another run of the same input) is not replaced.
    staged.publish().map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => not_its_parts(),
        _ => write_err(e),
    })?;
    Ok(SplitForUpload {
        input: input.to_path_buf(),
        dir,
        reused: false,
        manifest: outcome.manifest,
    })
}
