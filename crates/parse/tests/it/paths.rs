//! Input paths: windows and blocks over bigger inputs, gzip, size limits, files that change.

use crate::tester::{gzip, run_all_paths, Recorder};
use sailbulk_parse::{Code, Finding, Sink, Summary, ValidatorBuilder};
use sailbulk_spec::JobKind;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

fn sample(lines: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let line = match i % 11 {
            3 => format!("{{\"email\":\"user{i}@example\",\"vars\":{{\"n\":{i}}}}}\n"),
            7 => format!("{{\"email\":\"user{i}@example.com\",\"lists\":{{\"L{}\":2}}}}\r\n", i % 5),
            9 => "\n".to_string(),
            _ => format!(
                "{{\"email\":\"user{i}@example.com\",\"vars\":{{\"name\":\"Zoë {i}\",\"tags\":[\"a\",\"b\"]}},\"lists\":{{\"List {}\":1}}}}\n",
                i % 13
            ),
        };
        out.extend_from_slice(line.as_bytes());
    }
    out
}

#[test]
fn every_path_agrees_on_a_few_hundred_kilobytes() {
    let input = sample(4000);
    assert!(input.len() > 3 * (64 << 10), "spans several windows");
    let outcome = run_all_paths(&ValidatorBuilder::new(), &input);
    assert_eq!(outcome.summary.lines, 4000);
    assert_eq!(outcome.summary.by_code[&Code::InvalidEmail], 364);
    assert_eq!(outcome.summary.by_code[&Code::InvalidListValue], 363);
    assert_eq!(outcome.summary.by_code[&Code::BlankLine], 363);
    assert_eq!(outcome.summary.invalid_lines, 727);
}

/// A line of a form feed or vertical tab is blank in a list of addresses and invalid JSON in an
/// update file. Lines before the first that shows the format are checked in the format that
/// line shows, however the input is cut into blocks.
#[test]
fn lines_before_the_one_that_shows_the_format_are_checked_in_that_format() {
    let codes = |input: &[u8]| {
        let outcome = run_all_paths(&ValidatorBuilder::new(), input);
        let codes: Vec<(u64, Code)> = outcome.findings.iter().map(|f| (f.line, f.code)).collect();
        (outcome.summary.format, codes)
    };
    use sailbulk_parse::Format::{Emails, Json};
    use Code::{BlankLine, Bom, InvalidEmail, InvalidJson};
    assert_eq!(
        codes(b"\x0b\n\"email\""),
        (Some(Emails), vec![(1, BlankLine), (2, InvalidEmail)])
    );
    assert_eq!(
        codes(b"\n\x0c\n \n\x0b \t\n{\"email\":\"a@example.com\"}\n"),
        (
            Some(Json),
            vec![
                (1, BlankLine),
                (2, InvalidJson),
                (3, BlankLine),
                (4, InvalidJson)
            ]
        )
    );
    assert_eq!(
        codes(b"\n\x0b\n\r\n\x0c\r\na@example.com\n\x0b\n"),
        (
            Some(Emails),
            vec![
                (1, BlankLine),
                (2, BlankLine),
                (3, BlankLine),
                (4, BlankLine),
                (6, BlankLine)
            ]
        )
    );
    assert_eq!(
        codes(b"\xEF\xBB\xBF\x0b\n\n\t\x0c\nuser@example.com\n"),
        (
            Some(Emails),
            vec![(1, BlankLine), (1, Bom), (2, BlankLine), (3, BlankLine)]
        )
    );
    // No line shows a format: JSON, in every path.
    assert_eq!(
        codes(b"\x0b\n\n\x0c"),
        (
            None,
            vec![(1, InvalidJson), (2, BlankLine), (3, InvalidJson)]
        )
    );
}

