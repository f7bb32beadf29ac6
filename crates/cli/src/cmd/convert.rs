//! `sailbulk convert`: CSV to update JSON, into one file or size-capped parts.

use super::{print_error, publish, EXIT_ERROR, EXIT_FINDINGS, EXIT_OK};
use clap::ValueEnum;
use sailbulk_build::{
    convert_csv, parse_size, part_cap, AtomicFile, ChunkError, ChunkWriter, ConvertOptions,
    ConvertSink, Empty, Identity, Manifest, RejectsWriter, Source, StagedDir, Types, MANIFEST_FILE,
};
use sailbulk_spec::JobKind;
use std::io::{self, Write};
use std::path::PathBuf;

/// Arguments of `sailbulk convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The CSV to convert; `-` reads standard input; gzip is decompressed. UTF-8, with or without
    /// a byte-order mark, any line endings, quoted fields with delimiters, quotes and newlines.
    #[arg(value_name = "CSV")]
    input: PathBuf,

    /// Where to write: a file, or with --max-bytes (or an existing directory) a directory of
    /// parts with a manifest.json.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,

    /// The field delimiter: one character, or `\t` (or `tab`) for TSV.
    #[arg(long, default_value = ",", value_name = "C")]
    delimiter: String,

    /// The column holding email addresses (default: the column named `email`, any case).
    #[arg(long, value_name = "NAME", conflicts_with = "id_column")]
    email_column: Option<String>,

    /// The column holding ids, with --key.
    #[arg(long, value_name = "NAME", requires = "key")]
    id_column: Option<String>,

    /// The identity key of --id-column.
    #[arg(long, value_enum, requires = "id_column")]
    key: Option<KeyArg>,

    /// The columns that become vars, comma-separated (default: every other column).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    vars: Option<Vec<String>>,

    /// A var name for a column whose header is not one (repeatable; `=var` names the column
    /// with no header).
    #[arg(long, value_name = "COL=var")]
    rename: Vec<String>,

    /// A separator that nests vars: with `__`, `address__city` becomes {"address":{"city":...}}.
    #[arg(long, value_name = "SEP")]
    nest: Option<String>,

    /// Add every record to this list: "lists":{NAME:1} (repeatable).
    #[arg(long = "list", value_name = "NAME")]
    lists: Vec<String>,

    /// A column of `;`-separated list items, each `name` or `name:0` / `name:1`.
    #[arg(long, value_name = "COL")]
    lists_column: Option<String>,

    /// A column of optout values (all, blast, basic, none).
    #[arg(long, value_name = "COL")]
    optout_column: Option<String>,

    /// A column of signup dates.
    #[arg(long, value_name = "COL")]
    signup_date_column: Option<String>,

    /// How cells become values: `infer` makes integers, decimals and true/false numbers and
    /// booleans (leading zeros and long digit strings stay strings); `string` keeps text.
    #[arg(long, value_enum, default_value_t = TypesArg::Infer)]
    types: TypesArg,

    /// What empty cells become: left out, or null.
    #[arg(long, value_enum, default_value_t = EmptyArg::Omit)]
    empty: EmptyArg,

    /// Write parts of at most SIZE into the OUT directory (500MB, 1GB, plain bytes).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_bytes: Option<u64>,

    /// Write rejected rows here as CSV: the row as read plus `line` and `reason` columns.
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,

    /// Replace an existing output directory.
    #[arg(long)]
    force: bool,

    /// Do not re-check each finished record with the validator (every field is still checked as
    /// it is written, by the same rules).
    #[arg(long)]
    no_verify: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum KeyArg {
    Extid,
    Sid,
    Sms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TypesArg {
    Infer,
    String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EmptyArg {
    Omit,
    Null,
}

fn delimiter(s: &str) -> Option<u8> {
    match s {
        "\\t" | "tab" | "\t" => Some(b'\t'),
        _ if s.len() == 1 => Some(s.as_bytes()[0]),
        _ => None,
    }
}

/// Where records go: one file, or parts.
enum Records {
    File(AtomicFile),
    Parts(Box<ChunkWriter>),
}

struct CliSink {
    records: Records,
    rejects: Option<RejectsWriter<AtomicFile>>,
    shown: u64,
    /// A record longer than the part cap. The converter rejects such rows before they get here
    /// (`max_record_bytes` is the cap); this stays as a guard, and ends the run with exit 1.
    too_long: Option<ChunkError>,
}

impl ConvertSink for CliSink {
    fn header(&mut self, header: &[String]) -> io::Result<()> {
        match &mut self.rejects {
            Some(w) => w.header(header),
            None => Ok(()),
        }
    }

    fn record(&mut self, json: &[u8], line: u64) -> io::Result<()> {
        match &mut self.records {
            Records::File(f) => f.write_all(json),
            Records::Parts(p) => match p.write_lines(json, line) {
                Ok(_) => Ok(()),
                Err(e @ ChunkError::LineTooLong { .. }) => {
                    let message = e.to_string();
                    self.too_long = Some(e);
                    Err(io::Error::other(message))
                }
                Err(e) => Err(io::Error::other(e)),
            },
        }
    }

    fn reject(&mut self, row: &csv::ByteRecord, line: u64, reason: &str) -> io::Result<()> {
        match &mut self.rejects {
            Some(w) => w.reject(row, line, reason),
            None => {
                // Without --rejects the first reasons are shown, so nothing is dropped silently.
                if self.shown < 10 {
                    eprintln!("sailbulk: line {line}: row rejected: {reason}");
                }
                self.shown += 1;
                Ok(())
            }
        }
    }
}

/// Runs `sailbulk convert`; returns the exit status.
pub fn run(args: Args) -> u8 {
    let Some(delim) = delimiter(&args.delimiter) else {
        eprintln!("sailbulk: error: --delimiter must be one character or \\t");
        return EXIT_ERROR;
    };
    let mut renames = Vec::new();
    for r in &args.rename {
        match r.split_once('=') {
            // An empty COL names the one column with no header.
            Some((c, v)) if !v.is_empty() => renames.push((c.to_string(), v.to_string())),
            _ => {
                eprintln!("sailbulk: error: --rename {r:?}: write COL=var");
                return EXIT_ERROR;
            }
        }
    }
    let identity = match (&args.id_column, args.key) {
        (Some(column), Some(key)) => Some(Identity::Id {
            column: column.clone(),
            key: match key {
                KeyArg::Extid => "extid",
                KeyArg::Sid => "sid",
                KeyArg::Sms => "sms",
            }
            .to_string(),
        }),
        _ => Some(Identity::Email(args.email_column.clone())),
    };
    let to_dir = args.max_bytes.is_some() || args.output.is_dir();
    let cap = match part_cap(JobKind::Update, args.max_bytes) {
        Ok(cap) => cap,
        Err(e) => {
            print_error("--max-bytes: ", &e);
            return EXIT_ERROR;
        }
    };
    let options = ConvertOptions {
        delimiter: Some(delim),
        identity,
        vars: args.vars.clone(),
        renames,
        nest: args.nest.clone(),
        lists: args.lists.clone(),
        lists_column: args.lists_column.clone(),
        optout_column: args.optout_column.clone(),
        signup_date_column: args.signup_date_column.clone(),
        types: match args.types {
            TypesArg::Infer => Types::Infer,
            TypesArg::String => Types::String,
        },
        empty: match args.empty {
            EmptyArg::Omit => Empty::Omit,
            EmptyArg::Null => Empty::Null,
        },
        skip_verify: args.no_verify,
        // A record longer than a part can hold is a bad row, rejected like the others.
        max_record_bytes: to_dir.then_some(cap),
    };
    let (input, _gzip) = match sailbulk_parse::open_reader(&args.input) {
        Ok(r) => r,
        Err(e) => {
            print_error("", &e);
            return EXIT_ERROR;
        }
    };
    let mut staging = None;
    let records = if to_dir {
        let dir = match StagedDir::new(&args.output, Some(&args.input), args.force) {
            Ok(d) => d,
            Err(e) => {
                print_error(&format!("{}: ", args.output.display()), &e);
                return EXIT_ERROR;
            }
        };
        let parts = ChunkWriter::new(dir.path(), cap, "json");
        staging = Some(dir);
        parts.map(|p| Records::Parts(Box::new(p)))
    } else {
        AtomicFile::create(&args.output).map(Records::File)
    };
    let records = match records {
        Ok(r) => r,
        Err(e) => {
            print_error(&format!("cannot create {}: ", args.output.display()), &e);
            return EXIT_ERROR;
        }
    };
    let rejects = match &args.rejects {
        Some(path) => match AtomicFile::create(path) {
            Ok(f) => Some(RejectsWriter::new(f, delim)),
            Err(e) => {
                print_error(&format!("cannot create {}: ", path.display()), &e);
                return EXIT_ERROR;
            }
        },
        None => None,
    };
    let mut sink = CliSink {
        records,
        rejects,
        shown: 0,
        too_long: None,
    };
    let summary = match convert_csv(input, &options, &mut sink) {
        Ok(s) => s,
        Err(_) if sink.too_long.is_some() => {
            let e = sink.too_long.take().expect("checked");
            print_error("", &e);
            return EXIT_FINDINGS;
        }
        Err(e) => {
            print_error("", &e);
            return EXIT_ERROR;
        }
    };
    if sink.rejects.is_none() && sink.shown > 10 {
        eprintln!(
            "sailbulk: {} more rows rejected (--rejects FILE keeps them all)",
            sink.shown - 10
        );
    }
    if let Err(e) = finish(sink, staging, &args, &summary) {
        print_error(&format!("cannot write {}: ", args.output.display()), &e);
        return EXIT_ERROR;
    }
    println!(
        "{}: rows in: {}, records out: {}, rejected: {}",
        args.input.display(),
        summary.rows,
        summary.records,
        summary.rejected
    );
    if summary.rejected > 0 {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

/// Commits the outputs: the records file or the parts with their manifest (the directory appears
/// whole), then the rejects file.
fn finish(
    sink: CliSink,
    staging: Option<StagedDir>,
    args: &Args,
    summary: &sailbulk_build::ConvertSummary,
) -> io::Result<()> {
    match sink.records {
        Records::File(f) => f.commit()?,
        Records::Parts(parts) => {
            let cap = parts.max_bytes();
            let parts = parts.finish().map_err(io::Error::other)?;
            let staging = staging.expect("parts are written into a staging directory");
            let manifest = Manifest {
                version: 1,
                job: JobKind::Update.as_str().to_string(),
                max_bytes: cap,
                source: Source {
                    path: args.input.display().to_string(),
                    bytes: summary.bytes,
                    lines: summary.rows,
                    missing_final_newline: false,
                    sha256: None,
                },
                parts,
                rejects: None,
            };
            manifest.write(&staging.path().join(MANIFEST_FILE))?;
            publish(staging)?;
        }
    }
    if let Some(w) = sink.rejects {
        w.into_inner()?.commit()?;
    }
    Ok(())
}
