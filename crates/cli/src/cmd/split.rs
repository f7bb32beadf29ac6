//! `sailbulk split`: split a file into parts under the job's size limit, with a manifest.

use super::{counted, human_bytes, print_error, publish, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use clap::ValueEnum;
use sailbulk_build::{parse_size, split_file, SplitError, SplitOptions, StagedDir};
use sailbulk_spec::JobKind;
use std::path::PathBuf;

/// Arguments of `sailbulk split`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The update file (JSON lines) or email file to split; `-` reads standard input; gzip is
    /// decompressed.
    #[arg(value_name = "FILE")]
    input: PathBuf,

    /// The directory to write the parts and manifest.json into.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,

    /// The cap per part (500MB, 1GB, plain bytes; at most, and by default, the job's upload
    /// limit).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_bytes: Option<u64>,

    /// The job the parts are for; `import` makes email-only parts (from an email file, or the
    /// addresses of an update file).
    #[arg(long, value_enum, default_value_t = JobArg::Update)]
    job: JobArg,

    /// Move lines that fail validation into DIR/rejects.json instead of failing the split.
    #[arg(long)]
    skip_invalid: bool,

    /// Do not check lines (faster; the parts are then only as good as the input).
    #[arg(long)]
    no_validate: bool,

    /// Threads to validate with (default: one per core).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,

    /// Replace an existing output directory.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum JobArg {
    Update,
    Import,
}

/// Runs `sailbulk split`; returns the exit status.
pub fn run(args: Args) -> u8 {
    let job = match args.job {
        JobArg::Update => JobKind::Update,
        JobArg::Import => JobKind::Import,
    };
    let staging = match StagedDir::new(&args.output, Some(&args.input), args.force) {
        Ok(d) => d,
        Err(e) => {
            print_error(&format!("{}: ", args.output.display()), &e);
            return EXIT_ERROR;
        }
    };
    let options = SplitOptions {
        job,
        max_bytes: args.max_bytes,
        skip_invalid: args.skip_invalid,
        validate: !args.no_validate,
        threads: args.threads.unwrap_or(0),
        source_sha256: None,
    };
    let outcome = match split_file(&args.input, staging.path(), &options) {
        Ok(o) => o,
        Err(SplitError::Invalid {
            count,
            first,
            findings,
        }) => {
            for f in &findings {
                println!("{}:{f}", args.input.display());
            }
            eprintln!(
                "sailbulk: {count} line(s) failed validation or hold no address to import (first on line {first}); nothing was written. Fix them, or pass --skip-invalid to set them aside in rejects.json"
            );
            return EXIT_FINDINGS;
        }
        Err(e @ SplitError::Chunk(sailbulk_build::ChunkError::LineTooLong { .. })) => {
            print_error("", &e);
            return EXIT_FINDINGS;
        }
        Err(e) => {
            print_error("", &e);
            return EXIT_ERROR;
        }
    };
    if let Err(e) = publish(staging) {
        print_error(&format!("cannot write {}: ", args.output.display()), &e);
        return EXIT_ERROR;
    }
    let m = &outcome.manifest;
    for part in &m.parts {
        println!(
            "{}  {:>12} bytes  {:>10} lines  lines {}-{}",
            args.output.join(&part.file).display(),
            part.bytes,
            part.lines,
            part.first_line,
            part.last_line
        );
    }
    println!(
        "{}: {}, {} into {} of at most {} in {}",
        args.input.display(),
        counted(m.source.lines, "line"),
        human_bytes(m.source.bytes),
        counted(m.parts.len() as u64, "part"),
        human_bytes(m.max_bytes),
        args.output.join(sailbulk_build::MANIFEST_FILE).display()
    );
    if m.source.missing_final_newline {
        eprintln!(
            "sailbulk: note: the input's last line had no line end; the last part ends it with \\n"
        );
    }
    if let Some(r) = &m.rejects {
        eprintln!(
            "sailbulk: {} invalid lines set aside in {}",
            r.lines,
            args.output.join(&r.file).display()
        );
    }
    EXIT_OK
}