/// What is held back until the format shows is bounded: past 16 MiB, the lines held are checked
/// as JSON, the format of an input that shows none.
#[test]
fn lines_held_until_the_format_shows_are_bounded() {
    // Lines of 1 KiB, a vertical tab among spaces: 1024 to a block of 1 MiB, 18 blocks.
    let mut line = vec![b' '; 1024];
    line[0] = 0x0b;
    line[1023] = b'\n';
    let lines = 18 * 1024;
    let mut input = line.repeat(lines);
    input.extend_from_slice(b"user@example.com\n");
    let mut b = ValidatorBuilder::new();
    b.threads(2).block_size(1 << 20);
    let v = b.build();
    let summary = v
        .validate_reader(
            std::io::Cursor::new(input.clone()),
            &mut sailbulk_parse::Collect::new(1),
        )
        .unwrap();
    assert_eq!(summary.format, Some(sailbulk_parse::Format::Emails));
    assert_eq!(summary.lines, lines as u64 + 1);
    // 17 blocks (the 16 held and the one that would take them past the bound) as JSON, the
    // last one held until the address shows the format.
    assert_eq!(summary.by_code[&Code::InvalidJson], 17 * 1024);
    assert_eq!(summary.by_code[&Code::BlankLine], 1024);
    // Whole, the input is one list of addresses.
    let whole = v.report_slice(&input, 1).summary;
    assert_eq!(whole.by_code[&Code::BlankLine], lines as u64);
    assert!(!whole.by_code.contains_key(&Code::InvalidJson));
}

#[test]
fn a_thread_count_beyond_the_pieces_of_a_block_starts_no_idle_threads() {
    let count = |threads: usize, chunk: usize| {
        ValidatorBuilder::new()
            .threads(threads)
            .chunk_size(chunk)
            .build()
            .threads()
    };
    // 16 MiB blocks: 16 pieces of 1 MiB, 4 of 4 MiB, 3 of 6 MiB (the last one shorter).
    assert_eq!(count(usize::MAX, 1 << 20), 16);
    assert_eq!(count(1 << 32, 4 << 20), 4);
    assert_eq!(count(5, 6 << 20), 3);
    assert_eq!(count(3, 1 << 20), 3);
    assert_eq!(count(1, 1 << 20), 1);
    assert_eq!(count(0, 1 << 20), 0, "0 still means rayon's global pool");
    // And such a validator checks as any other does.
    let input = sample(4000);
    let report = |threads: usize| {
        ValidatorBuilder::new()
            .threads(threads)
            .chunk_size(16 << 10)
            .block_size(64 << 10)
            .build()
            .report_slice(&input, 0)
    };
    assert_eq!(report(usize::MAX), report(1));
}

/// Runs on the threads of the pool they check with (rayon's global pool, for `threads(0)`, is
/// the pool of whichever pool's thread calls) check block by block: a run that queued its blocks
/// on the pool and waited for them would hold a thread of the pool, and runs on every thread of
/// it would wait for each other for ever. Four runs on a pool of two threads end, each with the
/// report of a run from outside the pool.
#[test]
fn runs_on_the_threads_of_their_own_pool_end_and_agree() {
    use rayon::prelude::*;
    let input = sample(4000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.json");
    std::fs::write(&path, &input).unwrap();
    let mut b = ValidatorBuilder::new();
    b.threads(0).chunk_size(16 << 10).block_size(64 << 10);
    let validator = b.build();
    let outside = validator.report_path(&path, 0).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let reports: Vec<_> = pool.install(|| {
            (0..4)
                .into_par_iter()
                .map(|_| validator.report_path(&path, 0).unwrap())
                .collect()
        });
        let _ = tx.send(reports);
    });
    let reports = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the runs on the pool's threads never ended");
    for report in reports {
        assert_eq!(report.findings, outside.findings);
        assert_eq!(report.summary, outside.summary);
    }
}

