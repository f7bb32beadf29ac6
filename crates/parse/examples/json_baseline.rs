//! The baselines the validator's benchmark is measured against: a JSON parser's verdict on every
//! line of a file, in parallel with rayon, and nothing else (no rules, no positions, no report).
//!
//! `json_baseline PARSER FILE [THREADS]` prints the number of lines and how many parse. PARSER:
//!
//! - `serde_json`: `serde_json::Value`, the verdict the validator's tests hold it to;
//! - `serde_json-ignored`: `serde::de::IgnoredAny`, syntax only and weaker (it lets `1e999`
//!   through and, reading from a slice, does not check UTF-8 inside strings);
//! - `sonic-rs`: `sonic_rs::Value`;
//! - `simd-json`: `simd_json::to_tape` on a copy of the line (it parses in place).
//!
//! Lines are split with memchr over 4 MiB pieces of the mapped file, as the validator does.

use rayon::prelude::*;
use std::fs::File;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(parser), Some(path)) = (args.next(), args.next()) else {
        eprintln!(
            "usage: json_baseline serde_json|serde_json-ignored|sonic-rs|simd-json FILE [THREADS]"
        );
        std::process::exit(2);
    };
    let check: fn(&[u8], &mut Vec<u8>) -> bool = match parser.as_str() {
        "serde_json" => |line, _| serde_json::from_slice::<serde_json::Value>(line).is_ok(),
        "serde_json-ignored" => {
            |line, _| serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
        }
        "sonic-rs" => |line, _| sonic_rs::from_slice::<sonic_rs::Value>(line).is_ok(),
        "simd-json" => |line, copy| {
            copy.clear();
            copy.extend_from_slice(line);
            simd_json::to_tape(copy).is_ok()
        },
        other => {
            eprintln!("unknown parser {other:?}");
            std::process::exit(2);
        }
    };
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("a thread pool");
    let file = File::open(&path).expect("the file opens");
    // SAFETY: a benchmark over a file nobody changes while it runs.
    let map = unsafe { memmap2::Mmap::map(&file).expect("the file maps") };
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < map.len() {
        let cut = (start + (4 << 20)).min(map.len());
        let end = memchr::memchr(b'\n', &map[cut..]).map_or(map.len(), |i| cut + i + 1);
        pieces.push(&map[start..end]);
        start = end;
    }
    let (lines, valid) = pieces
        .par_iter()
        .map(|piece| {
            let (mut lines, mut valid, mut copy) = (0u64, 0u64, Vec::new());
            let mut at = 0;
            for end in memchr::memchr_iter(b'\n', piece).chain([piece.len()]) {
                let line = &piece[at..end];
                at = end + 1;
                if !line.is_empty() {
                    lines += 1;
                    valid += u64::from(check(line, &mut copy));
                }
            }
            (lines, valid)
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    println!("{lines} lines, {valid} parse");
}
