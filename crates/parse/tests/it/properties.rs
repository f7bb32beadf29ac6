//! Property tests: random input never panics the validator, and its findings and line numbers are
//! those of a naive sequential reference that checks line by line, for any thread count and piece
//! size.

use proptest::prelude::*;
use sailbulk_parse::{Code, Finding, Format, ValidatorBuilder};

/// Pieces that random inputs are made of: JSON tokens, rule-relevant strings, line endings and
/// troublesome bytes.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b" ",
    b"\n",
    b"\r\n",
    b"\r",
    b"\"email\"",
    b"\"a@example.com\"",
    b"\"bad@\"",
    b"\"id\"",
    b"\"vars\"",
    b"\"lists\"",
    b"\"Main\"",
    b"\"1color\"",
    b"\"optout\"",
    b"\"all\"",
    b"0",
    b"1",
    b"2",
    b"1e999",
    b"9007199254740993",
    b"\"\\ud800\"",
    b"\"\\u00e9\"",
    b"\xff",
    b"\0",
    // Blank in a list of addresses, invalid JSON in an update file: the findings of a line of
    // them depend on a format that a later line may show.
    b"\x0b",
    b"\x0c",
    b"\xEF\xBB\xBF",
    "Zoë".as_bytes(),
    b"a@example.com",
    b"{\"email\":\"a@example.com\"}\n",
    b"{\"email\":\"a@example.com\",\"vars\":{\"x\":1,\"x\":2}}\n",
];

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(TOKENS).prop_map(|t| t.to_vec()),
            1 => any::<u8>().prop_map(|b| vec![b]),
        ],
        0..120,
    )
    .prop_map(|pieces| pieces.concat())
}

fn key(f: &Finding) -> (u64, Option<u32>, Code, Option<String>) {
    (f.line, f.column, f.code, f.field.clone())
}

/// Splits on `\n` and checks each line on its own, as a person would by hand.
fn reference(input: &[u8], format: Format) -> Vec<(u64, Option<u32>, Code, Option<String>)> {
    let mut b = ValidatorBuilder::new();
    b.format(Some(format));
    let v = b.build();
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    if input.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == b'\n')
        .enumerate()
        .flat_map(|(i, line)| v.check_line(line, i as u64 + 1))
        .map(|f| key(&f))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn findings_match_a_sequential_reference(input in input()) {
        let base = ValidatorBuilder::new().build().report_slice(&input, 0);
        let format = base.summary.format.unwrap_or(Format::Json);
        let expected = reference(&input, format);
        let expected_lines = if input.is_empty() { 0 } else {
            input.strip_suffix(b"\n").unwrap_or(&input).split(|&b| b == b'\n').count() as u64
        };
        for (threads, chunk, block) in [(1, 1, 1), (2, 7, 3), (2, 1, 64), (3, 1 << 20, 1 << 20)] {
            let mut b = ValidatorBuilder::new();
            b.threads(threads).chunk_size(chunk).block_size(block);
            let v = b.build();
            let report = v.report_slice(&input, 0);
            let got: Vec<_> = report.findings.iter().map(key).collect();
            prop_assert_eq!(&got, &expected, "slice threads={} chunk={}", threads, chunk);
            prop_assert_eq!(report.summary.lines, expected_lines);
            let mut sink = sailbulk_parse::Collect::new(0);
            let summary = v.validate_reader(std::io::Cursor::new(input.clone()), &mut sink).unwrap();
            let streamed = sink.into_report("-".into(), summary);
            let got: Vec<_> = streamed.findings.iter().map(key).collect();
            prop_assert_eq!(&got, &expected, "reader threads={} block={}", threads, block);
        }
    }
}