/// A sink that does not want lines (a report) over many mapped windows, read blocks and gzip
/// members, on one to three threads, gets the report of the whole input checked as one block.
#[test]
fn a_report_over_many_windows_and_blocks_is_the_one_block_report() {
    let input = sample(4000);
    let reference = ValidatorBuilder::new().build().report_slice(&input, 0);
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("sample.json");
    let packed = dir.path().join("sample.json.gz");
    std::fs::write(&plain, &input).unwrap();
    std::fs::write(&packed, gzip(&input, 3)).unwrap();
    for threads in [1, 2, 3] {
        for block in [64 << 10, 16 << 20] {
            for mmap in [true, false] {
                for path in [&plain, &packed] {
                    let mut b = ValidatorBuilder::new();
                    b.threads(threads)
                        .chunk_size(20 << 10)
                        .block_size(block)
                        .mmap(mmap);
                    let report = b.build().report_path(path, 0).unwrap();
                    let name = format!(
                        "{} threads={threads} block={block} mmap={mmap}",
                        path.display()
                    );
                    assert_eq!(report.findings, reference.findings, "{name}");
                    let mut summary = report.summary.clone();
                    summary.gzip = false;
                    assert_eq!(summary, reference.summary, "{name}");
                }
            }
        }
    }
}

#[test]
fn a_line_longer_than_the_block_is_read_whole() {
    let long = format!(
        "{{\"email\":\"a@example.com\",\"vars\":{{\"x\":\"{}\"}}}}\n",
        "y".repeat(300_000)
    );
    let input = [long.as_bytes(), b"{\"email\":\"b@example\"}\n"].concat();
    let outcome = run_all_paths(&ValidatorBuilder::new(), &input);
    assert_eq!(outcome.summary.lines, 2);
    let codes: Vec<_> = outcome.findings.iter().map(|f| (f.line, f.code)).collect();
    assert_eq!(codes, [(1, Code::VarValueTooLong), (2, Code::InvalidEmail)]);
}

#[test]
fn empty_input_and_missing_final_newline() {
    let outcome = run_all_paths(&ValidatorBuilder::new(), b"");
    assert_eq!(outcome.summary.lines, 0);
    assert_eq!(outcome.summary.format, None);
    let outcome = run_all_paths(&ValidatorBuilder::new(), b"a@example.com\nb@example.com");
    assert_eq!(outcome.summary.lines, 2);
    assert!(outcome.findings.is_empty());
}

#[test]
fn size_limit_names_the_line_where_it_is_crossed_and_lines_are_still_checked() {
    // 10,000,000 bytes is the import limit: 400,000 lines of 25 bytes reach it exactly.
    let line = b"abcdefghijklm@example.com";
    let mut input = Vec::with_capacity(10_000_100);
    for _ in 0..400_000 {
        input.extend_from_slice(&line[..]);
        input.truncate(input.len() - 1);
        input.push(b'\n');
    }
    assert_eq!(input.len(), 10_000_000);
    let mut b = ValidatorBuilder::new();
    b.job(JobKind::Import);
    let v = b.build();
    let at_limit = v.report_slice(&input, 0);
    assert!(at_limit.is_valid(), "{:?}", at_limit.findings.first());
    input.extend_from_slice(b"nope\n");
    for threads in [1, 2] {
        let mut b = ValidatorBuilder::new();
        b.job(JobKind::Import).threads(threads).chunk_size(4096);
        let over = b.build().report_slice(&input, 0);
        let codes: Vec<_> = over.findings.iter().map(|f| (f.line, f.code)).collect();
        assert_eq!(
            codes,
            [(400_001, Code::FileTooLarge), (400_001, Code::InvalidEmail)]
        );
        assert_eq!(over.summary.bytes, 10_000_005);
    }
    // The limit applies to decompressed bytes.
    let mut b = ValidatorBuilder::new();
    b.job(JobKind::Import);
    let mut sink = sailbulk_parse::Collect::new(0);
    let summary = b
        .build()
        .validate_reader(std::io::Cursor::new(gzip(&input, 1)), &mut sink)
        .unwrap();
    assert!(summary.gzip);
    assert_eq!(summary.by_code[&Code::FileTooLarge], 1);
}

