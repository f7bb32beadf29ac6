//! CSV to update JSON: a column mapping checked once against the header, then one JSON line per
//! row, each checked by the validator before it is written.

use crate::records::{
    self, parse_piece, read_batches, Batch, PieceRecords, Rows, BATCH_BYTES, PIECE_BYTES,
};
use rayon::prelude::*;
use sailbulk_parse::{
    email_problem, parse_signup_date, Finding, Format, Severity, Sink, Validator, ValidatorBuilder,
};
use sailbulk_spec::{list_name_problem, var_name_problem, ListNameProblem, Optout};
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::ops::ControlFlow;

/// How rows are identified.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Identity {
    /// By email address, from this column (default: the column named `email`, any case).
    Email(Option<String>),
    /// By `id` from this column, with this identity key (`extid`, `sid` or `sms`).
    Id {
        /// The column holding the id.
        column: String,
        /// The key it is (`key` in each line).
        key: String,
    },
}

/// How cells become JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Types {
    /// Integers of up to nine digits, decimals and `true`/`false` become numbers and booleans;
    /// leading zeros, longer digit strings (phone numbers, ids), negative zeros, exponents and
    /// anything ambiguous stay strings.
    #[default]
    Infer,
    /// Every cell is a string.
    String,
}

/// What an empty cell becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Empty {
    /// Left out of the record.
    #[default]
    Omit,
    /// `null`.
    Null,
}

/// The mapping from CSV columns to update fields. Every setting documents its default.
#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    /// The field delimiter. Default `,`.
    pub delimiter: Option<u8>,
    /// The identity column. Default: the column named `email`, any case.
    pub identity: Option<Identity>,
    /// The columns that become vars. Default: every column not used for something else.
    pub vars: Option<Vec<String>>,
    /// Var names for columns whose header is not one: `(column, var)`.
    pub renames: Vec<(String, String)>,
    /// A separator that nests vars: with `__`, `address__city` becomes `{"address":{"city":..}}`.
    pub nest: Option<String>,
    /// Lists every record subscribes to.
    pub lists: Vec<String>,
    /// A column of `;`-separated list items, each `name` (subscribe) or `name:0` / `name:1`.
    pub lists_column: Option<String>,
    /// A column holding `optout` values.
    pub optout_column: Option<String>,
    /// A column holding `signup_date` values.
    pub signup_date_column: Option<String>,
    /// How cells become values. Default: [`Types::Infer`].
    pub types: Types,
    /// What empty cells become. Default: [`Empty::Omit`].
    pub empty: Empty,
    /// Skip re-checking each finished record with the validator. Every field is checked as it
    /// is written, by the same rule functions the validator uses, and the JSON is well-formed by
    /// construction (the property tests run the validator over random conversions); the re-check
    /// is a second line of defence that costs about as much as the conversion. Default: `false`.
    pub skip_verify: bool,
    /// The longest record, in bytes with its `\n`, to write: a row whose record is longer is
    /// rejected (it could not go into any part of a split at that cap). Default: no limit.
    pub max_record_bytes: Option<u64>,
}

/// The mapping cannot be applied to this header. Nothing has been converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// A named column is not in the header.
    #[error("no column named {0:?} in the header")]
    UnknownColumn(String),
    /// No email column, and no `id` column was given.
    #[error("no column named `email` (any case): name the identity column with --email-column, or use --id-column with --key")]
    NoIdentity,
    /// `key` is not an identity key for ids.
    #[error("--key {0:?} is not an identity key other than email ({keys})", keys = id_keys())]
    BadKey(String),
    /// Headers that are not valid var names.
    #[error("{}", invalid_names(.0))]
    InvalidVarNames(Vec<(String, String)>),
    /// A rename's target is not a valid var name.
    #[error("--rename {column}={var}: {var:?} is not a valid var name")]
    BadRename {
        /// The column.
        column: String,
        /// The var name given.
        var: String,
    },
    /// Two columns map to the same var, or a var is both a value and a nested object.
    #[error("columns {0:?} and {1:?} map to the same var")]
    VarClash(String, String),
    /// A `--list` name the rules refuse.
    #[error("--list {0:?}: {1}")]
    BadList(String, &'static str),
    /// The header is empty or holds the same column twice.
    #[error("the header {0}")]
    BadHeader(String),
    /// The delimiter is a quote or a line end, which cannot separate fields.
    #[error("the delimiter cannot be {:?}", char::from(*.0))]
    BadDelimiter(u8),
}

/// Whether the text after a list item's last `:` reads as a subscription flag other than `0` or
/// `1`: empty, a number of one or two digits (`2`, `00`, `-1`), or a word people write for yes
/// or no (`y`, `no`, `true`, `off`, and `O` for a zero). Anything else (`Plan:B`, `Events:2024`)
/// is part of the list's name.
fn looks_like_a_flag(flag: &str) -> bool {
    const WORDS: [&str; 9] = ["y", "n", "yes", "no", "true", "false", "on", "off", "o"];
    let digits = flag.strip_prefix('-').unwrap_or(flag);
    flag.is_empty()
        || (1..=2).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        || WORDS.iter().any(|w| w.eq_ignore_ascii_case(flag))
}

/// The identity keys an id column may hold, as `--key` takes them.
fn id_keys() -> String {
    let keys: Vec<&str> = sailbulk_spec::IDENTITY_KEYS
        .into_iter()
        .filter(|&k| k != "email")
        .collect();
    keys.join(", ")
}

/// The UTF-8 byte-order mark some tools write at the start of a CSV file.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

fn invalid_names(cols: &[(String, String)]) -> String {
    let unnamed = cols.iter().filter(|(c, _)| c.is_empty()).count();
    let list: Vec<String> = cols
        .iter()
        .map(|(c, s)| match (c.is_empty(), unnamed) {
            (true, 1) => format!("\"\" (a column with no header; try --rename '={s}')"),
            (true, n) => {
                format!("\"\" ({n} columns with no header; name the columns to keep with --vars)")
            }
            (false, _) => format!("{c:?} (try --rename '{c}={s}')"),
        })
        .collect();
    let list: Vec<String> = list
        .iter()
        .enumerate()
        .filter(|(i, l)| !list[..*i].contains(l))
        .map(|(_, l)| l.clone())
        .collect();
    format!(
        "these column headers are not valid var names (letters, digits and `_`, not starting with a digit): {}; rename them or leave them out with --vars",
        list.join(", ")
    )
}

/// A var name suggested for a header that is not one.
fn suggest(header: &str) -> String {
    let mut s: String = header
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "v_");
    }
    s
}

/// Whether a var path (a header split at the `--nest` separator) is no valid var: its first
/// segment is the var's name, which the var-name rule applies to; the segments below it are keys
/// of nested objects, which are data (any text but an empty one, which is a separator too many).
fn path_problem(path: &[&str]) -> bool {
    path.first()
        .is_none_or(|top| var_name_problem(top).is_some())
        || path[1..].iter().any(|s| s.is_empty())
}

/// A var's path: its name split at the `--nest` separator, when there is one.
fn var_path<'a>(name: &'a str, nest: Option<&str>) -> Vec<&'a str> {
    match nest {
        Some(sep) => name.split(sep).collect(),
        None => vec![name],
    }
}

/// [`suggest`] for a header that `--nest SEP` splits: empty segments are dropped, and the var's
/// name is made a valid one that holds no separator.
fn suggest_nested(header: &str, sep: &str) -> String {
    let mut segments: Vec<String> = header
        .split(sep)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    match segments.first_mut() {
        Some(top) => {
            let mut name = suggest(top);
            // The separator is made `_`, which shortens it unless it is `_` itself (then a name
            // that holds it nests, which the suggestion may as well).
            while sep.len() > 1 && name.contains(sep) {
                name = name.replace(sep, "_");
            }
            *top = name;
        }
        None => segments.push(suggest("")),
    }
    segments.join(sep)
}

