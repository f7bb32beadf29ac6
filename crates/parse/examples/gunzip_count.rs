//! The gzip baseline of the validator's benchmark: decompress a file with the same flate2 backend
//! the validator uses (zlib-rs, all members) and count its bytes and lines, nothing else.
//!
//! `gunzip_count FILE.gz` prints the decompressed size and line count.

use std::fs::File;
use std::io::{BufReader, Read};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: gunzip_count FILE.gz");
        std::process::exit(2);
    };
    let file = File::open(&path).expect("the file opens");
    let mut decoder =
        flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(256 << 10, file));
    let mut buf = vec![0u8; 1 << 20];
    let (mut bytes, mut lines) = (0u64, 0u64);
    loop {
        let n = decoder.read(&mut buf).expect("the file decompresses");
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
    println!("{bytes} bytes, {lines} lines");
}