/// A sink that does `change` to the file it is reading as the run first reports its progress
/// (after the first block).
struct OnFirstProgress<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Sink for OnFirstProgress<F> {
    fn finding(&mut self, _: Finding) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }

    fn progress(&mut self, _: u64) {
        if let Some(change) = self.0.take() {
            change();
        }
    }
}

#[test]
fn a_file_that_shrinks_while_read_is_reported_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrinks.json");
    std::fs::write(&path, sample(4000)).unwrap();
    for mmap in [true, false] {
        std::fs::write(&path, sample(4000)).unwrap();
        let mut b = ValidatorBuilder::new();
        b.block_size(64 << 10).mmap(mmap);
        let mut sink = OnFirstProgress(Some(|| {
            let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(1000).unwrap();
        }));
        let err = b.build().validate_path(&path, &mut sink).unwrap_err();
        assert!(
            matches!(err, sailbulk_parse::Error::FileChanged { after: 1000, .. }),
            "mmap={mmap}: {err}"
        );
        assert!(err.to_string().contains("changed size while it was read"));
    }
}

/// A line appended to the file while its last block is merged (as the sink hears of the
/// progress) is a change of size that the run reports.
#[test]
fn a_file_that_grows_while_its_last_block_is_checked_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grows.json");
    for (mmap, threads) in [(true, 1), (true, 2), (false, 1), (false, 2)] {
        std::fs::write(&path, sample(100)).unwrap();
        let mut b = ValidatorBuilder::new();
        b.mmap(mmap).threads(threads);
        let mut sink = OnFirstProgress(Some(|| {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            std::io::Write::write_all(&mut f, b"{\"email\":\"late@example.com\"}\n").unwrap();
        }));
        let err = b.build().validate_path(&path, &mut sink).unwrap_err();
        assert!(
            matches!(err, sailbulk_parse::Error::FileChanged { .. }),
            "mmap={mmap} threads={threads}: {err}"
        );
    }
}

/// procfs files say they are empty and are not: they are read, as if they were not files.
#[cfg(target_os = "linux")]
#[test]
fn a_file_whose_size_is_0_is_read_to_its_end() {
    let path = Path::new("/proc/version");
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
    assert!(!bytes.is_empty());
    for mmap in [true, false] {
        let report = ValidatorBuilder::new()
            .mmap(mmap)
            .build()
            .report_path(path, 0)
            .unwrap();
        assert_eq!(report.summary.bytes, bytes.len() as u64, "mmap {mmap}");
        assert_eq!(report.summary.lines, 1, "mmap {mmap}");
    }
}

#[test]
fn a_missing_file_is_an_error_not_a_finding() {
    let err = ValidatorBuilder::new()
        .build()
        .report_path(std::path::Path::new("/nonexistent/x.json"), 0)
        .unwrap_err();
    assert!(matches!(err, sailbulk_parse::Error::Open { .. }));
    assert!(err
        .to_string()
        .starts_with("cannot open /nonexistent/x.json"));
}

#[test]
fn a_sink_can_stop_early() {
    struct FirstOnly(usize);
    impl Sink for FirstOnly {
        fn finding(&mut self, _: Finding) -> ControlFlow<()> {
            self.0 += 1;
            ControlFlow::Break(())
        }
    }
    let mut sink = FirstOnly(0);
    let mut b = ValidatorBuilder::new();
    b.block_size(1);
    let summary = b
        .build()
        .validate_reader(std::io::Cursor::new(sample(4000)), &mut sink)
        .unwrap();
    assert_eq!(sink.0, 1);
    assert!(summary.stopped);
    assert!(!summary.is_valid());
    assert!(summary.lines < 4000);
}

