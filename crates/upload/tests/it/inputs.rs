//! From inputs to parts: directories, manifests, files split for upload and their reuse.

use crate::*;
use sailbulk_spec::JobKind;
use sailbulk_upload::{
    parts_dir, resolve_inputs, split_for_upload, InputOptions, InputsError, SplitPolicy,
    JOURNAL_FILE,
};
use std::path::PathBuf;

fn lines(n: usize) -> String {
    (0..n)
        .map(|i| format!("{{\"email\":\"u{i}@example.com\"}}\n"))
        .collect()
}

#[test]
fn a_file_split_for_upload_is_reused_only_for_the_same_input_job_and_cap() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "big.json", &lines(100));
    let policy = SplitPolicy {
        max_bytes: Some(700),
        validate: true,
    };
    // An empty parts directory (made by hand, or left by a run stopped early) is split into.
    std::fs::create_dir(parts_dir(&input)).unwrap();
    let first = split_for_upload(&input, JobKind::Update, policy).unwrap();
    assert!(!first.reused);
    assert_eq!(first.dir, parts_dir(&input));
    assert!(first.manifest.parts.len() > 1);
    assert_eq!(
        first.manifest.source.sha256,
        Some(sailbulk_build::sha256_file(&input).unwrap())
    );
    let again = split_for_upload(&input, JobKind::Update, policy).unwrap();
    assert!(again.reused);
    assert_eq!(again.manifest, first.manifest);
    // Another cap: not its parts.
    let other = SplitPolicy {
        max_bytes: Some(900),
        ..policy
    };
    assert!(matches!(
        split_for_upload(&input, JobKind::Update, other),
        Err(InputsError::NotItsParts { .. })
    ));
    // The same size, another content, the old modification time: a changed input.
    let modified = std::fs::metadata(&input).unwrap().modified().unwrap();
    std::fs::write(&input, lines(100).replacen("u0@", "v0@", 1)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&input)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let err = split_for_upload(&input, JobKind::Update, policy).unwrap_err();
    assert!(
        matches!(err, InputsError::ChangedSinceSplit { .. }),
        "{err}"
    );
    // A cap over the job's limit is refused before anything is read.
    let over = SplitPolicy {
        max_bytes: Some(sailbulk_spec::IMPORT_FILE_MAX_BYTES + 1),
        validate: true,
    };
    assert!(matches!(
        split_for_upload(&input, JobKind::Import, over),
        Err(InputsError::Cap(_))
    ));
}

#[test]
fn inputs_become_parts_with_one_journal() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let parts_in = root.join("d");
    std::fs::create_dir(&parts_in).unwrap();
    write(&parts_in, "b.json", &lines(1));
    write(&parts_in, "a.json", &lines(2));
    write(&parts_in, ".hidden", "x");
    write(&parts_in, JOURNAL_FILE, "{}");
    let options = |journal: Option<PathBuf>| InputOptions {
        job: JobKind::Update,
        journal,
        split: None,
    };
    let resolved = resolve_inputs(std::slice::from_ref(&parts_in), &options(None)).unwrap();
    let names: Vec<_> = resolved
        .parts
        .iter()
        .map(|p| p.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.json", "b.json"]);
    assert_eq!(resolved.journal, parts_in.join(JOURNAL_FILE));
    // Inputs in two directories need a journal named.
    let other = write(root, "c.json", &lines(1));
    let both = [parts_in.clone(), other];
    assert!(matches!(
        resolve_inputs(&both, &options(None)),
        Err(InputsError::Journals { .. })
    ));
    let named = root.join("j.json");
    let resolved = resolve_inputs(&both, &options(Some(named.clone()))).unwrap();
    assert_eq!(resolved.parts.len(), 3);
    assert_eq!(resolved.journal, named);
    // A manifest: its parts, with their checksums; one made for another job is refused.
    let split = split_for_upload(
        &write(root, "big.json", &lines(50)),
        JobKind::Update,
        SplitPolicy {
            max_bytes: Some(600),
            validate: true,
        },
    )
    .unwrap();
    let manifest = split.dir.join("manifest.json");
    let resolved = resolve_inputs(std::slice::from_ref(&manifest), &options(None)).unwrap();
    assert_eq!(resolved.parts.len(), split.manifest.parts.len());
    assert!(resolved.parts.iter().all(|p| p.expected_sha256.is_some()));
    let import = InputOptions {
        job: JobKind::Import,
        ..options(None)
    };
    assert!(matches!(
        resolve_inputs(&[manifest], &import),
        Err(InputsError::OtherJob { .. })
    ));
    // Under the job's limit but over a smaller cap asked for: split.
    let small = write(root, "small.json", &lines(40));
    let capped = InputOptions {
        split: Some(SplitPolicy {
            max_bytes: Some(500),
            validate: true,
        }),
        ..options(None)
    };
    let resolved = resolve_inputs(std::slice::from_ref(&small), &capped).unwrap();
    assert_eq!(resolved.splits.len(), 1);
    assert!(resolved.parts.len() > 1);
    // An empty directory holds nothing to upload.
    let empty = root.join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        resolve_inputs(&[empty], &options(None)),
        Err(InputsError::Empty { .. })
    ));
}