/// A var tree node: a leaf is a column, a branch a nested object.
#[derive(Debug)]
enum Node {
    Leaf(usize),
    Branch(Vec<(String, Node)>),
}

/// A mapping resolved against a header: column indexes and precomputed JSON keys.
#[derive(Debug)]
pub struct Converter {
    columns: usize,
    identity: usize,
    id_key: Option<String>,
    /// The vars tree; each name is held as its JSON key, quoted and followed by `:`.
    vars: Vec<(String, Node)>,
    lists: Vec<String>,
    lists_column: Option<usize>,
    optout: Option<usize>,
    signup_date: Option<usize>,
    types: Types,
    empty: Empty,
    validator: Option<Validator>,
    max_record_bytes: Option<u64>,
}

/// Why a row was not converted; the row goes to the rejects file with this reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Reject {
    /// What was wrong, for a person.
    pub reason: String,
}

fn reject(reason: impl Into<String>) -> Reject {
    Reject {
        reason: reason.into(),
    }
}

impl Converter {
    /// Resolves `options` against a header row. Fails, naming the columns, when the mapping
    /// cannot work: unknown columns, headers that are not var names (with a suggested
    /// `--rename`), clashing vars.
    ///
    /// ```
    /// use sailbulk_build::{ConvertOptions, Converter};
    ///
    /// let options = ConvertOptions { lists: vec!["Main".into()], ..Default::default() };
    /// let conv = Converter::new(&options, &["Email", "first_name", "score", "zip"]).unwrap();
    /// let mut out = Vec::new();
    /// conv.convert_row(&["ann@example.com", "Ann", "12", "02139"], &mut out).unwrap();
    /// assert_eq!(
    ///     String::from_utf8(out).unwrap(),
    ///     "{\"email\":\"ann@example.com\",\"vars\":{\"first_name\":\"Ann\",\"score\":12,\"zip\":\"02139\"},\"lists\":{\"Main\":1}}\n"
    /// );
    /// ```
    pub fn new<S: AsRef<str>>(
        options: &ConvertOptions,
        header: &[S],
    ) -> Result<Converter, MappingError> {
        let header: Vec<&str> = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = h.as_ref();
                if i == 0 {
                    h.strip_prefix('\u{feff}').unwrap_or(h)
                } else {
                    h
                }
            })
            .collect();
        if header.is_empty() || header.iter().all(|h| h.is_empty()) {
            return Err(MappingError::BadHeader("is empty".into()));
        }
        // Columns with no header (a trailing delimiter on the header line) may repeat: they
        // are an error only where one is used, as a var or by name.
        for (i, h) in header.iter().enumerate() {
            if !h.is_empty() && header[..i].contains(h) {
                return Err(MappingError::BadHeader(format!(
                    "holds the column {h:?} twice"
                )));
            }
        }
        let find = |name: &str| {
            let mut matches = (0..header.len()).filter(|&i| header[i] == name);
            match (matches.next(), matches.next()) {
                (Some(i), None) => Ok(i),
                (Some(_), Some(_)) => Err(MappingError::BadHeader(
                    "has more than one column with no header: name the columns to keep with --vars"
                        .into(),
                )),
                (None, _) => Err(MappingError::UnknownColumn(name.to_string())),
            }
        };
        let (identity, id_key) = match &options.identity {
            None | Some(Identity::Email(None)) => {
                let emails: Vec<usize> = (0..header.len())
                    .filter(|&i| header[i].trim().eq_ignore_ascii_case("email"))
                    .collect();
                match emails[..] {
                    [i] => (i, None),
                    [] => return Err(MappingError::NoIdentity),
                    // `EMAIL` and `email`: taking the first would send the other as a var.
                    _ => {
                        let names: Vec<String> =
                            emails.iter().map(|&i| format!("{:?}", header[i])).collect();
                        return Err(MappingError::BadHeader(format!(
                            "has more than one column named `email` in some case ({}): choose the identity with --email-column",
                            names.join(", ")
                        )));
                    }
                }
            }
            Some(Identity::Email(Some(col))) => (find(col)?, None),
            Some(Identity::Id { column, key }) => {
                // An identity key other than `email`, which the email column is for.
                if key == "email" || !sailbulk_spec::is_identity_key(key) {
                    return Err(MappingError::BadKey(key.clone()));
                }
                (find(column)?, Some(key.clone()))
            }
        };
        let lists_column = options.lists_column.as_deref().map(find).transpose()?;
        let optout = options.optout_column.as_deref().map(find).transpose()?;
        let signup_date = options
            .signup_date_column
            .as_deref()
            .map(find)
            .transpose()?;
        for list in &options.lists {
            match list_name_problem(list) {
                Some(ListNameProblem::Dollar) => {
                    return Err(MappingError::BadList(
                        list.clone(),
                        "a list name cannot contain a $ character",
                    ))
                }
                Some(_) => {
                    return Err(MappingError::BadList(
                        list.clone(),
                        "a list name needs a letter or digit",
                    ))
                }
                None => {}
            }
        }
        let used = [Some(identity), lists_column, optout, signup_date];
        let var_columns: Vec<usize> = match &options.vars {
            Some(names) => names.iter().map(|n| find(n)).collect::<Result<_, _>>()?,
            None => (0..header.len())
                .filter(|i| !used.contains(&Some(*i)))
                .collect(),
        };
        let renames: BTreeMap<&str, &str> = options
            .renames
            .iter()
            .map(|(c, v)| (c.as_str(), v.as_str()))
            .collect();
        // The `--nest` separator, when there is one.
        let nest = options.nest.as_deref().filter(|sep| !sep.is_empty());
        for (column, var) in &options.renames {
            find(column)?;
            if path_problem(&var_path(var, nest)) {
                return Err(MappingError::BadRename {
                    column: column.clone(),
                    var: var.clone(),
                });
            }
        }
        let mut bad = Vec::new();
        let mut vars: Vec<(String, Node)> = Vec::new();
        let mut owners: BTreeMap<String, usize> = BTreeMap::new();
        for &col in &var_columns {
            let name = renames.get(header[col]).copied().unwrap_or(header[col]);
            let path = var_path(name, nest);
            if path_problem(&path) {
                let suggestion = match header[col] {
                    // A name no column has: the suggestion must work as it is written.
                    "" => {
                        let mut name = format!("column_{}", col + 1);
                        while header.contains(&name.as_str()) {
                            name.push('_');
                        }
                        name
                    }
                    h => nest.map_or_else(|| suggest(h), |sep| suggest_nested(h, sep)),
                };
                bad.push((header[col].to_string(), suggestion));
                continue;
            }
            // Clashes: the same path twice, or a path that is both a value and an object.
            let full = path.join("\u{0}");
            for (other, &other_col) in &owners {
                let clash = *other == full
                    || other.starts_with(&format!("{full}\u{0}"))
                    || full.starts_with(&format!("{other}\u{0}"));
                if clash {
                    return Err(MappingError::VarClash(
                        header[other_col].to_string(),
                        header[col].to_string(),
                    ));
                }
            }
            owners.insert(full, col);
            insert(&mut vars, &path, col);
        }
        if !bad.is_empty() {
            return Err(MappingError::InvalidVarNames(bad));
        }
        encode_keys(&mut vars);
        let mut validator = ValidatorBuilder::new();
        // Rows are converted on every core already; each batch is checked on the thread that
        // converted it.
        validator.format(Some(Format::Json)).threads(1);
        Ok(Converter {
            columns: header.len(),
            identity,
            id_key,
            vars,
            // `--list Main --list Main` is one list: a record holds each name once.
            lists: options.lists.iter().fold(Vec::new(), |mut lists, l| {
                if !lists.contains(l) {
                    lists.push(l.clone());
                }
                lists
            }),
            lists_column,
            optout,
            signup_date,
            types: options.types,
            empty: options.empty,
            validator: (!options.skip_verify).then(|| validator.build()),
            max_record_bytes: options.max_record_bytes,
        })
    }

    /// The number of columns rows must have.
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Converts one row (cells as text), appending one JSON line and `\n` to `out`; on a
    /// [`Reject`], `out` is left as it was. The line is checked by the validator before it is
    /// kept: every line this writes passes `sailbulk validate`.
    pub fn convert_row<S: AsRef<str>>(&self, row: &[S], out: &mut Vec<u8>) -> Result<(), Reject> {
        self.convert_cells(row, false, out)
    }

    /// [`Converter::convert_row`], told whether any cell holds a byte JSON must escape.
    fn convert_cells<S: AsRef<str>>(
        &self,
        row: &[S],
        plain: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Reject> {
        let start = out.len();
        self.write_line(row, plain, out)?;
        self.fits(out, start)?;
        if let Some(validator) = &self.validator {
            let line = &out[start..out.len() - 1];
            if let Some(reason) = error_reason(validator.check_line(line, 2)) {
                out.truncate(start);
                return Err(reject(reason));
            }
        }
        Ok(())
    }

    /// Writes a row's JSON line with its `\n`, unchecked; on a [`Reject`], `out` is left as it
    /// was.
    fn write_line<S: AsRef<str>>(
        &self,
        row: &[S],
        plain: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Reject> {
        let start = out.len();
        match self.write_row(row, plain, out) {
            Ok(()) => {
                out.push(b'\n');
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Converts one row of raw bytes (as the CSV reader yields them).
    pub fn convert_byte_row(&self, row: &csv::ByteRecord, out: &mut Vec<u8>) -> Result<(), Reject> {
        let mut ranges = Vec::with_capacity(row.len());
        let mut at = 0;
        for field in row {
            ranges.push((at, at + field.len()));
            at += field.len();
        }
        let mut cells = Vec::new();
        let plain = range_cells(row.as_slice(), &ranges, &mut cells)?;
        self.convert_cells(&cells, plain, out)
    }

    /// Whether the record written to `out` from `start` is within
    /// [`ConvertOptions::max_record_bytes`]; when it is not, it is taken out again.
    fn fits(&self, out: &mut Vec<u8>, start: usize) -> Result<(), Reject> {
        let len = (out.len() - start) as u64;
        match self.max_record_bytes.filter(|&max| len > max) {
            Some(max) => {
                out.truncate(start);
                Err(reject(format!(
                    "the record is {len} bytes long, over the part cap of {max} bytes"
                )))
            }
            None => Ok(()),
        }
    }

    /// Converts a piece's records (`data` is the piece's bytes) into one buffer, then checks the
    /// buffer with the validator in one run (one UTF-8 check and one set-up for all its lines,
    /// instead of one per row); a row whose line has errors is rejected with them.
    fn convert_rows(&self, data: &[u8], records: &PieceRecords, out: &mut Converted) {
        out.json.clear();
        out.rows.clear();
        // JSON adds keys and quotes to the cells: room for about twice the input.
        out.json.reserve(2 * data.len() + 64 * records.len());
        let mut cells = Vec::new();
        for i in 0..records.len() {
            let start = out.json.len();
            let (base, ranges) = records.cells(data, i);
            let result = range_cells(base, ranges, &mut cells)
                .and_then(|plain| self.write_line(&cells, plain, &mut out.json))
                .and_then(|()| self.fits(&mut out.json, start));
            out.rows.push((start, out.json.len(), result.err()));
        }
        if let Some(validator) = &self.validator {
            let mut errors = LineErrors::default();
            validator.validate_slice(&out.json, &mut errors);
            // Line k of the buffer is the k-th row written.
            let mut written = out.rows.iter_mut().filter(|(_, _, r)| r.is_none());
            let mut line = 0;
            for (number, reason) in errors.0 {
                let row = loop {
                    line += 1;
                    let row = written.next().expect("one written row per line");
                    if line == number {
                        break row;
                    }
                };
                row.2 = Some(reject(reason));
            }
        }
    }

    /// Writes a row's JSON; `plain` says that no cell holds a byte JSON must escape.
    fn write_row<S: AsRef<str>>(
        &self,
        row: &[S],
        plain: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), Reject> {
        if row.len() != self.columns {
            return Err(reject(format!(
                "ragged row: {} fields where the header has {}",
                row.len(),
                self.columns
            )));
        }
        let cell = |i: usize| row[i].as_ref();
        let id = cell(self.identity).trim();
        if id.is_empty() {
            return Err(reject("missing identity: the identity column is empty"));
        }
        match &self.id_key {
            None => {
                if let Some(problem) = email_problem(id) {
                    return Err(reject(format!("invalid email {id:?}: {problem}")));
                }
                out.extend_from_slice(b"{\"email\":");
                write_cell(out, id, plain);
            }
            Some(key) => {
                out.extend_from_slice(b"{\"id\":");
                write_str(out, id);
                out.extend_from_slice(b",\"key\":");
                write_str(out, key);
            }
        }
        let vars_at = out.len();
        out.extend_from_slice(b",\"vars\":");
        if self.write_object(&self.vars, row, plain, out) {
            // Written.
        } else {
            out.truncate(vars_at);
        }
        let mut lists: Vec<(&str, u8)> = self.lists.iter().map(|l| (l.as_str(), 1)).collect();
        if let Some(col) = self.lists_column {
            for item in cell(col)
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                let (name, value) = match item.rsplit_once(':').map(|(n, f)| (n.trim(), f.trim())) {
                    Some((name, "0")) => (name, 0),
                    Some((name, "1")) => (name, 1),
                    // `Daily:O`, `Daily:2`, `Daily:no`, `Daily:`: a mistyped flag far more likely
                    // than a list named so, and taken as a name it would subscribe where `0`
                    // meant not.
                    Some((_, flag)) if looks_like_a_flag(flag) => {
                        return Err(reject(format!(
                            "list item {item:?}: the flag after its last ':' must be 0 or 1"
                        )))
                    }
                    _ => (item, 1),
                };
                match list_name_problem(name) {
                    Some(ListNameProblem::Dollar) => {
                        return Err(reject(format!("list name {name:?} contains a $ character")))
                    }
                    Some(_) => {
                        return Err(reject(format!(
                            "list name {name:?} holds no letter or digit"
                        )))
                    }
                    None => {}
                }
                match lists.iter_mut().find(|(n, _)| *n == name) {
                    Some(entry) => entry.1 = value,
                    None => lists.push((name, value)),
                }
            }
        }
        if !lists.is_empty() {
            out.extend_from_slice(b",\"lists\":{");
            for (i, (name, value)) in lists.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, name);
                out.extend_from_slice(if *value == 1 { b":1" } else { b":0" });
            }
            out.push(b'}');
        }
        if let Some(col) = self.optout {
            let v = cell(col).trim();
            if !v.is_empty() {
                if Optout::parse(v).is_none() {
                    return Err(reject(format!(
                        "invalid optout {v:?}: use one of {}",
                        sailbulk_spec::OPTOUT_VALUES.join(", ")
                    )));
                }
                out.extend_from_slice(b",\"optout\":");
                write_str(out, v);
            }
        }
        if let Some(col) = self.signup_date {
            let v = cell(col).trim();
            if !v.is_empty() {
                if parse_signup_date(v).is_none() {
                    return Err(reject(format!(
                        "invalid signup_date {v:?}: use {}",
                        sailbulk_parse::ACCEPTED_FORMATS
                    )));
                }
                out.extend_from_slice(b",\"signup_date\":");
                write_str(out, v);
            }
        }
        out.push(b'}');
        Ok(())
    }

    /// Writes `{...}` of the nodes with non-empty values; false (and nothing useful written) when
    /// every value was empty and left out.
    fn write_object<S: AsRef<str>>(
        &self,
        nodes: &[(String, Node)],
        row: &[S],
        plain: bool,
        out: &mut Vec<u8>,
    ) -> bool {
        out.push(b'{');
        let mut any = false;
        for (key, node) in nodes {
            let at = out.len();
            if any {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            let written = match node {
                Node::Leaf(col) => self.write_value(row[*col].as_ref(), plain, out),
                Node::Branch(children) => self.write_object(children, row, plain, out),
            };
            if written {
                any = true;
            } else {
                out.truncate(at);
            }
        }
        out.push(b'}');
        any
    }

    fn write_value(&self, cell: &str, plain: bool, out: &mut Vec<u8>) -> bool {
        if cell.is_empty() {
            return match self.empty {
                Empty::Omit => false,
                Empty::Null => {
                    out.extend_from_slice(b"null");
                    true
                }
            };
        }
        if self.types == Types::Infer && infers_as_literal(cell) {
            out.extend_from_slice(cell.as_bytes());
        } else {
            write_cell(out, cell, plain);
        }
        true
    }
}

/// Puts a row's cells, the byte ranges `ranges` of `base` in order, as text in `cells` (emptied
/// first, so that one buffer serves many rows); returns whether none holds a byte JSON must
/// escape. One UTF-8 check over the bytes from the first cell to the last, then a check that every
/// cell starts and ends on a character boundary, instead of a check per cell (the csv crate's own
/// method).
fn range_cells<'a>(
    base: &'a [u8],
    ranges: &[(usize, usize)],
    cells: &mut Vec<&'a str>,
) -> Result<bool, Reject> {
    cells.clear();
    let from = ranges.first().map_or(0, |r| r.0);
    let to = ranges.last().map_or(0, |r| r.1);
    let all = &base[from..to];
    let whole = simdutf8::basic::from_utf8(all);
    for (i, &(start, end)) in ranges.iter().enumerate() {
        let cell = &base[start..end];
        let boundary = |at: usize| all.get(at - from).is_none_or(|&b| (b as i8) >= -0x40);
        let text = match whole {
            Ok(text) if boundary(start) && boundary(end) => Ok(&text[start - from..end - from]),
            _ => std::str::from_utf8(cell),
        };
        match text {
            Ok(s) => cells.push(s),
            Err(e) => {
                return Err(reject(format!(
                    "column {} is not valid UTF-8 (byte {})",
                    i + 1,
                    e.valid_up_to()
                )))
            }
        }
    }
    // One scan of the row for bytes JSON must escape; most rows have none, and then no cell is
    // scanned again. (Between cells lie delimiters and quotes, which make a row not plain when
    // they are in its bytes: its cells are then scanned as they are written.)
    Ok(whole.is_ok() && sailbulk_parse::json_plain_run(all) == all.len())
}

/// The reason for rejecting a line, from the validator's findings: its errors, or `None`.
fn error_reason(findings: impl IntoIterator<Item = Finding>) -> Option<String> {
    let errors: Vec<String> = findings
        .into_iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| match f.field {
            Some(field) => format!("{field}: {}", f.message),
            None => f.message,
        })
        .collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// A sink that keeps, per line with errors, the reason to reject it.
#[derive(Default)]
struct LineErrors(Vec<(u64, String)>);

impl Sink for LineErrors {
    fn finding(&mut self, finding: Finding) -> ControlFlow<()> {
        let line = finding.line;
        if let Some(reason) = error_reason([finding]) {
            match self.0.last_mut() {
                Some((last, text)) if *last == line => {
                    text.push_str("; ");
                    text.push_str(&reason);
                }
                _ => self.0.push((line, reason)),
            }
        }
        ControlFlow::Continue(())
    }
}

/// Replaces each name of a vars tree by its JSON key (`"name":`), written once instead of per row.
fn encode_keys(nodes: &mut [(String, Node)]) {
    for (name, node) in nodes {
        let mut key = Vec::with_capacity(name.len() + 3);
        write_str(&mut key, name);
        key.push(b':');
        *name = String::from_utf8(key).expect("JSON text of a string is UTF-8");
        if let Node::Branch(children) = node {
            encode_keys(children);
        }
    }
}

fn insert(nodes: &mut Vec<(String, Node)>, path: &[&str], col: usize) {
    let (first, rest) = path.split_first().expect("a var path has a name");
    if rest.is_empty() {
        nodes.push((first.to_string(), Node::Leaf(col)));
        return;
    }
    let at = match nodes.iter().position(|(n, _)| n == first) {
        Some(at) => at,
        None => {
            nodes.push((first.to_string(), Node::Branch(Vec::new())));
            nodes.len() - 1
        }
    };
    if let Node::Branch(children) = &mut nodes[at].1 {
        insert(children, rest, col);
    }
}

/// The most digits of an integer that [`Types::Infer`] makes a number. A phone number has ten
/// digits or more (a national number of ten, fifteen at most with the country code), and so do
/// most ids and account numbers: as numbers they would lose their leading `+` or zeros in the
/// next export, and past 15 digits their value. Counts, scores and amounts in cents fit in nine.
pub const MAX_INFERRED_INT_DIGITS: usize = 9;

/// Whether a cell is written as a JSON literal under [`Types::Infer`]: `true`, `false`, an
/// integer of at most [`MAX_INFERRED_INT_DIGITS`] digits without leading zeros (longer digit
/// strings are phone numbers and ids), or a decimal with digits on both sides of the point and at
/// most 15 significant digits (so that a double holds it exactly). Everything else (`+1`, `1e5`,
/// `.5`, `007`, `-0`, `-0.0`, `5551234567`, `NaN`) is a string.
pub fn infers_as_literal(cell: &str) -> bool {
    let bytes = cell.as_bytes();
    match bytes.first() {
        Some(b'0'..=b'9' | b'-') => {}
        // Compared only when the first letter fits: a call to compare every cell with the two
        // words cost more than the rest of the inference.
        Some(b't') => return bytes == b"true",
        Some(b'f') => return bytes == b"false",
        _ => return false,
    }
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let (mut int, mut frac, mut dot) = (0usize, 0usize, false);
    for &b in digits {
        match b {
            b'0'..=b'9' if dot => frac += 1,
            b'0'..=b'9' => int += 1,
            b'.' if !dot => dot = true,
            _ => return false,
        }
    }
    let leading_zero = int > 1 && digits[0] == b'0';
    // A negative zero (`-0`, `-0.0`) is not a number anyone writes on purpose: a sign left on a
    // zero, or a code.
    let negative_zero = bytes[0] == b'-' && digits.iter().all(|&b| b == b'0' || b == b'.');
    let fits = if dot {
        frac > 0 && int + frac <= 15
    } else {
        int <= MAX_INFERRED_INT_DIGITS
    };
    int > 0 && !leading_zero && !negative_zero && fits
}

/// Writes a cell as a JSON string; `plain` (no byte to escape, known from a scan of the whole
/// row) skips the scan of the cell.
#[inline]
fn write_cell(out: &mut Vec<u8>, s: &str, plain: bool) {
    if plain {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        write_str(out, s);
    }
}

/// Appends `s` as a JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    loop {
        let i = start + sailbulk_parse::json_plain_run(&bytes[start..]);
        if i == bytes.len() {
            break;
        }
        out.extend_from_slice(&bytes[start..i]);
        match bytes[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Where converted records and rejected rows go.
pub trait ConvertSink {
    /// The CSV's header row, once, before any record (for a rejects file that repeats it).
    fn header(&mut self, header: &[String]) -> io::Result<()> {
        let _ = header;
        Ok(())
    }
    /// One converted record: a JSON line with its `\n`; `line` is the CSV line the row starts on.
    fn record(&mut self, json: &[u8], line: u64) -> io::Result<()>;
    /// A rejected row as read, the line it starts on and why.
    fn reject(&mut self, row: &csv::ByteRecord, line: u64, reason: &str) -> io::Result<()>;
}

/// Counts of a conversion: `rows == records + rejected`, always.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertSummary {
    /// Data rows read (the header excluded).
    pub rows: u64,
    /// Records written.
    pub records: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Input bytes read (decompressed).
    pub bytes: u64,
}

/// Why a conversion could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The header does not fit the mapping.
    #[error(transparent)]
    Mapping(#[from] MappingError),
    /// The CSV could not be read.
    #[error("cannot read the CSV")]
    Read(#[source] io::Error),
    /// The sink failed.
    #[error("cannot write the output")]
    Write(#[source] io::Error),
}

/// One piece of a batch: its records, parsed on a worker, their conversion, and the line ends it
/// holds. Kept from batch to batch for its buffers.
struct Piece {
    /// The parser, reset for each piece.
    parser: csv_core::Reader,
    delimiter: u8,
    /// The piece's place in its batch's bytes.
    range: std::ops::Range<usize>,
    records: PieceRecords,
    /// Line ends in the piece.
    line_ends: u64,
    converted: Converted,
}

impl Piece {
    fn new(delimiter: u8) -> Piece {
        Piece {
            parser: records::parser(delimiter),
            delimiter,
            range: 0..0,
            records: PieceRecords::default(),
            line_ends: 0,
            converted: Converted::default(),
        }
    }

    /// Parses the piece at `range` of `batch`, cut at record boundaries, then converts its
    /// records.
    fn fill(
        &mut self,
        batch: &[u8],
        range: std::ops::Range<usize>,
        pending_cr: bool,
        converter: &Converter,
    ) {
        let data = &batch[range.clone()];
        self.range = range;
        self.line_ends = parse_piece(
            data,
            pending_cr,
            self.delimiter,
            &mut self.parser,
            &mut self.records,
        );
        converter.convert_rows(data, &self.records, &mut self.converted);
    }
}

/// The output of one conversion task: the JSON lines of its rows, back to back, and per row its
/// byte range or why it was rejected.
#[derive(Default)]
struct Converted {
    json: Vec<u8>,
    rows: Vec<(usize, usize, Option<Reject>)>,
}

/// Hands a converted batch (`batch` its bytes) to the sink, in input order; `line` is the line
/// the batch starts on, and is moved past it.
fn deliver(
    batch: &[u8],
    pieces: &[Piece],
    line: &mut u64,
    sink: &mut (dyn ConvertSink + Send),
    summary: &mut ConvertSummary,
) -> io::Result<()> {
    for piece in pieces {
        for (i, (start, end, rejected)) in piece.converted.rows.iter().enumerate() {
            let at = *line + piece.records.line(i) - 1;
            summary.rows += 1;
            match rejected {
                None => {
                    summary.records += 1;
                    sink.record(&piece.converted.json[*start..*end], at)?;
                }
                Some(r) => {
                    summary.rejected += 1;
                    let row = piece.records.byte_record(&batch[piece.range.clone()], i);
                    sink.reject(&row, at, &r.reason)?;
                }
            }
        }
        *line += piece.line_ends;
    }
    Ok(())
}

/// Converts a CSV stream; `sink` gets the records and rejects in input order, one call at a time
/// (from a thread of rayon's pool, hence `Send`). The header row names the columns; a UTF-8
/// byte-order mark before it is skipped.
///
/// A reader thread cuts the input into batches of whole records, each cut again into pieces at
/// record boundaries; every core parses and converts pieces, and the batch before is delivered
/// meanwhile.
pub fn convert_csv<R: Read + Send + 'static>(
    input: R,
    options: &ConvertOptions,
    sink: &mut (dyn ConvertSink + Send),
) -> Result<ConvertSummary, ConvertError> {
    convert_csv_in(input, options, sink, (BATCH_BYTES, PIECE_BYTES))
}

/// [`convert_csv`] with the sizes of batches and pieces given (tests use tiny ones).
fn convert_csv_in<R: Read + Send + 'static>(
    input: R,
    options: &ConvertOptions,
    sink: &mut (dyn ConvertSink + Send),
    sizes: (usize, usize),
) -> Result<ConvertSummary, ConvertError> {
    let delimiter = options.delimiter.unwrap_or(b',');
    // Record ends are found by a scan that needs line ends and quotes to mean only that.
    if matches!(delimiter, b'\r' | b'\n' | b'"') {
        return Err(MappingError::BadDelimiter(delimiter).into());
    }
    // A byte-order mark is skipped before csv-core sees it: otherwise it starts the first
    // header's field, and a quote after it would not open a quoted field.
    let mut input = input;
    let mut head = Vec::with_capacity(BOM.len());
    (&mut input)
        .take(BOM.len() as u64)
        .read_to_end(&mut head)
        .map_err(ConvertError::Read)?;
    let bom = head == BOM;
    if bom {
        head.clear();
    }
    let input = io::Cursor::new(head).chain(input);
    let mut reader = Rows::new(
        io::BufReader::with_capacity(1 << 20, input),
        delimiter,
        false,
    );
    let mut first = csv::ByteRecord::new();
    if reader
        .next(&mut first)
        .map_err(ConvertError::Read)?
        .is_none()
    {
        return Err(MappingError::BadHeader("is empty".into()).into());
    }
    let header = first
        .iter()
        .map(|h| std::str::from_utf8(h).map(str::to_string))
        .collect::<Result<Vec<String>, _>>()
        .map_err(|_| MappingError::BadHeader("is not valid UTF-8".into()))?;
    let converter = Converter::new(options, &header)?;
    let mut shown = header.clone();
    if let Some(h) = shown.first_mut() {
        *h = h.trim_start_matches('\u{feff}').to_string();
    }
    sink.header(&shown).map_err(ConvertError::Write)?;
    // The rest of the input, from just after the header.
    let (rest, mut line, pending_cr, header_bytes) = reader.into_parts();
    let bom_bytes = if bom { BOM.len() as u64 } else { 0 };
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Batch>>(2);
    let (spent_tx, spent_rx) = std::sync::mpsc::sync_channel::<Batch>(4);
    let reading = std::thread::spawn(move || {
        read_batches(rest, delimiter, pending_cr, sizes, &tx, &spent_rx)
    });
    let mut summary = ConvertSummary::default();
    let mut failure = None;
    // A pipeline: while the pool parses and converts batch N+1, batch N goes to the sink.
    let mut pending: Option<(Batch, Vec<Piece>)> = None;
    let mut spare: Vec<Piece> = Vec::new();
    loop {
        let next = match rx.recv() {
            Ok(Ok(batch)) => Some(batch),
            Ok(Err(e)) => {
                failure = Some(ConvertError::Read(e));
                None
            }
            // The reader is done (or failed: see the join below).
            Err(_) => None,
        };
        if next.is_none() && pending.is_none() {
            break;
        }
        let mut pieces = std::mem::take(&mut spare);
        let (converted, written) = rayon::join(
            || {
                next.map(|batch| {
                    let ranges: Vec<_> = batch.pieces().collect();
                    pieces.resize_with(ranges.len(), || Piece::new(delimiter));
                    pieces
                        .par_iter_mut()
                        .zip(ranges)
                        .for_each(|(piece, (range, cr))| {
                            piece.fill(&batch.data, range, cr, &converter)
                        });
                    (batch, pieces)
                })
            },
            || match pending.take() {
                Some((batch, done)) => {
                    let written = deliver(&batch.data, &done, &mut line, sink, &mut summary);
                    let _ = spent_tx.try_send(batch);
                    (written, done)
                }
                None => (Ok(()), Vec::new()),
            },
        );
        let (written, done) = written;
        spare = done;
        if let Err(e) = written {
            failure = Some(ConvertError::Write(e));
        }
        if failure.is_some() {
            break;
        }
        pending = converted;
    }
    drop(rx);
    match reading.join() {
        Ok(bytes) => summary.bytes = bom_bytes + header_bytes + bytes,
        // Not an end of input: what was delivered may be short.
        Err(_) => {
            let panicked = io::Error::other("the thread reading the CSV panicked");
            failure = failure.or(Some(ConvertError::Read(panicked)));
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that the validator, strict, has nothing to say of `line`.
    fn assert_strictly_clean(line: &str) {
        let report = ValidatorBuilder::new()
            .strict(true)
            .build()
            .report_slice(line.as_bytes(), 0);
        assert!(report.findings.is_empty(), "{:?}", report.findings);
    }

    fn conv(options: &ConvertOptions, header: &[&str], row: &[&str]) -> Result<String, Reject> {
        let c = Converter::new(options, header).unwrap();
        let mut out = Vec::new();
        c.convert_row(row, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn infers_types_conservatively() {
        for yes in [
            "0",
            "12",
            "-3",
            "12.5",
            "-0.25",
            "true",
            "false",
            "123456789",
            "-987654321",
            "0.5",
            "1.50",
            "1234567890123.45",
        ] {
            assert!(infers_as_literal(yes), "{yes}");
        }
        for no in [
            "007",
            "+1",
            "1e5",
            ".5",
            "5.",
            "1.2.3",
            "NaN",
            "TRUE",
            "1234567890",
            "-1234567890",
            "4155551234",
            "14155551234",
            "123456789012345",
            "1234567890123456",
            "12345678901234.56",
            "-0",
            "-0.0",
            "-00",
            "",
            "-",
            "1,000",
        ] {
            assert!(!infers_as_literal(no), "{no}");
        }
    }

    #[test]
    fn two_email_columns_are_ambiguous_unless_one_is_named() {
        let header = ["EMAIL", "name", "email"];
        let err = Converter::new(&ConvertOptions::default(), &header).unwrap_err();
        assert!(
            err.to_string().contains("\"EMAIL\", \"email\"")
                && err.to_string().contains("--email-column"),
            "{err}"
        );
        let options = ConvertOptions {
            identity: Some(Identity::Email(Some("email".into()))),
            ..Default::default()
        };
        let line = conv(
            &options,
            &header,
            &["work@example.com", "Ann", "a@example.com"],
        )
        .unwrap();
        assert!(line.starts_with(r#"{"email":"a@example.com""#), "{line}");
        let twice = ConvertOptions {
            identity: Some(Identity::Email(Some("mail".into()))),
            ..Default::default()
        };
        let err = Converter::new(&twice, &["mail", "mail"]).unwrap_err();
        assert!(err.to_string().contains("\"mail\" twice"), "{err}");
    }

    #[test]
    fn a_list_given_twice_is_written_once() {
        let options = ConvertOptions {
            lists: vec!["Main".into(), "B".into(), "Main".into()],
            lists_column: Some("groups".into()),
            ..Default::default()
        };
        let line = conv(&options, &["email", "groups"], &["a@example.com", "B:0;C"]).unwrap();
        assert_eq!(
            line,
            "{\"email\":\"a@example.com\",\"lists\":{\"Main\":1,\"B\":0,\"C\":1}}\n"
        );
        assert_strictly_clean(&line);
    }

    #[test]
    fn maps_identity_vars_lists_optout_and_dates() {
        let options = ConvertOptions {
            lists: vec!["Main".into()],
            lists_column: Some("groups".into()),
            optout_column: Some("optout".into()),
            signup_date_column: Some("joined".into()),
            nest: Some("__".into()),
            ..Default::default()
        };
        let header = [
            "EMAIL",
            "name",
            "address__city",
            "address__zip",
            "groups",
            "optout",
            "joined",
            "vip",
        ];
        let line = conv(
            &options,
            &header,
            &[
                "a@example.com",
                "Zoë \"Z\"",
                "Paris",
                "75001",
                "Weekly; Daily:0",
                "basic",
                "Jan 18, 2013",
                "true",
            ],
        )
        .unwrap();
        assert_eq!(
            line,
            "{\"email\":\"a@example.com\",\"vars\":{\"name\":\"Zoë \\\"Z\\\"\",\"address\":{\"city\":\"Paris\",\"zip\":75001},\"vip\":true},\"lists\":{\"Main\":1,\"Weekly\":1,\"Daily\":0},\"optout\":\"basic\",\"signup_date\":\"Jan 18, 2013\"}\n"
        );
        // Empty cells are left out, nested objects too when all theirs are empty.
        let line = conv(
            &options,
            &header,
            &["a@example.com", "", "", "", "", "", "", ""],
        )
        .unwrap();
        assert_eq!(
            line,
            "{\"email\":\"a@example.com\",\"lists\":{\"Main\":1}}\n"
        );
    }

    #[test]
    fn ids_with_keys_and_string_types_and_nulls() {
        let options = ConvertOptions {
            identity: Some(Identity::Id {
                column: "cid".into(),
                key: "extid".into(),
            }),
            types: Types::String,
            empty: Empty::Null,
            ..Default::default()
        };
        let line = conv(&options, &["cid", "n", "m"], &["42", "7", ""]).unwrap();
        assert_eq!(
            line,
            "{\"id\":\"42\",\"key\":\"extid\",\"vars\":{\"n\":\"7\",\"m\":null}}\n"
        );
    }

    #[test]
    fn rejects_rows_with_reasons() {
        let options = ConvertOptions {
            optout_column: Some("o".into()),
            signup_date_column: Some("d".into()),
            lists_column: Some("l".into()),
            ..Default::default()
        };
        let header = ["email", "o", "d", "l"];
        let reason = |row: &[&str]| conv(&options, &header, row).unwrap_err().reason;
        assert!(reason(&["nope", "", "", ""]).starts_with("invalid email \"nope\""));
        assert!(reason(&["", "", "", ""]).starts_with("missing identity"));
        assert!(reason(&["a@example.com", ""])
            .starts_with("ragged row: 2 fields where the header has 4"));
        assert!(reason(&["a@example.com", "sometimes", "", ""]).starts_with("invalid optout"));
        assert!(reason(&["a@example.com", "", "2013-02-30", ""]).starts_with("invalid signup_date"));
        assert!(reason(&["a@example.com", "", "", "a$b"]).contains("$"));
        assert!(reason(&["a@example.com", "", "", "!!"]).contains("no letter or digit"));
        for typo in [
            "Daily:O",
            "Daily:2",
            "Daily:",
            "Weekly; Daily : y",
            "Daily:no",
            "Daily:FALSE",
            "Daily:00",
            "Daily:-1",
            "Daily:off",
        ] {
            assert!(
                reason(&["a@example.com", "", "", typo]).contains("must be 0 or 1"),
                "{typo}"
            );
        }
        // A flag with spaces around it, and a name that holds a colon, are fine.
        let lists = |cell: &str| {
            let mut out = Vec::new();
            let converter = Converter::new(&options, &header).unwrap();
            converter
                .convert_row(&["a@example.com", "", "", cell], &mut out)
                .unwrap();
            let line: serde_json::Value = serde_json::from_slice(&out).unwrap();
            line["lists"].clone()
        };
        assert_eq!(lists("Daily : 0"), serde_json::json!({"Daily": 0}));
        assert_eq!(
            lists("Sale: Spring"),
            serde_json::json!({"Sale: Spring": 1})
        );
        assert_eq!(
            lists("Events:2024:1"),
            serde_json::json!({"Events:2024": 1})
        );
        assert_eq!(lists("Plan:B"), serde_json::json!({"Plan:B": 1}));
        assert_eq!(lists("Tier:A:0"), serde_json::json!({"Tier:A": 0}));
    }

    #[test]
    fn a_record_over_max_record_bytes_is_rejected() {
        let options = ConvertOptions {
            max_record_bytes: Some(45),
            ..Default::default()
        };
        let converter = Converter::new(&options, &["email", "n"]).unwrap();
        let mut out = b"kept\n".to_vec();
        // 45 bytes with the line end: written.
        converter
            .convert_row(&["a@example.com", "12345"], &mut out)
            .unwrap();
        assert_eq!(out.len(), 5 + 45);
        let before = out.clone();
        let err = converter
            .convert_row(&["a@example.com", "123456"], &mut out)
            .unwrap_err();
        assert_eq!(
            err.reason,
            "the record is 46 bytes long, over the part cap of 45 bytes"
        );
        assert_eq!(out, before, "a rejected record is taken out");
    }

    #[test]
    fn columns_with_no_header_are_named_by_rename_or_left_out() {
        // One unnamed column: the suggestion names it with `=name`, and that works.
        let err = Converter::new(&ConvertOptions::default(), &["email", "name", ""]).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"\" (a column with no header; try --rename '=column_3')"),
            "{err}"
        );
        // The suggestion never takes a name a column has.
        let err =
            Converter::new(&ConvertOptions::default(), &["email", "column_3", ""]).unwrap_err();
        assert!(
            err.to_string().contains("try --rename '=column_3_')"),
            "{err}"
        );
        let renamed = ConvertOptions {
            renames: vec![("".into(), "notes".into())],
            ..Default::default()
        };
        assert!(Converter::new(&renamed, &["email", "name", ""]).is_ok());
        // Several: they are no error unless used; --vars leaves them out.
        let header = ["email", "name", "", ""];
        let err = Converter::new(&ConvertOptions::default(), &header).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"\" (2 columns with no header; name the columns to keep with --vars)"),
            "{err}"
        );
        let chosen = ConvertOptions {
            vars: Some(vec!["name".into()]),
            ..Default::default()
        };
        assert!(Converter::new(&chosen, &header).is_ok());
        let err = Converter::new(&renamed, &header).unwrap_err();
        assert!(
            err.to_string()
                .contains("more than one column with no header"),
            "{err}"
        );
        // A named column twice is still an error.
        assert!(Converter::new(&ConvertOptions::default(), &["email", "a", "a"]).is_err());
    }

    #[test]
    fn header_problems_are_named_with_a_suggestion() {
        let err = Converter::new(
            &ConvertOptions::default(),
            &["email", "first-name", "2nd", "ok"],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "these column headers are not valid var names (letters, digits and `_`, not starting with a digit): \"first-name\" (try --rename 'first-name=first_name'), \"2nd\" (try --rename '2nd=v_2nd'); rename them or leave them out with --vars"
        );
        let options = ConvertOptions {
            renames: vec![
                ("first-name".into(), "first_name".into()),
                ("2nd".into(), "second".into()),
            ],
            ..Default::default()
        };
        assert!(Converter::new(&options, &["email", "first-name", "2nd"]).is_ok());
        assert!(matches!(
            Converter::new(&ConvertOptions::default(), &["name"]),
            Err(MappingError::NoIdentity)
        ));
        let options = ConvertOptions {
            nest: Some("__".into()),
            ..Default::default()
        };
        assert!(matches!(
            Converter::new(&options, &["email", "a", "a__b"]),
            Err(MappingError::VarClash(..))
        ));
        let options = ConvertOptions {
            vars: Some(vec!["missing".into()]),
            ..Default::default()
        };
        assert_eq!(
            Converter::new(&options, &["email"]).unwrap_err(),
            MappingError::UnknownColumn("missing".into())
        );
    }

    #[test]
    fn under_nest_the_suggested_renames_work_and_nested_keys_are_data() {
        let nest = |renames: Vec<(String, String)>| ConvertOptions {
            nest: Some("__".into()),
            renames,
            ..Default::default()
        };
        let header = ["email", "x__", "__b", "first  name__city", "a__1"];
        let err = Converter::new(&nest(vec![]), &header)
            .unwrap_err()
            .to_string();
        // `a__1` is the var `a` with the nested key `1`: data, as the validator takes it.
        assert!(!err.contains("a__1"), "{err}");
        let mut renames = Vec::new();
        for (column, suggestion) in [
            ("x__", "x"),
            ("__b", "b"),
            ("first  name__city", "first_name__city"),
        ] {
            assert!(
                err.contains(&format!(
                    "{column:?} (try --rename '{column}={suggestion}')"
                )),
                "{err}"
            );
            renames.push((column.to_string(), suggestion.to_string()));
        }
        // With `_` as the separator the suggestion nests where it has one (and is found at all).
        let under = ConvertOptions {
            nest: Some("_".into()),
            ..Default::default()
        };
        let err = Converter::new(&under, &["email", "first name", "1x"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("'first name=first_name'"), "{err}");
        assert!(err.contains("'1x=v_1x'"), "{err}");
        // Following the suggestions makes a mapping whose records the validator accepts.
        let line = conv(
            &nest(renames),
            &header,
            &["a@example.com", "1", "2", "Oslo", "4"],
        )
        .unwrap();
        assert_eq!(
            line,
            "{\"email\":\"a@example.com\",\"vars\":{\"x\":1,\"b\":2,\"first_name\":{\"city\":\"Oslo\"},\"a\":{\"1\":4}}}\n"
        );
        assert_strictly_clean(&line);
    }

    #[test]
    fn written_strings_read_back_the_same() {
        use proptest::prelude::*;
        proptest!(|(s in "\\PC*|[\\x00-\\x7f]{0,40}|[\"\\\\a\\x01\\x1f é]{0,20}")| {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            let back: String = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(back, s);
        });
    }

    #[test]
    fn a_batch_checked_in_one_run_rejects_the_same_rows_as_row_by_row() {
        // Under a strict validator, a var value over 140 characters is an error that only the
        // check of the written line finds; rows the writer rejects leave no line behind, so the
        // batch's line numbers must skip them.
        let mut c = Converter::new(&ConvertOptions::default(), &["email", "note"]).unwrap();
        c.validator = Some(
            ValidatorBuilder::new()
                .format(Some(Format::Json))
                .strict(true)
                .threads(1)
                .build(),
        );
        let long = "x".repeat(141);
        let cells: [(&str, &str); 7] = [
            ("a@example.com", "fine"),
            ("b@example.com", &long),
            ("not an address", "fine"),
            ("c@example.com", &long),
            ("d@example.com", "fine"),
            ("", "fine"),
            ("e@example.com", &long),
        ];
        let rows: Vec<csv::ByteRecord> = cells
            .iter()
            .map(|&(e, n)| csv::ByteRecord::from(vec![e, n]))
            .collect();
        let mut records = PieceRecords::default();
        for (row, line) in rows.iter().zip(1..) {
            records.push_owned(line, row);
        }
        let mut batch = Converted::default();
        c.convert_rows(&[], &records, &mut batch);
        for (row, (start, end, rejected)) in rows.iter().zip(&batch.rows) {
            let mut one = Vec::new();
            match c.convert_byte_row(row, &mut one) {
                Ok(()) => {
                    assert_eq!(rejected, &None);
                    assert_eq!(&batch.json[*start..*end], &one[..]);
                }
                Err(e) => assert_eq!(rejected.as_ref(), Some(&e)),
            }
        }
        let kept = batch.rows.iter().filter(|r| r.2.is_none()).count();
        assert_eq!(kept, 2);
        assert!(batch.rows[1]
            .2
            .as_ref()
            .unwrap()
            .reason
            .contains("141 characters"));
    }

    #[test]
    fn byte_rows_read_back_as_their_cells_with_or_without_bytes_to_escape() {
        // The writer skips the per-cell escape scan when a scan of the whole row finds nothing to
        // escape; rows with and without such bytes, in any cell, must read back the same.
        use proptest::prelude::*;
        let options = ConvertOptions {
            types: Types::String,
            skip_verify: true,
            ..Default::default()
        };
        let c = Converter::new(&options, &["email", "a", "b", "c"]).unwrap();
        proptest!(|(cells in proptest::collection::vec("[a-z é\"\\\\\x01\n\t]{0,12}", 3))| {
            let mut fields: Vec<&[u8]> = vec![b"ann@example.com"];
            fields.extend(cells.iter().map(|c| c.as_bytes()));
            let row = csv::ByteRecord::from(fields);
            let mut out = Vec::new();
            c.convert_byte_row(&row, &mut out).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            prop_assert_eq!(&v["email"], "ann@example.com");
            for (name, cell) in ["a", "b", "c"].iter().zip(&cells) {
                match v["vars"].get(name) {
                    Some(got) => prop_assert_eq!(got.as_str(), Some(cell.as_str())),
                    None => prop_assert!(cell.is_empty()),
                }
            }
        });
    }

    #[test]
    fn utf8_is_checked_per_cell_boundary() {
        let c = Converter::new(&ConvertOptions::default(), &["email", "a", "b"]).unwrap();
        let mut out = Vec::new();
        // The record's buffer is valid UTF-8 ("é" split across two cells) but neither cell is.
        let row = csv::ByteRecord::from(vec![&b"a@example.com"[..], b"\xc3", b"\xa9"]);
        let err = c.convert_byte_row(&row, &mut out).unwrap_err();
        assert_eq!(err.reason, "column 2 is not valid UTF-8 (byte 0)");
        let row = csv::ByteRecord::from(vec![&b"a@example.com"[..], "é".as_bytes(), b"x"]);
        c.convert_byte_row(&row, &mut out).unwrap();
        assert!(out.starts_with("{\"email\":\"a@example.com\",\"vars\":{\"a\":\"é\"".as_bytes()));
    }

    /// What a sink was given, in order: records and rejects with their lines.
    #[derive(Default, Debug, PartialEq)]
    struct Collect(Vec<(u64, String)>);

    impl ConvertSink for Collect {
        fn record(&mut self, json: &[u8], line: u64) -> io::Result<()> {
            self.0
                .push((line, String::from_utf8_lossy(json).into_owned()));
            Ok(())
        }
        fn reject(&mut self, row: &csv::ByteRecord, line: u64, reason: &str) -> io::Result<()> {
            self.0.push((line, format!("rejected {row:?}: {reason}")));
            Ok(())
        }
    }

    fn collect(input: &[u8], sizes: (usize, usize)) -> (Collect, ConvertSummary) {
        let mut sink = Collect::default();
        let reader = io::Cursor::new(input.to_vec());
        let summary = convert_csv_in(reader, &ConvertOptions::default(), &mut sink, sizes).unwrap();
        (sink, summary)
    }

    #[test]
    fn many_small_batches_and_pieces_deliver_what_one_does() {
        // Rows with quoted cells holding delimiters, quotes and line ends, under every kind of
        // line end, converted with batches and pieces of a few bytes (so that pieces, batches and
        // the carry between them are all crossed) must give the records, rejects and lines of a
        // run in one piece.
        use proptest::prelude::*;
        let cell = "[a-z]{0,3}|\"[a-z,\"\r\n]{0,4}\"";
        let row = (any::<bool>(), cell, 0..3usize);
        proptest!(|(rows in proptest::collection::vec(row, 0..12),
                    batch in 1usize..64, piece in 1usize..16)| {
            let ends = ["\n", "\r\n", "\r"];
            let mut csv = String::from("email,note\n");
            for (i, (valid, note, end)) in rows.iter().enumerate() {
                let quoted = note.len() >= 2 && note.starts_with('"');
                let note = if quoted {
                    format!("\"{}\"", note[1..note.len() - 1].replace('"', "\"\""))
                } else {
                    note.clone()
                };
                let email = if *valid { format!("u{i}@example.com") } else { "nobody".into() };
                csv.push_str(&format!("{email},{note}{}", ends[*end]));
            }
            let (small, small_summary) = collect(csv.as_bytes(), (batch, piece));
            let (whole, whole_summary) = collect(csv.as_bytes(), (1 << 20, 1 << 20));
            prop_assert_eq!(small, whole);
            prop_assert_eq!(small_summary, whole_summary);
        });
    }

    #[test]
    fn a_byte_order_mark_is_skipped_before_a_quoted_header() {
        let input = "\u{feff}\"email\",\"note\"\n\"ann@example.com\",hi\n";
        let (sink, summary) = collect(input.as_bytes(), (BATCH_BYTES, PIECE_BYTES));
        assert_eq!(
            sink.0,
            [(
                2,
                "{\"email\":\"ann@example.com\",\"vars\":{\"note\":\"hi\"}}\n".into()
            )]
        );
        assert_eq!(summary.bytes, input.len() as u64);
    }

    #[test]
    fn a_quote_or_a_line_end_is_refused_as_the_delimiter() {
        for d in [b'"', b'\r', b'\n'] {
            let options = ConvertOptions {
                delimiter: Some(d),
                ..Default::default()
            };
            let err = convert_csv(
                io::Cursor::new(b"email\n".to_vec()),
                &options,
                &mut Collect::default(),
            )
            .unwrap_err();
            assert!(
                matches!(err, ConvertError::Mapping(MappingError::BadDelimiter(b)) if b == d),
                "{err}"
            );
        }
    }

    #[test]
    fn line_numbers_count_every_kind_of_line_end() {
        #[derive(Default)]
        struct Lines(Vec<u64>);
        impl ConvertSink for Lines {
            fn record(&mut self, _: &[u8], line: u64) -> io::Result<()> {
                self.0.push(line);
                Ok(())
            }
            fn reject(&mut self, _: &csv::ByteRecord, line: u64, _: &str) -> io::Result<()> {
                self.0.push(line);
                Ok(())
            }
        }
        for input in [
            "email,n\nbad,1\n\nx@y.co,2\n\"a\nb\",3\nc@y.co,4",
            "email,n\r\nbad,1\r\n\r\nx@y.co,2\r\n\"a\r\nb\",3\r\nc@y.co,4\r\n",
            "email,n\rbad,1\r\rx@y.co,2\r\"a\rb\",3\rc@y.co,4\r",
        ] {
            let mut lines = Lines::default();
            let reader = io::Cursor::new(input.as_bytes().to_vec());
            convert_csv(reader, &ConvertOptions::default(), &mut lines).unwrap();
            assert_eq!(lines.0, [2, 4, 5, 7], "{input:?}");
        }
    }

    #[test]
    fn escapes_control_characters() {
        let mut out = Vec::new();
        write_str(&mut out, "a\u{1}b\tc\\");
        assert_eq!(out, b"\"a\\u0001b\\tc\\\\\"");
    }
}
