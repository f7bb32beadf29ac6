//! The baseline of the conversion benchmark: the csv crate on one thread writing NDJSON (every
//! cell a JSON string under its header, no mapping, no checks).
//!
//! `csv_baseline FILE.csv > out.json`

use std::io::{BufWriter, Write};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: csv_baseline FILE.csv");
        std::process::exit(2);
    };
    let mut reader = csv::Reader::from_path(&path).expect("the CSV opens");
    let header: Vec<String> = reader
        .headers()
        .expect("a header")
        .iter()
        .map(|h| serde_json::to_string(h).expect("a string"))
        .collect();
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    while reader.read_record(&mut record).expect("a record") {
        out.write_all(b"{").unwrap();
        for (i, (name, cell)) in header.iter().zip(record.iter()).enumerate() {
            if i > 0 {
                out.write_all(b",").unwrap();
            }
            out.write_all(name.as_bytes()).unwrap();
            out.write_all(b":").unwrap();
            serde_json::to_writer(&mut out, cell).unwrap();
        }
        out.write_all(b"}\n").unwrap();
        rows += 1;
    }
    out.flush().unwrap();
    eprintln!("{rows} rows");
}