/// A sink that wants only its next few findings whole gets those whole, and the same findings
/// (line, column, severity, code) and counts as a sink that wants all of them, the rest bare:
/// no field and an empty message. Whatever the threads, the block size, and however the block's
/// findings fall among its pieces.
#[test]
fn a_sink_that_wants_few_details_gets_those_whole_and_the_rest_bare() {
    /// Keeps every finding; wants the first `keep` whole.
    struct Bare {
        keep: usize,
        seen: Vec<Finding>,
    }
    impl Sink for Bare {
        fn finding(&mut self, f: Finding) -> ControlFlow<()> {
            self.seen.push(f);
            ControlFlow::Continue(())
        }
        fn details_wanted(&self) -> u64 {
            self.keep.saturating_sub(self.seen.len()) as u64
        }
    }
    let input = sample(4000);
    let read = || std::io::Cursor::new(input.clone());
    for (threads, block, piece) in [
        (1, 16 << 10, 4 << 10),
        (2, 16 << 10, 1 << 10),
        (2, 1 << 20, 64 << 10),
    ] {
        let mut b = ValidatorBuilder::new();
        b.threads(threads)
            .block_size(block)
            .chunk_size(piece)
            .strict(true);
        let validator = b.build();
        let mut full = Bare {
            keep: usize::MAX,
            seen: Vec::new(),
        };
        let all = validator.validate_reader(read(), &mut full).unwrap();
        assert!(full.seen.len() > 500);
        assert!(full.seen.iter().all(|f| !f.message.is_empty()));
        for keep in [0, 1, 5, 400] {
            let mut bare = Bare {
                keep,
                seen: Vec::new(),
            };
            let counted = validator.validate_reader(read(), &mut bare).unwrap();
            let case = format!("threads={threads} block={block} keep={keep}");
            assert_eq!(all, counted, "{case}");
            let key = |f: &Finding| (f.line, f.column, f.severity, f.code);
            assert!(
                full.seen.iter().map(key).eq(bare.seen.iter().map(key)),
                "{case}"
            );
            // The first `keep` are whole, and every finding is whole or bare.
            assert_eq!(bare.seen[..keep], full.seen[..keep], "{case}");
            for (f, whole) in bare.seen.iter().zip(&full.seen) {
                assert!(
                    f == whole || (f.message.is_empty() && f.field.is_none()),
                    "{case}"
                );
            }
            // With small blocks, the last, from blocks checked after the sink had its fill, are
            // bare. (In one large block, each piece brings its first `keep` whole.)
            if block == 16 << 10 {
                let last = bare.seen.last().unwrap();
                assert_eq!((last.message.as_str(), &last.field), ("", &None), "{case}");
            }
        }
    }
    // A report with a limit lists its findings whole and counts the rest.
    let report = ValidatorBuilder::new().build().report_slice(&input, 3);
    assert_eq!(report.findings.len(), 3);
    assert!(report.findings.iter().all(|f| !f.message.is_empty()));
    assert_eq!(
        report.summary.errors + report.summary.warnings,
        3 + report.omitted
    );
}

