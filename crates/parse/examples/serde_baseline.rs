//! The baseline the validator's benchmark is measured against: serde_json's verdict on every line
//! of a file, in parallel with rayon, and nothing else (no rules, no positions, no report).
//!
//! `serde_baseline FILE [THREADS]` prints the number of lines and how many parse as JSON.

use rayon::prelude::*;
use std::fs::File;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: serde_baseline FILE [THREADS]");
        std::process::exit(2);
    };
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(0);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .expect("a thread pool");
    let file = File::open(&path).expect("the file opens");
    // SAFETY: a benchmark over a file nobody changes while it runs.
    let map = unsafe { memmap2::Mmap::map(&file).expect("the file maps") };
    let (lines, valid) = map
        .par_split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let ok = serde_json::from_slice::<serde_json::Value>(line).is_ok();
            (1u64, u64::from(ok))
        })
        .reduce(|| (0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    println!("{lines} lines, {valid} valid JSON");
}
