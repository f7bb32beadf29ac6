//! Round trips: CSV -> records whose vars equal the cells, and that the validator accepts; split
//! -> parts that concatenate to the input, none over its cap.

use proptest::prelude::*;
use sailbulk_build::{
    convert_csv, split_file, ChunkError, ConvertOptions, ConvertSink, SplitError, SplitOptions,
    Types,
};
use sailbulk_parse::ValidatorBuilder;
use serde_json::Value;
use std::io;

#[derive(Default)]
struct Collect {
    records: Vec<u8>,
    lines: Vec<u64>,
    rejects: Vec<String>,
}

impl ConvertSink for Collect {
    fn record(&mut self, json: &[u8], line: u64) -> io::Result<()> {
        self.records.extend_from_slice(json);
        self.lines.push(line);
        Ok(())
    }

    fn reject(&mut self, _row: &csv::ByteRecord, line: u64, reason: &str) -> io::Result<()> {
        self.rejects.push(format!("{line}: {reason}"));
        Ok(())
    }
}

fn cell() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(vec!["a", "Zoë", "東京", "🎉", " ", ",", "\"", "\n", "\r\n", ";", "0", "12", "x y", "\\", "\t", "\u{1}"]),
            1 => prop::sample::select(vec!["true", "007", "-3.5", "1e5"]),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

fn email() -> impl Strategy<Value = String> {
    (
        "[a-z]{1,8}",
        "[a-z]{1,6}",
        prop::sample::select(vec!["com", "co.uk", "org"]),
    )
        .prop_map(|(l, d, t)| format!("{l}@{d}.{t}"))
}

fn table() -> impl Strategy<Value = (usize, Vec<(String, Vec<String>)>)> {
    (1usize..5).prop_flat_map(|vars| {
        (
            Just(vars),
            prop::collection::vec((email(), prop::collection::vec(cell(), vars)), 1..30),
        )
    })
}

fn write_csv(vars: usize, rows: &[(String, Vec<String>)], crlf: bool, bom: bool) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(if crlf {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        })
        .from_writer(Vec::new());
    let mut header = vec!["email".to_string()];
    header.extend((0..vars).map(|i| format!("v{i}")));
    w.write_record(&header).unwrap();
    for (email, cells) in rows {
        let mut record = vec![email.clone()];
        record.extend(cells.iter().cloned());
        w.write_record(&record).unwrap();
    }
    let body = w.into_inner().unwrap();
    if bom {
        [b"\xEF\xBB\xBF".as_slice(), &body].concat()
    } else {
        body
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every row becomes a record whose vars equal its non-empty cells, and the whole output
    /// passes the validator.
    #[test]
    fn csv_converts_to_records_whose_vars_equal_the_cells(
        (vars, rows) in table(),
        crlf in any::<bool>(),
        bom in any::<bool>(),
        strings in any::<bool>(),
    ) {
        let input = write_csv(vars, &rows, crlf, bom);
        let options = ConvertOptions {
            types: if strings { Types::String } else { Types::Infer },
            ..Default::default()
        };
        let mut sink = Collect::default();
        let summary = convert_csv(io::Cursor::new(input), &options, &mut sink).unwrap();
        prop_assert_eq!(summary.rows, rows.len() as u64);
        prop_assert_eq!(summary.records + summary.rejected, summary.rows);
        prop_assert!(sink.rejects.is_empty(), "{:?}", sink.rejects);
        let text = String::from_utf8(sink.records.clone()).unwrap();
        let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        prop_assert_eq!(records.len(), rows.len());
        for (record, (email, cells)) in records.iter().zip(&rows) {
            prop_assert_eq!(record["email"].as_str(), Some(email.as_str()));
            for (i, cell) in cells.iter().enumerate() {
                let v = &record["vars"][format!("v{i}")];
                if cell.is_empty() {
                    prop_assert!(v.is_null());
                } else if let Some(s) = v.as_str() {
                    prop_assert_eq!(s, cell.as_str());
                } else {
                    // An inferred literal has the cell's value, written exactly as the cell reads.
                    prop_assert!(!strings);
                    match v {
                        Value::Bool(b) => prop_assert_eq!(b.to_string(), cell.clone()),
                        Value::Number(n) => prop_assert_eq!(n.as_f64(), cell.parse::<f64>().ok()),
                        other => prop_assert!(false, "{other:?}"),
                    }
                    let written = format!("\"v{}\":{}", i, cell);
                    prop_assert!(text.contains(&written));
                }
            }
        }
        let report = ValidatorBuilder::new().build().report_slice(&sink.records, 0);
        prop_assert!(report.is_valid(), "{:?}", report.findings.first());
    }

    /// Parts concatenate to the input, none passes its cap, and the manifest accounts for every
    /// line; a line longer than the cap is an error naming it.
    #[test]
    fn split_then_concatenate_equals_the_input(
        lines in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..40), 0..60),
        cap in 1u64..200,
        final_newline in any::<bool>(),
    ) {
        let mut input = lines.join(&b'\n');
        if final_newline && !lines.is_empty() {
            input.push(b'\n');
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.bin");
        std::fs::write(&path, &input).unwrap();
        let out = dir.path().join("parts");
        let options = SplitOptions { max_bytes: Some(cap), validate: false, ..Default::default() };
        let longest = input.split_inclusive(|&b| b == b'\n').map(|l| l.len() + usize::from(!l.ends_with(b"\n"))).max().unwrap_or(0);
        match split_file(&path, &out, &options) {
            Err(SplitError::Chunk(ChunkError::LineTooLong { bytes, max, .. })) => {
                prop_assert!(longest as u64 > cap);
                prop_assert!(bytes > max);
            }
            Err(e) => prop_assert!(false, "{e}"),
            Ok(outcome) => {
                prop_assert!(longest as u64 <= cap);
                let m = &outcome.manifest;
                let mut joined = Vec::new();
                let mut next_line = 1;
                for part in &m.parts {
                    let bytes = std::fs::read(out.join(&part.file)).unwrap();
                    prop_assert!(bytes.len() as u64 <= cap);
                    prop_assert_eq!(bytes.len() as u64, part.bytes);
                    prop_assert_eq!(part.first_line, next_line);
                    next_line = part.last_line + 1;
                    joined.extend(bytes);
                }
                let expected = if input.is_empty() || input.ends_with(b"\n") {
                    input.clone()
                } else {
                    [input.as_slice(), b"\n"].concat()
                };
                prop_assert_eq!(&joined, &expected);
                prop_assert_eq!(m.source.missing_final_newline, !input.is_empty() && !input.ends_with(b"\n"));
                prop_assert_eq!(m.parts.iter().map(|p| p.lines).sum::<u64>(), m.source.lines);
                // Filled as close to the cap as the lines allow: no two neighbours could merge.
                for pair in m.parts.windows(2) {
                    let first_next_line = std::fs::read(out.join(&pair[1].file)).unwrap();
                    let len = first_next_line.iter().position(|&b| b == b'\n').unwrap() as u64 + 1;
                    prop_assert!(pair[0].bytes + len > cap);
                }
            }
        }
    }
}