/// A run its sink stopped takes no further block: the error of a bad gzip member after the block
/// where it stopped is not met, and the run ends stopped, not with a read error.
#[test]
fn a_stopped_run_reads_no_further() {
    struct FirstOnly;
    impl Sink for FirstOnly {
        fn finding(&mut self, _: Finding) -> ControlFlow<()> {
            ControlFlow::Break(())
        }
    }
    // One full block of 64 KiB, then the bad member before a second block is full.
    let input = sample(1300);
    assert!(
        (80 << 10..120 << 10).contains(&input.len()),
        "{}",
        input.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let path = damaged_gzip(dir.path(), &input);
    for threads in [1, 2] {
        let mut b = ValidatorBuilder::new();
        b.threads(threads).block_size(64 << 10);
        let summary = b.build().validate_path(&path, &mut FirstOnly).unwrap();
        assert!(summary.stopped, "threads={threads}");
    }
    // Not stopped, the same file is a read error.
    let err = ValidatorBuilder::new()
        .build()
        .report_path(&path, 0)
        .unwrap_err();
    assert!(matches!(err, sailbulk_parse::Error::Read { .. }), "{err}");
}

/// A read that fails part way (here a bad gzip member after a good one) ends the run with the
/// error, after the lines read before it were checked and handed over: a damaged file still
/// gets its findings up to the damage, whether the failure comes in the first block or a later
/// one.
#[test]
fn lines_read_before_a_read_error_are_checked_and_handed_over() {
    let input = sample(1300);
    let whole = run_all_paths(&ValidatorBuilder::new(), &input);
    assert!(!whole.findings.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let path = damaged_gzip(dir.path(), &input);
    for threads in [1, 2] {
        for block in [16 << 10, 16 << 20] {
            let mut b = ValidatorBuilder::new();
            b.threads(threads).block_size(block);
            let mut sink = Recorder::default();
            let err = b.build().validate_path(&path, &mut sink).unwrap_err();
            let name = format!("threads={threads} block={block}");
            let checked = read_failed_after(&err, 1300, &name);
            // The counts of the lines checked are those of the whole input.
            let expected = Summary {
                gzip: true,
                ..whole.summary.clone()
            };
            assert_eq!(*checked, expected, "{name}");
            assert!(err.to_string().ends_with("after line 1300"), "{err}");
            assert_eq!(sink.findings, whole.findings, "{name}");
            assert!(sink.valid == whole.valid, "{name}: the valid lines differ");
            assert!(
                sink.invalid == whole.invalid,
                "{name}: the invalid lines differ"
            );
        }
    }
}

/// A reader that fails after its bytes: the lines it gave whole are checked, the one it cut
/// short is not, and the error names the last line checked (none when it fails at once).
#[test]
fn a_read_error_after_a_cut_line_names_the_last_whole_line() {
    struct FailsAfter(std::io::Cursor<Vec<u8>>);
    impl std::io::Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::Error::other("the disk is on fire")),
                n => Ok(n),
            }
        }
    }
    let good = b"{\"email\":\"a@example.com\"}\n".as_slice();
    let bad = b"{\"email\":\"not an address\"}\n".as_slice();
    let cut = b"{\"email\":\"b@exa".as_slice();
    for threads in [1, 2] {
        let mut b = ValidatorBuilder::new();
        b.threads(threads);
        let validator = b.build();

        let mut sink = Recorder::default();
        let bytes = FailsAfter(std::io::Cursor::new([good, bad, cut].concat()));
        let err = validator.validate_reader(bytes, &mut sink).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read - after line 2",
            "threads={threads}"
        );
        let checked = read_failed_after(&err, 2, &format!("threads={threads}"));
        assert_eq!(checked.errors, 1);
        let lines: Vec<(u64, Code)> = sink.findings.iter().map(|f| (f.line, f.code)).collect();
        assert_eq!(lines, [(2, Code::InvalidEmail)], "threads={threads}");
        assert_eq!(sink.valid, good, "threads={threads}");
        assert_eq!(sink.invalid, bad, "threads={threads}");

        let mut sink = Recorder::default();
        let err = validator
            .validate_reader(FailsAfter(std::io::Cursor::new(cut.to_vec())), &mut sink)
            .unwrap_err();
        assert_eq!(err.to_string(), "cannot read -", "threads={threads}");
        assert!(sink.findings.is_empty() && sink.valid.is_empty() && sink.invalid.is_empty());
    }
}

