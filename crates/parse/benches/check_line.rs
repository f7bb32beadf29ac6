//! Criterion benches of the validator: the per-line check, and whole-buffer validation with one
//! and two threads. Throughput is in bytes; each iteration asserts the record count, so a broken
//! validator cannot post a fast number.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use sailbulk_parse::{Format, ValidatorBuilder};

/// Realistic update lines: vars of several types, nested vars, lists, optouts, ids with keys,
/// unicode and escapes.
const LINES: &[&str] = &[
    r#"{"email":"james.dubois293@example.org","vars":{"interests":["fútbol","photography","cooking"],"city":"New York"}}"#,
    r#"{"email":"mei-silva1998@example.com","lists":{"Breaking News":1,"Events NYC":1}}"#,
    r#"{"id":"584609","key":"extid","vars":{"note":"prefers weekends","last_order":{"sku":"SKU-06482","qty":2,"price":114.22,"gift":false},"visits":335}}"#,
    r#"{"email":"john33185@orange.fr","vars":{"tags":["promo","sailthru","2024"],"visits":339,"loyalty_tier":"gold","first_name":"Zoë"},"optout":"none"}"#,
    r#"{"email":"ana+news@mail.example.co.uk","signup_date":"Jan 18, 2013","vars":{"quote":"she said \"hi\"\n","score2":12.5,"vip":true,"nick":null}}"#,
    r#"{"id":"ann@example.com","keys":{"extid":"12"},"fields":{"keys":1},"vars":{"updated":"yes"},"lists":{"Update List":1,"Café Club":0}}"#,
];

fn buffer(target: usize) -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(target + 512);
    let mut n = 0u64;
    while out.len() < target {
        out.extend_from_slice(LINES[n as usize % LINES.len()].as_bytes());
        out.push(b'\n');
        n += 1;
    }
    (out, n)
}

fn check_line(c: &mut Criterion) {
    let mut b = ValidatorBuilder::new();
    b.format(Some(Format::Json));
    let v = b.build();
    let bytes: usize = LINES.iter().map(|l| l.len()).sum();
    let mut group = c.benchmark_group("check_line");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("six realistic lines", |bench| {
        bench.iter(|| {
            for (i, line) in LINES.iter().enumerate() {
                let findings = v.check_line(black_box(line.as_bytes()), i as u64 + 2);
                assert!(findings.is_empty());
            }
        })
    });
    group.finish();
}

fn validate_buffer(c: &mut Criterion) {
    let (data, records) = buffer(8 << 20);
    let mut group = c.benchmark_group("validate_slice_8MiB");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(20);
    for threads in [1, 2] {
        let mut b = ValidatorBuilder::new();
        b.threads(threads);
        let v = b.build();
        group.bench_function(format!("threads={threads}"), |bench| {
            bench.iter(|| {
                let report = v.report_slice(black_box(&data), 10);
                assert_eq!(report.summary.records, records);
                assert!(report.is_valid());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, check_line, validate_buffer);
criterion_main!(benches);