#[test]
fn validated_split_sets_invalid_lines_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.json");
    let mut input = String::new();
    for i in 0..50 {
        if i % 7 == 3 {
            input.push_str(&format!("{{\"email\":\"bad{i}\"}}\n"));
        } else {
            input.push_str(&format!(
                "{{\"email\":\"u{i}@example.com\",\"vars\":{{\"n\":{i}}}}}\n"
            ));
        }
    }
    std::fs::write(&path, &input).unwrap();
    let options = SplitOptions {
        max_bytes: Some(200),
        skip_invalid: true,
        ..Default::default()
    };
    let out = dir.path().join("parts");
    let outcome = split_file(&path, &out, &options).unwrap();
    assert_eq!(outcome.invalid_lines, 7);
    let rejects = std::fs::read_to_string(out.join("rejects.json")).unwrap();
    assert_eq!(rejects.lines().count(), 7);
    assert!(rejects.lines().all(|l| l.contains("bad")));
    let m = &outcome.manifest;
    assert_eq!(m.parts.iter().map(|p| p.lines).sum::<u64>() + 7, 50);
    assert_eq!(m.rejects.as_ref().unwrap().lines, 7);
    let reread = sailbulk_build::Manifest::read(&out.join("manifest.json")).unwrap();
    assert_eq!(&reread, m);
    for part in &m.parts {
        assert_eq!(
            sailbulk_build::sha256_file(&out.join(&part.file)).unwrap(),
            part.sha256
        );
        let report = ValidatorBuilder::new()
            .build()
            .report_path(&out.join(&part.file), 0)
            .unwrap();
        assert!(report.is_valid());
    }
    // Without skipping, the split fails and says where.
    let err = split_file(
        &path,
        &dir.path().join("p2"),
        &SplitOptions {
            max_bytes: Some(200),
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            SplitError::Invalid {
                count: 7,
                first: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn import_parts_hold_the_addresses_of_update_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.json");
    std::fs::write(
        &path,
        "{\"email\":\"a@example.com\",\"vars\":{\"x\":1}}\n{\"id\":\"b@example.com\"}\n{\"id\":\"7\",\"key\":\"extid\"}\n{\"email\":\" c@example.com \"}\n",
    )
    .unwrap();
    let options = SplitOptions {
        job: sailbulk_spec::JobKind::Import,
        skip_invalid: true,
        ..Default::default()
    };
    let out = dir.path().join("parts");
    let outcome = split_file(&path, &out, &options).unwrap();
    assert_eq!(outcome.manifest.parts.len(), 1);
    assert_eq!(outcome.manifest.parts[0].file, "part-00001.txt");
    assert_eq!(outcome.manifest.max_bytes, 10_000_000);
    let part = std::fs::read_to_string(out.join("part-00001.txt")).unwrap();
    assert_eq!(part, "a@example.com\nb@example.com\nc@example.com\n");
    assert_eq!(
        std::fs::read_to_string(out.join("rejects.json")).unwrap(),
        "{\"id\":\"7\",\"key\":\"extid\"}\n"
    );
}