/// `input` gzip-compressed in `dir`, followed by a member that is not gzip.
/// Data after the last gzip member that is not one (zero padding, text) is named as trailing
/// data with its offset, after every line before it was checked; members are still read one
/// after another.
#[test]
fn trailing_data_after_the_last_gzip_member_is_named_with_its_offset() {
    let input = sample(1300);
    let whole = run_all_paths(&ValidatorBuilder::new(), &input);
    let dir = tempfile::tempdir().unwrap();
    for members in [1, 3] {
        for tail in [&b"\0\0\0\0\0\0\0\0"[..], b"garbage\n", b"\x1f"] {
            let packed = gzip(&input, members);
            let path = dir.path().join("trailing.json.gz");
            std::fs::write(&path, [&packed[..], tail].concat()).unwrap();
            let mut sink = Recorder::default();
            let err = ValidatorBuilder::new()
                .build()
                .validate_path(&path, &mut sink)
                .unwrap_err();
            let name = format!("members={members} tail={tail:?}");
            let expected = Summary {
                gzip: true,
                ..whole.summary.clone()
            };
            assert_eq!(*read_failed_after(&err, 1300, &name), expected, "{name}");
            let chain = sailbulk_parse::error_chain(&err);
            if tail != b"\x1f" {
                let expected = format!(
                    "trailing data after the last gzip member, from byte {} of the compressed file",
                    packed.len()
                );
                assert!(chain.contains(&expected), "{name}: {chain}");
            }
            assert_eq!(sink.findings, whole.findings, "{name}");
        }
    }
}

/// That `err` is a read that failed after `lines` whole lines were read and checked; their counts.
fn read_failed_after<'e>(err: &'e sailbulk_parse::Error, lines: u64, name: &str) -> &'e Summary {
    match err {
        sailbulk_parse::Error::Read { checked, .. } if checked.lines == lines => checked,
        _ => panic!("{name}: {err:?}"),
    }
}

fn damaged_gzip(dir: &Path, input: &[u8]) -> PathBuf {
    let mut packed = gzip(input, 1);
    packed.extend_from_slice(b"\x1f\x8b this is not a gzip member");
    let path = dir.join("damaged.json.gz");
    std::fs::write(&path, &packed).unwrap();
    path
}

#[test]
fn too_many_lists_is_reported_once_on_the_right_line() {
    let mut input = Vec::new();
    for i in 0..2005 {
        input.extend_from_slice(
            format!("{{\"email\":\"a@example.com\",\"lists\":{{\"L{i}\":1,\"Main\":1}}}}\n")
                .as_bytes(),
        );
    }
    let outcome = run_all_paths(&ValidatorBuilder::new(), &input);
    let lists: Vec<_> = outcome
        .findings
        .iter()
        .filter(|f| f.code == Code::TooManyLists)
        .collect();
    assert_eq!(lists.len(), 1);
    // Main and L0..L1998 make 2000; L1999 on line 2000 is the 2001st.
    assert_eq!(lists[0].line, 2000);
    assert_eq!(lists[0].field.as_deref(), Some("lists.L1999"));
}

/// A reader that gives its bytes at most `step` at a time and counts the reads made on a thread
/// of a rayon pool and off one; it panics when asked for more after `panic_after` reads.
struct Watched {
    bytes: std::io::Cursor<Vec<u8>>,
    step: usize,
    panic_after: Option<usize>,
    reads: std::sync::Arc<[std::sync::atomic::AtomicUsize; 2]>,
}

impl std::io::Read for Watched {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering;
        let on_pool = usize::from(rayon::current_thread_index().is_some());
        let made = self.reads[on_pool].fetch_add(1, Ordering::Relaxed);
        if self.panic_after.is_some_and(|n| made + 1 > n) {
            panic!("the source failed");
        }
        let n = buf.len().min(self.step);
        self.bytes.read(&mut buf[..n])
    }
}

