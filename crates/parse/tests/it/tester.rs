//! Runs one input through every way the validator can read it and asserts that all of them give
//! the same report: slice, reader, memory map, plain reads, gzip (one member and several), with one
//! and several threads, and pieces and blocks from one byte to the defaults.

use flate2::write::GzEncoder;
use flate2::Compression;
use sailbulk_parse::{Finding, LineBlock, Sink, Summary, Validator, ValidatorBuilder};
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

/// Everything a run produced: the summary (without the gzip flag), the findings, and the lines
/// routed as valid and invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub summary: Summary,
    pub findings: Vec<Finding>,
    pub valid: Vec<u8>,
    pub invalid: Vec<u8>,
}

/// A sink that keeps every finding and routes the lines it gets into valid and invalid ones,
/// checking that blocks arrive in order.
#[derive(Default)]
pub struct Recorder {
    pub findings: Vec<Finding>,
    pub valid: Vec<u8>,
    pub invalid: Vec<u8>,
    next_line: u64,
}

impl Sink for Recorder {
    fn finding(&mut self, finding: Finding) -> ControlFlow<()> {
        self.findings.push(finding);
        ControlFlow::Continue(())
    }

    fn wants_lines(&self) -> bool {
        true
    }

    fn lines(&mut self, block: &LineBlock<'_>) -> std::io::Result<()> {
        assert_eq!(
            block.first_line,
            self.next_line + 1,
            "blocks arrive in order"
        );
        self.next_line += block.bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        block.for_each_run(|bytes, valid| {
            if valid {
                self.valid.extend_from_slice(bytes);
            } else {
                self.invalid.extend_from_slice(bytes);
            }
            Ok(())
        })
    }
}

impl Recorder {
    /// What the run produced, with its summary.
    fn finish(self, mut summary: Summary) -> Outcome {
        summary.gzip = false;
        Outcome {
            summary,
            findings: self.findings,
            valid: self.valid,
            invalid: self.invalid,
        }
    }
}

/// A validator with the given settings on top of `base`.
fn with(base: &ValidatorBuilder, threads: usize, chunk: usize, block: usize) -> Validator {
    let mut b = base.clone();
    b.threads(threads).chunk_size(chunk).block_size(block);
    b.build()
}

pub fn gzip(data: &[u8], members: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let step = data.len().div_ceil(members.max(1)).max(1);
    let mut pieces: Vec<&[u8]> = data.chunks(step).collect();
    if pieces.is_empty() {
        pieces.push(b"");
    }
    for piece in pieces {
        let mut enc = GzEncoder::new(Vec::new(), Compression::fast());
        enc.write_all(piece).unwrap();
        out.extend(enc.finish().unwrap());
    }
    out
}

/// Runs `input` every way and returns the (single) outcome, panicking with the first difference.
pub fn run_all_paths(base: &ValidatorBuilder, input: &[u8]) -> Outcome {
    let reference = {
        let v = with(base, 1, usize::MAX, usize::MAX);
        let mut rec = Recorder::default();
        let summary = v.validate_slice(input, &mut rec);
        rec.finish(summary)
    };
    assert_eq!(
        [reference.valid.clone(), reference.invalid.clone()]
            .concat()
            .len(),
        input.len(),
        "routed lines add up to the input"
    );
    let check = |name: String, outcome: Outcome| {
        assert_eq!(
            outcome, reference,
            "{name} differs from the single-threaded slice run"
        );
    };
    for threads in [1, 2, 3] {
        for chunk in [1, 7, 64 << 10, 1 << 20] {
            let v = with(base, threads, chunk, 16 << 20);
            let mut rec = Recorder::default();
            let summary = v.validate_slice(input, &mut rec);
            check(
                format!("slice threads={threads} chunk={chunk}"),
                rec.finish(summary),
            );
        }
        for block in [1, 5, 4096, 1 << 20] {
            let v = with(base, threads, 7, block);
            let mut rec = Recorder::default();
            let summary = v
                .validate_reader(std::io::Cursor::new(input.to_vec()), &mut rec)
                .unwrap();
            check(
                format!("reader threads={threads} block={block}"),
                rec.finish(summary),
            );
            for members in [1, 3] {
                let mut rec = Recorder::default();
                let summary = v
                    .validate_reader(std::io::Cursor::new(gzip(input, members)), &mut rec)
                    .unwrap();
                assert!(summary.gzip, "gzip is detected");
                check(
                    format!("gzip reader members={members} threads={threads} block={block}"),
                    rec.finish(summary),
                );
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("input.json");
    std::fs::write(&plain, input).unwrap();
    let packed = dir.path().join("input.json.gz");
    std::fs::write(&packed, gzip(input, 2)).unwrap();
    for (file, name) in [(&plain, "file"), (&packed, "gzip file")] {
        for mmap in [true, false] {
            for (threads, block) in [(1, 1), (2, 64 << 10), (2, 16 << 20)] {
                let mut b = base.clone();
                b.mmap(mmap);
                let v = with(&b, threads, 7, block);
                let mut rec = Recorder::default();
                let summary = v.validate_path(Path::new(file), &mut rec).unwrap();
                check(
                    format!("{name} mmap={mmap} threads={threads} block={block}"),
                    rec.finish(summary),
                );
            }
        }
    }
    reference
}