/// Gzip input is decompressed by a task on the pool that checks it, not by a thread beside the
/// pool's, when two threads or more check it (the first read, which looks for gzip's magic
/// bytes, is the calling thread's); any other input, or a run on one thread, is read by a
/// thread of its own. The report is the same either way.
#[test]
fn gzip_is_decompressed_on_the_pool_that_checks_it() {
    let input = sample(3000);
    let want = ValidatorBuilder::new()
        .threads(1)
        .build()
        .report_slice(&input, 0);
    for (gzipped, threads, on_pool) in [
        (true, 2, true),
        (true, 1, false),
        (false, 2, false),
        (false, 1, false),
    ] {
        let reads = std::sync::Arc::new([0.into(), 0.into()]);
        let bytes = if gzipped {
            gzip(&input, 3)
        } else {
            input.clone()
        };
        let reader = Watched {
            bytes: std::io::Cursor::new(bytes),
            step: 256,
            panic_after: None,
            reads: reads.clone(),
        };
        let mut b = ValidatorBuilder::new();
        b.threads(threads).block_size(16 << 10).chunk_size(2 << 10);
        let validator = b.build();
        let mut got = sailbulk_parse::Collect::new(0);
        let summary = validator.validate_reader(reader, &mut got).unwrap();
        let name = format!("gzip={gzipped} threads={threads}");
        assert_eq!(summary.gzip, gzipped, "{name}");
        let got = got.into_report("-".into(), summary);
        assert_eq!(got.findings, want.findings, "{name}");
        let plain = sailbulk_parse::Summary {
            gzip: false,
            ..got.summary
        };
        assert_eq!(plain, want.summary, "{name}");
        let [off, on] = [0, 1].map(|i| reads[i].load(std::sync::atomic::Ordering::Relaxed));
        if on_pool {
            assert_eq!(off, 1, "{name}: only the first read is off the pool");
            assert!(on > 10, "{name}: {on} reads on the pool");
        } else {
            assert_eq!(on, 0, "{name}: {off} reads off the pool, {on} on it");
        }
    }
}

/// A reader that panics while a task on the pool decompresses it ends the run with a read error,
/// after the lines read before it, as it does on a thread of its own; the process goes on.
#[test]
fn a_reader_that_panics_is_a_read_error_on_the_pool_or_off_it() {
    let input = sample(3000);
    for threads in [2, 1] {
        let reader = Watched {
            bytes: std::io::Cursor::new(gzip(&input, 1)),
            step: 256,
            panic_after: Some(20),
            reads: std::sync::Arc::new([0.into(), 0.into()]),
        };
        let mut b = ValidatorBuilder::new();
        b.threads(threads).block_size(16 << 10).chunk_size(2 << 10);
        let err = b
            .build()
            .validate_reader(reader, &mut Recorder::default())
            .unwrap_err();
        match &err {
            sailbulk_parse::Error::Read { checked, .. } => {
                assert!(checked.lines < 3000, "threads={threads}: {err}");
            }
            _ => panic!("threads={threads}: {err:?}"),
        }
        let message = sailbulk_parse::error_chain(&err);
        assert!(message.contains("panicked"), "threads={threads}: {message}");
    }
}

/// Runs that decompress on one pool at once (four threads of their own, each checking a gzip file
/// on rayon's global pool and on a pool of two that they share) all end and agree: a task that
/// decompresses one input and, waiting for a buffer, runs the pool's other work may run another
/// input's task inside it, which holds its own run back but never stops the others.
#[test]
fn runs_that_decompress_on_one_pool_at_once_end_and_agree() {
    let input = sample(6000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.json.gz");
    std::fs::write(&path, gzip(&input, 2)).unwrap();
    let want = ValidatorBuilder::new()
        .threads(1)
        .build()
        .report_slice(&input, 0);
    let shared = {
        let mut b = ValidatorBuilder::new();
        b.threads(2).chunk_size(4 << 10).block_size(16 << 10);
        std::sync::Arc::new(b.build())
    };
    let (tx, rx) = std::sync::mpsc::channel();
    for run in 0..8 {
        let (tx, path, shared) = (tx.clone(), path.clone(), shared.clone());
        std::thread::spawn(move || {
            let report = if run % 2 == 0 {
                shared.report_path(&path, 0)
            } else {
                let mut b = ValidatorBuilder::new();
                b.threads(0).chunk_size(4 << 10).block_size(16 << 10);
                b.build().report_path(&path, 0)
            };
            let _ = tx.send(report.unwrap());
        });
    }
    for _ in 0..8 {
        let report = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("a run never ended");
        assert_eq!(report.findings, want.findings);
        assert_eq!(report.summary.lines, want.summary.lines);
        assert!(report.summary.gzip);
    }
}
