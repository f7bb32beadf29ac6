//! The per-line rules: what one line of an update or email file must satisfy.

use crate::date::{is_valid_unix_timestamp, parse_signup_date, ACCEPTED_FORMATS};
use crate::email::email_problem;
use crate::fast::FastScratch;
use crate::finding::{Code, Finding, Severity};
use crate::json::{
    fingerprint_slot, key_fingerprint, KeyRef, Note, Path, Scanner, Str, SyntaxError, Val,
};
use sailbulk_spec::{
    is_identity_key, list_name_problem, quoted, var_name_problem, ListNameProblem, Optout,
    VarNameProblem, IDENTITY_KEYS, KEYSCONFLICT_VALUES, MAX_LISTS_PER_ACCOUNT, OPTOUT_VALUES,
    UPDATE_LINE_FIELDS, VAR_NAME_MAX_CHARS, VAR_VALUE_MAX_CHARS,
};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A small, fast hasher for list names (the FxHash mixing step); the names come from the user's
/// own file, and the set is capped, so resistance to crafted collisions is not needed.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// What each line of a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// One JSON update object per line.
    Json,
    /// One email address per line.
    Emails,
}

impl Format {
    /// `"json"` or `"emails"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Emails => "emails",
        }
    }

    /// Guesses the format from a line: JSON when it starts with `{` (after a byte-order mark and
    /// whitespace), emails otherwise. `None` for a blank line.
    pub fn detect(line: &[u8]) -> Option<Format> {
        Format::detect_bare(line.strip_prefix(BOM).unwrap_or(line))
    }

    /// Guesses the format of a block of lines from its first non-blank line. A byte-order mark
    /// is skipped only at the start of the input (`starts_input`): a line elsewhere that holds
    /// one is not blank, so that the format of a stream does not depend on how it is cut into
    /// blocks.
    pub fn detect_block(block: &[u8], starts_input: bool) -> Option<Format> {
        let body = match starts_input {
            true => block.strip_prefix(BOM).unwrap_or(block),
            false => block,
        };
        body.split(|&b| b == b'\n').find_map(Format::detect_bare)
    }

    fn detect_bare(line: &[u8]) -> Option<Format> {
        // A line of a form feed or vertical tab is no blank line (it gets invalid_json), but it
        // tells nothing of the format either.
        let first = line
            .iter()
            .find(|&&b| !crate::json::is_ws(b) && !matches!(b, 0x0b | 0x0c))?;
        // An array is no update line either, but JSON: read as addresses, every line of a JSON
        // array export would be "no @", which says nothing of what is wrong.
        Some(if matches!(*first, b'{' | b'[') {
            Format::Json
        } else {
            Format::Emails
        })
    }
}

pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The distinct list names of a run of lines, in order of first appearance, up to one more than
/// an account may have: that is all the file-level check needs, and it keeps memory bounded.
#[derive(Debug)]
pub(crate) struct ListNames {
    /// Every name seen, with its index in `order` plus one (0 for a name only
    /// [`ListNames::insert_global`] has seen).
    seen: HashMap<Box<[u8]>, u32, BuildHasherDefault<FxHasher>>,
    /// Names in order of first appearance, with the line they first appear on.
    pub order: Vec<(Box<[u8]>, u64)>,
    /// How many names to keep.
    cap: usize,
    /// A small two-way cache of names already in `order`, keyed by their length and first
    /// bytes: a file uses few distinct names, so most lines find theirs here without hashing it,
    /// and names of up to 16 bytes (most) without comparing their bytes. A name lives in the slot
    /// its key maps to or the one beside it (the slot's index with its lowest bit flipped), so
    /// that two names of the same slot both stay (with one slot each, the second was hashed on
    /// every line). A slot holds a name's key and its index in `order` plus one (0 for an empty
    /// slot).
    recent: [(NameKey, u32); 64],
}

impl Default for ListNames {
    fn default() -> ListNames {
        ListNames {
            seen: HashMap::default(),
            order: Vec::new(),
            cap: MAX_LISTS_PER_ACCOUNT + 1,
            recent: [(NameKey::default(), 0); 64],
        }
    }
}

/// A name as [`ListNames::recent`] tells names apart: its first and last eight bytes
/// (zero-padded when it is shorter), which are the whole name when it has at most 16, and its
/// length.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct NameKey {
    head: u64,
    tail: u64,
    len: usize,
}

impl NameKey {
    fn of(name: &[u8]) -> NameKey {
        NameKey {
            head: key_fingerprint(name, 0, name),
            tail: name.last_chunk::<8>().map_or(0, |&t| u64::from_le_bytes(t)),
            len: name.len(),
        }
    }
}

impl ListNames {
    /// A set that keeps no names, for lines checked on their own, where no file-level check
    /// follows.
    pub fn unused() -> ListNames {
        ListNames {
            cap: 0,
            ..ListNames::default()
        }
    }

    /// Records a name seen on `line`.
    pub fn add(&mut self, name: &[u8], line: u64) {
        if self.order.len() >= self.cap {
            return;
        }
        let key = NameKey::of(name);
        let slot = fingerprint_slot(key.head, key.len) as usize;
        for way in [slot, slot ^ 1] {
            let (cached, index) = self.recent[way];
            if index != 0
                && cached == key
                && (name.len() <= 16 || *self.order[index as usize - 1].0 == *name)
            {
                return;
            }
        }
        let index = match self.seen.get(name) {
            Some(&index) => index,
            None => {
                self.order.push((name.into(), line));
                let index = self.order.len() as u32;
                self.seen.insert(name.into(), index);
                index
            }
        };
        if index != 0 {
            // The slot's own place when it is free, else the one beside it when that is free,
            // else the slot's own.
            let way = if self.recent[slot].1 != 0 && self.recent[slot ^ 1].1 == 0 {
                slot ^ 1
            } else {
                slot
            };
            self.recent[way] = (key, index);
        }
    }

    /// Whether the name was seen; used while merging runs in order.
    pub fn insert_global(&mut self, name: &[u8]) -> bool {
        if self.seen.contains_key(name) {
            false
        } else {
            self.seen.insert(name.into(), 0);
            true
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

/// What the check of a line carries from line to line: buffers, so that checking a valid line
/// allocates nothing, and what is already known of the block the lines come from.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The scanner's key buffer.
    keys: Vec<KeyRef>,
    /// The list names of the line being checked.
    lists: Vec<KeyRef>,
    /// The whole block is valid UTF-8, so every line of it is (lines end at an ASCII byte).
    block_utf8: bool,
    /// The block holds no NUL byte and no carriage return.
    block_no_nul_cr: bool,
    /// The fast path's buffers.
    fast: FastScratch,
    /// Whether the fast path is off (tests compare the two paths).
    full_only: bool,
    /// The fast path's buffers were taken for a whole block ([`Scratch::take_fast`]), whose
    /// walk already answered "not sure" for every line that comes to [`check_line`]: such a
    /// line goes straight to the full check. (Walked again on its own, it would almost always
    /// get the same answer; the exception, a clean line whose end lies in the chunk where stage
    /// 1 stopped for the next line's bad bytes, costs only the full check's time, which finds
    /// nothing in it.)
    fast_taken: bool,
}

impl Scratch {
    /// Scratch that sends every line through the full check, for tests that hold the fast path
    /// to its verdict.
    #[cfg(test)]
    pub fn full_only() -> Scratch {
        Scratch {
            full_only: true,
            ..Scratch::default()
        }
    }

    /// The fast path's buffers, for [`crate::fast::clean_lines`] over the whole block, when it
    /// may run: lines of JSON, the fast path not turned off. The lines it is not sure of then
    /// take [`check_line`] with this scratch.
    pub fn take_fast(&mut self, format: Format) -> Option<FastScratch> {
        let runs = self.fast_runs(format);
        self.fast_taken |= runs;
        runs.then(|| std::mem::take(&mut self.fast))
    }

    fn fast_runs(&self, format: Format) -> bool {
        format == Format::Json && !self.full_only
    }

    /// Scratch for the lines of `block`, of `format`, checked once as a whole: the per-line
    /// checks for invalid UTF-8, NUL bytes and carriage returns run only when the block needs
    /// them. When the fast path takes the block, it checks the encoding as it indexes the lines,
    /// and the few lines it leaves to the full check look for invalid UTF-8, NUL and CR
    /// themselves: a scan of the whole block for them would be wasted.
    pub fn for_block(block: &[u8], format: Format) -> Scratch {
        let mut scratch = Scratch::default();
        if !scratch.fast_runs(format) {
            scratch.block_utf8 = simdutf8::basic::from_utf8(block).is_ok();
            scratch.block_no_nul_cr = memchr::memchr2(0, b'\r', block).is_none();
        }
        scratch
    }
}

/// Settings the per-line checks need.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineRules {
    pub format: Format,
    pub strict: bool,
}

/// Where a line is and what it holds; `content` has no `\n` and no CRLF `\r`.
pub(crate) struct LineCtx<'a> {
    pub number: u64,
    /// Byte offset of the line's first byte in the input, where known.
    pub offset: Option<u64>,
    pub content: &'a [u8],
}

impl LineCtx<'_> {
    fn column(&self, byte: usize) -> u32 {
        let upto = &self.content[..byte.min(self.content.len())];
        let chars = upto.iter().filter(|&&b| (b as i8) >= -0x40).count();
        u32::try_from(chars + 1).unwrap_or(u32::MAX)
    }
}

/// Collects one line's findings.
pub(crate) struct LineOut<'v> {
    pub findings: &'v mut Vec<Finding>,
    pub strict: bool,
    pub errors: bool,
    /// The findings are only counted: they get no field and an empty message, which spares
    /// formatting them (most of the time a line with a finding takes). See
    /// [`crate::Sink::details_wanted`].
    pub brief: bool,
}

impl LineOut<'_> {
    /// Records a finding. Its field and message are worked out only when they are wanted
    /// (see [`LineOut::brief`]).
    fn push(
        &mut self,
        ctx: &LineCtx<'_>,
        byte: Option<usize>,
        code: Code,
        field: impl FnOnce() -> Option<String>,
        message: impl FnOnce() -> String,
    ) {
        let severity = if self.strict {
            Severity::Error
        } else {
            code.default_severity()
        };
        self.errors |= severity == Severity::Error;
        let (field, message) = if self.brief {
            (None, String::new())
        } else {
            (field(), message())
        };
        self.findings.push(Finding {
            line: ctx.number,
            column: byte.map(|b| ctx.column(b)),
            severity,
            code,
            field,
            message,
        });
    }
}

/// The outcome of checking one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    Blank,
    Record,
}

/// Checks one line (without its `\n`; a CRLF `\r` may still end it). Returns whether it was blank.
/// Findings are appended to `out`; list names go to `lists`. `offset` is the line's byte offset in
/// the input where known; offset 0 is the first line, where a byte-order mark is tolerated.
pub(crate) fn check_line(
    rules: LineRules,
    number: u64,
    offset: Option<u64>,
    line: &[u8],
    out: &mut LineOut<'_>,
    lists: &mut ListNames,
    scratch: &mut Scratch,
) -> LineKind {
    let content = line.strip_suffix(b"\r").unwrap_or(line);
    // Most lines break no rule: the fast path recognises those, and everything else takes the
    // full check below, which says what is wrong. A byte-order mark ends the fast path, so the
    // first line's is still reported.
    if rules.format == Format::Json
        && !scratch.full_only
        && !scratch.fast_taken
        && crate::fast::clean(content, &mut scratch.fast)
    {
        for &(start, end) in &scratch.fast.lists {
            lists.add(&content[start as usize..end as usize], number);
        }
        return LineKind::Record;
    }
    let first = out.findings.len();
    let kind = check_line_in_full(rules, number, offset, content, out, lists, scratch);
    // A line's findings in the order of their columns, as the line reads (a finding of the whole
    // line, with no column, first); those of a column in the order the check found them.
    if let Some(line) = out.findings.get_mut(first..).filter(|f| f.len() > 1) {
        line.sort_by_key(|f| f.column);
    }
    kind
}

/// [`check_line`] for a line the fast path is not sure of: every rule, and what it finds.
fn check_line_in_full(
    rules: LineRules,
    number: u64,
    offset: Option<u64>,
    mut content: &[u8],
    out: &mut LineOut<'_>,
    lists: &mut ListNames,
    scratch: &mut Scratch,
) -> LineKind {
    let mut ctx = LineCtx {
        number,
        offset,
        content,
    };
    if offset == Some(0) {
        if let Some(rest) = content.strip_prefix(BOM) {
            out.push(
                &ctx,
                Some(0),
                Code::Bom,
                || None,
                || {
                    "the file starts with a UTF-8 byte-order mark; the line is read without it"
                        .into()
                },
            );
            content = rest;
            ctx.content = rest;
            ctx.offset = Some(BOM.len() as u64);
        }
    }
    if !scratch.block_utf8 && simdutf8::basic::from_utf8(content).is_err() {
        // The fast check says only that the line is bad; the careful one says where.
        let at = std::str::from_utf8(content)
            .err()
            .map_or(0, |e| e.valid_up_to());
        let offset = ctx.offset;
        out.push(
            &ctx,
            Some(at),
            Code::InvalidUtf8,
            || None,
            || {
                let in_file = offset
                    .map(|o| format!(" (byte offset {} in the file)", o + at as u64))
                    .unwrap_or_default();
                format!("invalid UTF-8 at byte {at} of the line{in_file}")
            },
        );
        return LineKind::Record;
    }
    let nul_or_cr = if scratch.block_no_nul_cr {
        None
    } else {
        memchr::memchr2(0, b'\r', content)
    };
    if let Some(at) = nul_or_cr {
        let (code, message) = if content[at] == 0 {
            (Code::NulByte, "a raw NUL byte")
        } else {
            (
                Code::BareCr,
                "a carriage return inside the line: lines must end with `\\n` or `\\r\\n`, not `\\r` alone",
            )
        };
        out.push(&ctx, Some(at), code, || None, || message.to_string());
        return LineKind::Record;
    }
    // In an update file, JSON's whitespace only: a form feed or vertical tab makes a line that
    // is not blank (and not JSON either). In an email file, the spaces trimmed around an
    // address: a line of nothing else holds no address, not an empty one.
    let blank = match rules.format {
        Format::Json => content.iter().all(|&b| crate::json::is_ws(b)),
        Format::Emails => content.iter().all(|&b| is_space(char::from(b))),
    };
    if blank {
        out.push(
            &ctx,
            None,
            Code::BlankLine,
            || None,
            || "a blank line (the platform skips it)".into(),
        );
        return LineKind::Blank;
    }
    match rules.format {
        Format::Json => check_update(&ctx, out, lists, scratch),
        Format::Emails => check_email_line(&ctx, out),
    }
    LineKind::Record
}

/// The spaces around an address that draw a warning rather than an error: ASCII whitespace
/// (space, tab, line feed, vertical tab, form feed, carriage return), which a trim before sending
/// removes. Any other (a no-break space, an em space) is a character of the address, which it
/// makes invalid.
fn is_space(c: char) -> bool {
    c.is_ascii_whitespace() || c == '\x0B'
}

fn trim_spaces(text: &str) -> &str {
    text.trim_matches(is_space)
}

fn check_email_line(ctx: &LineCtx<'_>, out: &mut LineOut<'_>) {
    // UTF-8 was checked by the caller.
    let text = std::str::from_utf8(ctx.content).unwrap_or_default();
    let trimmed = trim_spaces(text);
    let lead = text.len() - text.trim_start_matches(is_space).len();
    if trimmed.len() != text.len() {
        out.push(
            ctx,
            Some(0),
            Code::EmailWhitespace,
            || None,
            || "spaces around the address".into(),
        );
    }
    let pieces = trimmed
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .count();
    if pieces > 1 {
        out.push(
            ctx,
            Some(lead),
            Code::NotOneAddress,
            || None,
            || format!(
                "the line holds {pieces} items separated by commas, semicolons or spaces; an email file has one address per line"
            ),
        );
    } else if let Some(problem) = email_problem(trimmed) {
        out.push(
            ctx,
            Some(lead),
            Code::InvalidEmail,
            || None,
            || format!("{trimmed:?} is not a valid email address: {problem}"),
        );
    }
}

/// Checks an email-valued string field.
fn check_email_value(ctx: &LineCtx<'_>, out: &mut LineOut<'_>, value: &Str<'_>, field: &str) {
    let text = value.decode();
    let trimmed = trim_spaces(&text);
    if trimmed.len() != text.len() {
        out.push(
            ctx,
            Some(value.pos),
            Code::EmailWhitespace,
            || Some(field.into()),
            || format!("spaces around the address in `{field}`"),
        );
    }
    if let Some(problem) = email_problem(trimmed) {
        out.push(
            ctx,
            Some(value.pos),
            Code::InvalidEmail,
            || Some(field.into()),
            || format!("`{field}` {trimmed:?} is not a valid email address: {problem}"),
        );
    }
}

/// What the top-level walk remembers for the checks that need the whole object.
#[derive(Default)]
struct Identity<'a> {
    email: bool,
    /// Every `id` that is a non-empty string, in order. A repeated `id` draws a duplicate-key
    /// warning, and each of its values is checked, as every repeated field's value is (the
    /// platform keeps the last one; a value it drops is still a mistake in the file).
    ids: Vec<Str<'a>>,
    /// The last `key`, when it names an identity key.
    key: Option<Str<'a>>,
    /// The last `key` names none: what `id` is meant to be is unknown, so it is not checked as
    /// an address (the `unknown_key` error is the line's one finding about its identity).
    key_unknown: bool,
}

fn check_update(
    ctx: &LineCtx<'_>,
    out: &mut LineOut<'_>,
    lists: &mut ListNames,
    scratch: &mut Scratch,
) {
    let mut s = Scanner::with_keys(ctx.content, std::mem::take(&mut scratch.keys));
    scratch.lists.clear();
    check_object(ctx, out, lists, &mut s, &mut scratch.lists);
    scratch.keys = s.into_keys();
}

fn check_object(
    ctx: &LineCtx<'_>,
    out: &mut LineOut<'_>,
    lists: &mut ListNames,
    s: &mut Scanner<'_>,
    line_lists: &mut Vec<KeyRef>,
) {
    s.skip_ws();
    if s.peek() != Some(b'{') {
        match s.value(Path::Root) {
            Err(e) => invalid_json(ctx, out, &e),
            Ok(v) => {
                if s.at_end() {
                    out.push(
                        ctx,
                        Some(0),
                        Code::NotAnObject,
                        || None,
                        || {
                            format!(
                                "the line is {}, not an object; each line must be one JSON object",
                                v.type_name()
                            )
                        },
                    );
                } else {
                    trailing(ctx, out, s);
                }
            }
        }
        return;
    }
    // Findings of the rules are held back until the JSON is known to be valid: an invalid line
    // gets one finding, not a cascade.
    let mut held = Vec::new();
    let mut ident = Identity::default();
    let outcome = {
        let mut rules_out = LineOut {
            findings: &mut held,
            strict: out.strict,
            errors: false,
            brief: out.brief,
        };
        let result = s.object(Path::Root, |s, key, path| {
            member(ctx, &mut rules_out, s, key, path, &mut ident, line_lists)
        });
        let errors = rules_out.errors;
        result.map(|()| errors)
    };
    let rule_errors = match outcome {
        Err(e) => return invalid_json(ctx, out, &e),
        Ok(errors) => errors,
    };
    if !s.at_end() {
        return trailing(ctx, out, s);
    }
    for note in std::mem::take(&mut s.notes) {
        match note {
            Note::DuplicateKey { pos, field } => out.push(
                ctx,
                Some(pos),
                Code::DuplicateKey,
                || Some(field.clone()),
                || format!("`{field}` appears twice in the same object; the last one wins"),
            ),
            Note::BigInteger { pos, field } => out.push(
                ctx,
                Some(pos),
                Code::IntegerPrecision,
                || field,
                || {
                    "an integer beyond 2^53 may lose precision on the platform; send it as a string"
                        .into()
                },
            ),
        }
    }
    out.errors |= rule_errors;
    out.findings.append(&mut held);
    if !ident.email && ident.ids.is_empty() {
        out.push(
            ctx,
            Some(0),
            Code::MissingIdentity,
            || None,
            || "the object has neither `email` nor `id`: the platform cannot tell whose profile to update"
                .into(),
        );
    }
    if !ident.key_unknown && ident.key.is_none_or(|k| k.is("email")) {
        for id in &ident.ids {
            check_email_value(ctx, out, id, "id");
        }
    }
    for name in line_lists.iter() {
        lists.add(name.str(ctx.content).decode().as_bytes(), ctx.number);
    }
}

fn invalid_json(ctx: &LineCtx<'_>, out: &mut LineOut<'_>, e: &SyntaxError) {
    out.push(
        ctx,
        Some(e.pos),
        Code::InvalidJson,
        || None,
        || format!("invalid JSON: {}", e.what),
    );
}

/// Reports what follows a complete value: a second value, or garbage.
fn trailing(ctx: &LineCtx<'_>, out: &mut LineOut<'_>, s: &mut Scanner<'_>) {
    let at = s.pos();
    let rest = &ctx.content[at..];
    let mut second = Scanner::new(rest);
    let two_values = second.value(Path::Root).is_ok();
    if two_values {
        out.push(
            ctx,
            Some(at),
            Code::MultipleValues,
            || None,
            || "a second JSON value on the same line; put each object on its own line".into(),
        );
    } else {
        out.push(
            ctx,
            Some(at),
            Code::InvalidJson,
            || None,
            || "invalid JSON: trailing characters after the value".into(),
        );
    }
}

type Scan<T> = Result<T, SyntaxError>;

fn member<'a>(
    ctx: &LineCtx<'_>,
    out: &mut LineOut<'_>,
    s: &mut Scanner<'a>,
    key: Str<'a>,
    path: Path<'_>,
    ident: &mut Identity<'a>,
    line_lists: &mut Vec<KeyRef>,
) -> Scan<()> {
    let here = Path::Key(&path, &key);
    s.skip_ws();
    let at = s.pos();
    let name = key.decode();
    match &*name {
        "email" => {
            let v = s.value(here)?;
            ident.email = true;
            match v {
                Val::Str(v) => check_email_value(ctx, out, &v, "email"),
                other => out.push(
                    ctx,
                    Some(at),
                    Code::InvalidEmail,
                    || Some("email".into()),
                    || format!("`email` must be a string, not {}", other.type_name()),
                ),
            }
        }
        "id" => match s.value(here)? {
            Val::Str(v) if !v.raw.is_empty() => ident.ids.push(v),
            other => {
                // Still an identity attempt: no second "missing identity" finding.
                ident.email = true;
                let what = if let Val::Str(_) = other {
                    "an empty string"
                } else {
                    other.type_name()
                };
                out.push(
                    ctx,
                    Some(at),
                    Code::InvalidId,
                    || Some("id".into()),
                    || format!("`id` must be a non-empty string, not {what}"),
                );
            }
        },
        "key" => {
            let v = s.value(here)?;
            match v {
                Val::Str(k) if is_identity_key(&k.decode()) => {
                    ident.key = Some(k);
                    ident.key_unknown = false;
                }
                other => {
                    ident.key_unknown = true;
                    out.push(
                        ctx,
                        Some(at),
                        Code::UnknownKey,
                        || Some("key".into()),
                        || {
                            let shown = match other {
                                Val::Str(k) => format!("{:?}", k.decode()),
                                other => other.type_name().to_string(),
                            };
                            format!(
                                "`key` is {shown}; it must be one of {}",
                                quoted(&IDENTITY_KEYS)
                            )
                        },
                    );
                }
            }
        }
        "keys" => {
            if s.peek() == Some(b'{') {
                s.object(here, |s, k, path| {
                    let field = || Path::Key(&path, &k).render();
                    s.skip_ws();
                    let vat = s.pos();
                    let kname = k.decode();
                    if !is_identity_key(&kname) {
                        out.push(ctx, Some(k.pos), Code::UnknownKey, field, || {
                            format!(
                                "{kname:?} is not an identity key; keys are {}",
                                quoted(&IDENTITY_KEYS)
                            )
                        });
                    }
                    match s.value(Path::Key(&path, &k))? {
                        Val::Str(_) => {}
                        other => out.push(ctx, Some(vat), Code::InvalidKeys, field, || {
                            format!("key values must be strings, not {}", other.type_name())
                        }),
                    }
                    Ok(())
                })?;
            } else {
                let what = "an object of string values";
                wrong_type(ctx, out, s, here, at, Code::InvalidKeys, "keys", what)?;
            }
        }
        "keysconflict" => match s.value(here)? {
            Val::Str(v) if KEYSCONFLICT_VALUES.iter().any(|k| v.is(k)) => {}
            other => out.push(
                ctx,
                Some(at),
                Code::InvalidKeysconflict,
                || Some("keysconflict".into()),
                || {
                    format!(
                        "`keysconflict` is {}; it must be one of {}",
                        describe(&other),
                        quoted(&KEYSCONFLICT_VALUES)
                    )
                },
            ),
        },
        "vars" => {
            if s.peek() == Some(b'{') {
                s.object(here, |s, k, path| var(ctx, out, s, k, path))?;
            } else {
                wrong_type(
                    ctx,
                    out,
                    s,
                    here,
                    at,
                    Code::VarsNotObject,
                    "vars",
                    "an object",
                )?;
            }
        }
        "lists" => {
            if s.peek() == Some(b'{') {
                s.object(here, |s, k, path| list(ctx, out, s, k, path, line_lists))?;
            } else {
                let what = "an object of list names to 0 or 1";
                wrong_type(ctx, out, s, here, at, Code::ListsNotObject, "lists", what)?;
            }
        }
        "optout" => match s.value(here)? {
            Val::Str(v) if Optout::parse(&v.decode()).is_some() => {}
            other => out.push(
                ctx,
                Some(at),
                Code::InvalidOptout,
                || Some("optout".into()),
                || {
                    format!(
                        "`optout` is {}; it must be one of {}",
                        describe(&other),
                        quoted(&OPTOUT_VALUES)
                    )
                },
            ),
        },
        "signup_date" => {
            let v = s.value(here)?;
            let valid = match v {
                Val::Str(d) => parse_signup_date(&d.decode()).is_some(),
                Val::Num(n) => n.as_i64().is_some_and(is_valid_unix_timestamp),
                _ => false,
            };
            if !valid {
                out.push(
                    ctx,
                    Some(at),
                    Code::InvalidSignupDate,
                    || Some("signup_date".into()),
                    || format!(
                        "`signup_date` is {}, not a real date in an accepted format ({ACCEPTED_FORMATS})",
                        describe(&v)
                    ),
                );
            }
        }
        "delete_vars" => {
            if s.peek() == Some(b'[') {
                s.array(here, |s, path| {
                    s.skip_ws();
                    let iat = s.pos();
                    match s.value(path)? {
                        Val::Str(_) => {}
                        other => out.push(
                            ctx,
                            Some(iat),
                            Code::InvalidDeleteVars,
                            || path.render(),
                            || {
                                format!(
                                    "`delete_vars` must hold var names as strings, not {}",
                                    other.type_name()
                                )
                            },
                        ),
                    }
                    Ok(())
                })?;
            } else {
                let (code, what) = (Code::InvalidDeleteVars, "an array of var names");
                wrong_type(ctx, out, s, here, at, code, "delete_vars", what)?;
            }
        }
        other => {
            s.value(here)?;
            if !UPDATE_LINE_FIELDS.contains(&other) {
                out.push(
                    ctx,
                    Some(key.pos),
                    Code::UnknownField,
                    || Some(other.to_string()),
                    || {
                        format!(
                            "unknown field `{other}`: the update job ignores it (known fields: {})",
                            quoted(&UPDATE_LINE_FIELDS)
                        )
                    },
                );
            }
        }
    }
    Ok(())
}

/// Consumes a value of the wrong type and reports it: "`field` must be WHAT, not TYPE".
#[allow(clippy::too_many_arguments)]
fn wrong_type(
    ctx: &LineCtx<'_>,
    out: &mut LineOut<'_>,
    s: &mut Scanner<'_>,
    here: Path<'_>,
    at: usize,
    code: Code,
    field: &str,
    what: &str,
) -> Scan<()> {
    let v = s.value(here)?;
    out.push(
        ctx,
        Some(at),
        code,
        || Some(field.into()),
        || format!("`{field}` must be {what}, not {}", v.type_name()),
    );
    Ok(())
}

/// A value as a message shows it: strings quoted, other kinds by type.
fn describe(v: &Val<'_>) -> String {
    match v {
        Val::Str(s) => format!("{:?}", s.decode()),
        Val::Num(n) => String::from_utf8_lossy(n.raw).into_owned(),
        other => other.type_name().to_string(),
    }
}

fn var<'a>(
    ctx: &LineCtx<'_>,
    out: &mut LineOut<'_>,
    s: &mut Scanner<'a>,
    key: Str<'a>,
    path: Path<'_>,
) -> Scan<()> {
    let here = Path::Key(&path, &key);
    let field = || here.render();
    if let Some(problem) = var_name_problem(&key.decode()) {
        let code = match problem {
            VarNameProblem::Empty => Code::VarNameEmpty,
            VarNameProblem::AllDigits => Code::VarNameAllDigits,
            VarNameProblem::LeadingDigit => Code::VarNameLeadingDigit,
            _ => Code::VarNameInvalidChar,
        };
        out.push(ctx, Some(key.pos), code, field, || {
            let name = key.decode();
            match problem {
                VarNameProblem::Empty => "a var name is empty".to_string(),
                VarNameProblem::AllDigits => format!("var name {name:?} is all digits"),
                VarNameProblem::LeadingDigit => format!("var name {name:?} starts with a digit"),
                VarNameProblem::InvalidChar(c) => format!(
                    "var name {name:?} holds {c:?}; names hold only ASCII letters, digits and `_` (the platform would rename it)"
                ),
                _ => format!("var name {name:?} is not accepted"),
            }
        });
    } else if key.raw.len() > VAR_NAME_MAX_CHARS && key.char_len() > VAR_NAME_MAX_CHARS {
        out.push(ctx, Some(key.pos), Code::VarNameTooLong, field, || {
            format!(
                "var name is {} characters long; the documented maximum is {VAR_NAME_MAX_CHARS}",
                key.char_len()
            )
        });
    }
    s.skip_ws();
    let at = s.pos();
    if let Val::Str(v) = s.value(here)? {
        // Characters never outnumber bytes: only long raw strings need counting.
        if v.raw.len() > VAR_VALUE_MAX_CHARS && v.char_len() > VAR_VALUE_MAX_CHARS {
            out.push(
                ctx,
                Some(at),
                Code::VarValueTooLong,
                field,
                || format!(
                    "the value is {} characters long; the documented maximum is {VAR_VALUE_MAX_CHARS}",
                    v.char_len()
                ),
            );
        }
    }
    Ok(())
}

fn list<'a>(
    ctx: &LineCtx<'_>,
    out: &mut LineOut<'_>,
    s: &mut Scanner<'a>,
    key: Str<'a>,
    path: Path<'_>,
    line_lists: &mut Vec<KeyRef>,
) -> Scan<()> {
    let here = Path::Key(&path, &key);
    let name = key.decode();
    match list_name_problem(&name) {
        Some(ListNameProblem::Dollar) => out.push(
            ctx,
            Some(key.pos),
            Code::ListNameDollar,
            || here.render(),
            || format!("list name {name:?}: a list name cannot contain a $ character"),
        ),
        Some(_) => out.push(
            ctx,
            Some(key.pos),
            Code::ListNameNoValidChar,
            || here.render(),
            || format!("list name {name:?} failed validation: it holds no letter or digit"),
        ),
        None => line_lists.push(KeyRef::of(&key, s.line())),
    }
    s.skip_ws();
    let at = s.pos();
    let v = s.value(here)?;
    let ok = matches!(v, Val::Num(n) if n.raw == b"0" || n.raw == b"1");
    if !ok {
        out.push(
            ctx,
            Some(at),
            Code::InvalidListValue,
            || here.render(),
            || {
                format!(
                    "list value is {}; it must be 1 (subscribe) or 0 (unsubscribe)",
                    describe(&v)
                )
            },
        );
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn list_names_are_kept_once_each_in_order_of_first_appearance() {
        // Names of every length around the cache's 8- and 16-byte words, some differing only in
        // a middle byte, seen again and again in a shuffled order: the set keeps each once, at
        // its first line, as a plain scan would.
        let mut names: Vec<Vec<u8>> = Vec::new();
        for len in 0..40 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            names.push(base.clone());
            if len > 2 {
                let mut other = base.clone();
                other[len / 2] = b'Z';
                names.push(other);
            }
        }
        let mut lists = ListNames::default();
        let mut want: Vec<(Vec<u8>, u64)> = Vec::new();
        let mut state = 7u64;
        for line in 1..5000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let name = &names[(state >> 33) as usize % names.len()];
            lists.add(name, line);
            if !want.iter().any(|(n, _)| n == name) {
                want.push((name.clone(), line));
            }
        }
        let got: Vec<(Vec<u8>, u64)> = lists.order.iter().map(|(n, l)| (n.to_vec(), *l)).collect();
        assert_eq!(got, want);
        assert_eq!(lists.len(), names.len());
    }

    /// Two names whose keys map to the same slot of the cache both stay in it (where one slot
    /// each left the second to be hashed on every line), and a name first seen by the merge of
    /// runs is kept in order, not cached, when a run then adds it.
    #[test]
    fn list_names_of_one_slot_both_stay_cached() {
        let slot_of = |name: &[u8]| {
            let key = NameKey::of(name);
            fingerprint_slot(key.head, key.len) as usize
        };
        let names: Vec<Vec<u8>> = (0..200).map(|i| format!("List {i}").into_bytes()).collect();
        let (a, b) = names
            .iter()
            .enumerate()
            .find_map(|(i, a)| {
                let b = names[i + 1..].iter().find(|b| slot_of(b) == slot_of(a))?;
                Some((a.clone(), b.clone()))
            })
            .expect("two names of one slot among 200");
        let mut lists = ListNames::default();
        for line in 1..10 {
            lists.add(&a, line);
            lists.add(&b, line);
        }
        let slot = slot_of(&a);
        let cached: Vec<NameKey> = [slot, slot ^ 1].map(|s| lists.recent[s].0).to_vec();
        assert!(cached.contains(&NameKey::of(&a)) && cached.contains(&NameKey::of(&b)));
        let order: Vec<(&[u8], u64)> = lists.order.iter().map(|(n, l)| (&n[..], *l)).collect();
        assert_eq!(order, [(&a[..], 1), (&b[..], 1)]);

        let mut merged = ListNames::default();
        assert!(merged.insert_global(&a));
        assert!(!merged.insert_global(&a));
        merged.add(&a, 3);
        merged.add(&b, 4);
        let order: Vec<(&[u8], u64)> = merged.order.iter().map(|(n, l)| (&n[..], *l)).collect();
        assert_eq!(
            order,
            [(&b[..], 4)],
            "a name the merge saw first is not added again"
        );
        assert_eq!(merged.len(), 2);
    }

    /// Checks `line` as line 2, at byte 10 of its file, with `scratch`; the findings and the list
    /// names seen.
    pub(crate) fn run_with(
        format: Format,
        strict: bool,
        line: &[u8],
        scratch: &mut Scratch,
    ) -> (Vec<Finding>, ListNames) {
        let mut findings = Vec::new();
        let mut out = LineOut {
            findings: &mut findings,
            strict,
            errors: false,
            brief: false,
        };
        let mut lists = ListNames::default();
        let rules = LineRules { format, strict };
        check_line(rules, 2, Some(10), line, &mut out, &mut lists, scratch);
        (findings, lists)
    }

    /// Every line of the fixtures (accepted, rejected and JSONTestSuite's cases), for tests
    /// that hold two ways of checking to one answer.
    pub(crate) fn fixture_lines() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut lines = Vec::new();
        for kind in ["accepted", "rejected", "jsontestsuite"] {
            for entry in std::fs::read_dir(dir.join(kind)).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .extension()
                    .is_some_and(|e| e == "expected" || e == "md")
                {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                lines.extend(bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec));
            }
        }
        assert!(lines.len() > 500, "{}", lines.len());
        lines
    }

    /// Brief findings are the full ones without their fields and messages: the same lines,
    /// columns, severities and codes, in the same order, and the same verdict, on every line of
    /// the fixtures, in both formats, strict or not.
    #[test]
    fn brief_findings_are_the_full_ones_bare() {
        let mut compared = 0;
        for line in fixture_lines() {
            let line = &line[..];
            for (format, strict) in [
                (Format::Json, false),
                (Format::Json, true),
                (Format::Emails, false),
            ] {
                let check = |brief: bool| {
                    let mut findings = Vec::new();
                    let mut out = LineOut {
                        findings: &mut findings,
                        strict,
                        errors: false,
                        brief,
                    };
                    let mut lists = ListNames::default();
                    let rules = LineRules { format, strict };
                    let mut scratch = Scratch::default();
                    check_line(rules, 2, Some(10), line, &mut out, &mut lists, &mut scratch);
                    let errors = out.errors;
                    (findings, errors, lists.order)
                };
                let (full, full_errors, full_lists) = check(false);
                let (bare, bare_errors, bare_lists) = check(true);
                let key = |f: &Finding| (f.line, f.column, f.severity, f.code);
                assert!(
                    full.iter().map(key).eq(bare.iter().map(key)),
                    "{}: {full:?} {bare:?}",
                    String::from_utf8_lossy(line)
                );
                assert!(bare
                    .iter()
                    .all(|f| f.message.is_empty() && f.field.is_none()));
                assert!(full.iter().all(|f| !f.message.is_empty()));
                assert_eq!(full_errors, bare_errors);
                assert_eq!(full_lists, bare_lists);
                compared += full.len();
            }
        }
        assert!(compared > 500, "{compared}");
    }

    fn run(format: Format, strict: bool, line: &str) -> Vec<Finding> {
        run_with(format, strict, line.as_bytes(), &mut Scratch::default()).0
    }

    fn codes(line: &str) -> Vec<&'static str> {
        run(Format::Json, false, line)
            .into_iter()
            .map(|f| f.code.as_str())
            .collect()
    }

    /// A line's findings come in the order of their columns, whatever order the check found
    /// them in: a finding of the whole object (no identity, at its `{`) before those of its
    /// fields, and notes (duplicate keys, large integers) among the others.
    #[test]
    fn a_lines_findings_come_in_column_order() {
        let cases: [(&str, &[&str]); 3] = [
            (
                r#"{"Email":"a@b.co","lists":{"Main":2},"vars":{"n":9007199254740993}}"#,
                &[
                    "missing_identity",
                    "unknown_field",
                    "invalid_list_value",
                    "integer_precision",
                ],
            ),
            (
                r#"{"email":"a@b.co","vars":{"x":1,"x":2},"optout":"maybe"}"#,
                &["duplicate_key", "invalid_optout"],
            ),
            (
                r#"{"vars":{"1st":1},"email":"nope","meta":1}"#,
                &["var_name_leading_digit", "invalid_email", "unknown_field"],
            ),
        ];
        for (line, want) in cases {
            let found = run(Format::Json, false, line);
            let columns: Vec<Option<u32>> = found.iter().map(|f| f.column).collect();
            assert!(columns.is_sorted(), "{line}: {columns:?}");
            let got: Vec<&str> = found.iter().map(|f| f.code.as_str()).collect();
            assert_eq!(got, want, "{line}");
        }
    }

    fn email_codes(line: &str) -> Vec<&'static str> {
        run(Format::Emails, false, line)
            .into_iter()
            .map(|f| f.code.as_str())
            .collect()
    }

    /// Lines that break no rule (the fast path's tests use them too).
    pub(crate) const VALID_LINES: &[&str] = &[
        r#"{"email":"a@example.com"}"#,
        r#"{"id":"user1@example.com", "keys":{"extid":"12"}, "fields":{"keys":1}, "vars":{"updated":"yes"}, "lists":{"Update List":1}}"#,
        r#"{"id":"user3@example.com", "keys":{"extid":"14"}, "fields":{"keys":1}, "optout":"all"}"#,
        r#"{"id":"user4@example.com", "signup_date":"1987-08-01"}"#,
        r#"{"email":"someone@somedomain.com", "signup_date":"Jan 18, 2013"}"#,
        r#"{"id":"12","key":"extid","vars":{"a":[1,{"b":null}],"c":true,"d":1.5}}"#,
        r#"{"email":"a@example.com","signup_date":1358467200,"delete_vars":["x","y"],"keysconflict":"merge"}"#,
        r#"{"email":"a@example.com","lists":{"!! bar/foo":0}}"#,
        "{\"email\":\"a@example.com\"}\r",
        " {\"email\":\"a@example.com\"} ",
    ];

    #[test]
    fn valid_lines_have_no_findings() {
        for line in VALID_LINES {
            assert_eq!(codes(line), Vec::<&str>::new(), "{line}");
        }
    }

    #[test]
    fn json_level_errors() {
        assert_eq!(codes(r#"{"email":"a@example.com""#), ["invalid_json"]);
        assert_eq!(
            codes(r#"{"email":"a@example.com"} {"email":"b@example.com"}"#),
            ["multiple_values"]
        );
        assert_eq!(codes(r#"{"email":"a@example.com"} x"#), ["invalid_json"]);
        assert_eq!(codes("[1,2]"), ["not_an_object"]);
        assert_eq!(codes("\"a@example.com\""), ["not_an_object"]);
        assert_eq!(codes("[1,2"), ["invalid_json"]);
        assert_eq!(
            codes(r#"{"email":"a@example.com","n":1e999}"#),
            ["invalid_json"]
        );
        assert_eq!(
            codes(r#"{"email":"a\ud800@example.com"}"#),
            ["invalid_json"]
        );
        // A rule violation inside invalid JSON is not reported on top.
        assert_eq!(codes(r#"{"vars":{"1a":1}"#), ["invalid_json"]);
    }

    #[test]
    fn byte_level_errors() {
        assert_eq!(codes("{\"email\":\"a\0@example.com\"}"), ["nul_byte"]);
        assert_eq!(codes("{\"email\":\"a@example.com\"}\r{}"), ["bare_cr"]);
        let bad = run(Format::Json, false, "{\"a\":\"\u{e9}\"}");
        assert!(bad.is_empty() || bad[0].code != Code::InvalidUtf8);
        let mut findings = Vec::new();
        let mut out = LineOut {
            findings: &mut findings,
            strict: false,
            errors: false,
            brief: false,
        };
        check_line(
            LineRules {
                format: Format::Json,
                strict: false,
            },
            5,
            Some(100),
            b"{\"email\":\"\xff\"}",
            &mut out,
            &mut ListNames::default(),
            &mut Scratch::default(),
        );
        assert_eq!(findings[0].code, Code::InvalidUtf8);
        assert_eq!(findings[0].column, Some(11));
        assert!(findings[0].message.contains("byte offset 110"));
    }

    #[test]
    fn identity_rules() {
        assert_eq!(codes(r#"{"vars":{"a":1}}"#), ["missing_identity"]);
        assert_eq!(codes(r#"{"email":"not-an-email"}"#), ["invalid_email"]);
        assert_eq!(codes(r#"{"email":5}"#), ["invalid_email"]);
        assert_eq!(codes(r#"{"id":"x"}"#), ["invalid_email"]);
        assert_eq!(codes(r#"{"id":"x","key":"email"}"#), ["invalid_email"]);
        assert_eq!(codes(r#"{"id":"x","key":"sid"}"#), Vec::<&str>::new());
        assert_eq!(codes(r#"{"id":"","key":"sid"}"#), ["invalid_id"]);
        assert_eq!(codes(r#"{"id":12,"key":"sid"}"#), ["invalid_id"]);
        // An unknown `key` leaves what `id` is meant to be unknown: the key is the one error,
        // not the `id` as well. The last `key` is the one that counts, as on the platform.
        assert_eq!(codes(r#"{"id":"x","key":"cookie"}"#), ["unknown_key"]);
        assert_eq!(codes(r#"{"id":"x","key":7}"#), ["unknown_key"]);
        assert_eq!(
            codes(r#"{"id":"x","key":"sid","key":"cookie"}"#),
            ["duplicate_key", "unknown_key"]
        );
        assert_eq!(
            codes(r#"{"id":"x","key":"cookie","key":"email"}"#),
            ["invalid_email", "unknown_key", "duplicate_key"]
        );
        assert_eq!(
            codes(r#"{"id":"a@b.co","key":"cookie","key":"email"}"#),
            ["unknown_key", "duplicate_key"]
        );
        // A repeated `id` has each of its values checked, as a repeated `email` has.
        assert_eq!(
            codes(r#"{"id":"bad","id":"a@b.co"}"#),
            ["invalid_email", "duplicate_key"]
        );
        assert_eq!(
            codes(r#"{"email":"bad","email":"a@b.co"}"#),
            ["invalid_email", "duplicate_key"]
        );
        assert_eq!(
            codes(r#"{"id":"a@b.co","id":"bad","id":"c@d.co"}"#),
            ["duplicate_key", "invalid_email", "duplicate_key"]
        );
        assert_eq!(
            codes(r#"{"id":"x","id":"y","key":"sid"}"#),
            ["duplicate_key"]
        );
        assert_eq!(
            codes(r#"{"email":"a@example.com","keys":{"extid":1}}"#),
            ["invalid_keys"]
        );
        assert_eq!(
            codes(r#"{"email":"a@example.com","keys":[]}"#),
            ["invalid_keys"]
        );
        assert_eq!(
            codes(r#"{"email":"a@example.com","keys":{"fb":"1"}}"#),
            ["unknown_key"]
        );
        assert_eq!(
            codes(r#"{"email":"a@example.com","keysconflict":"replace"}"#),
            ["invalid_keysconflict"]
        );
        assert_eq!(codes(r#"{"email":" a@example.com"}"#), ["email_whitespace"]);
        assert_eq!(
            codes(r#"{"email":"a@example.com\n"}"#),
            ["email_whitespace"]
        );
        assert_eq!(
            codes(r#"{"email":"a@example.com\u00a0"}"#),
            ["invalid_email"]
        );
    }

    #[test]
    fn var_rules() {
        let base = |vars: &str| format!(r#"{{"email":"a@example.com","vars":{vars}}}"#);
        assert_eq!(codes(&base("[]")), ["vars_not_object"]);
        assert_eq!(codes(&base("null")), ["vars_not_object"]);
        assert_eq!(codes(&base(r#"{"":1}"#)), ["var_name_empty"]);
        assert_eq!(codes(&base(r#"{"123":1}"#)), ["var_name_all_digits"]);
        assert_eq!(codes(&base(r#"{"1color":1}"#)), ["var_name_leading_digit"]);
        assert_eq!(
            codes(&base(r#"{"first-name":1}"#)),
            ["var_name_invalid_char"]
        );
        let name32 = "a".repeat(32);
        assert_eq!(
            codes(&base(&format!(r#"{{"{name32}":1}}"#))),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes(&base(&format!(r#"{{"{name32}b":1}}"#))),
            ["var_name_too_long"]
        );
        let v140 = "é".repeat(140);
        assert_eq!(
            codes(&base(&format!(r#"{{"a":"{v140}"}}"#))),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes(&base(&format!(r#"{{"a":"{v140}x"}}"#))),
            ["var_value_too_long"]
        );
        let escaped = "\\n".repeat(140);
        assert_eq!(
            codes(&base(&format!(r#"{{"a":"{escaped}"}}"#))),
            Vec::<&str>::new()
        );
        let f = run(Format::Json, false, &base(r#"{"ok":1,"1color":2}"#));
        assert_eq!(f[0].field.as_deref(), Some("vars.1color"));
        assert_eq!(f[0].column, Some(41));
    }

    #[test]
    fn list_rules() {
        let base = |lists: &str| format!(r#"{{"email":"a@example.com","lists":{lists}}}"#);
        assert_eq!(codes(&base("[]")), ["lists_not_object"]);
        assert_eq!(codes(&base(r#"{"Main":2}"#)), ["invalid_list_value"]);
        assert_eq!(codes(&base(r#"{"Main":"1"}"#)), ["invalid_list_value"]);
        assert_eq!(codes(&base(r#"{"Main":true}"#)), ["invalid_list_value"]);
        assert_eq!(codes(&base(r#"{"Main":1.0}"#)), ["invalid_list_value"]);
        assert_eq!(codes(&base(r#"{"Main":-1}"#)), ["invalid_list_value"]);
        assert_eq!(codes(&base(r#"{"Ma$n":1}"#)), ["list_name_dollar"]);
        assert_eq!(codes(&base(r#"{"!!":1}"#)), ["list_name_no_valid_char"]);
        let f = run(Format::Json, false, &base(r#"{"Main":2}"#));
        assert_eq!(f[0].field.as_deref(), Some("lists.Main"));
    }

    #[test]
    fn other_field_rules() {
        let base = |rest: &str| format!(r#"{{"email":"a@example.com",{rest}}}"#);
        assert_eq!(codes(&base(r#""optout":"sometimes""#)), ["invalid_optout"]);
        assert_eq!(codes(&base(r#""optout":"ALL""#)), ["invalid_optout"]);
        for ok in ["all", "blast", "basic", "none"] {
            assert_eq!(
                codes(&base(&format!(r#""optout":"{ok}""#))),
                Vec::<&str>::new()
            );
        }
        assert_eq!(
            codes(&base(r#""signup_date":"2013-02-30""#)),
            ["invalid_signup_date"]
        );
        assert_eq!(
            codes(&base(r#""signup_date":"tomorrow""#)),
            ["invalid_signup_date"]
        );
        assert_eq!(
            codes(&base(r#""signup_date":1.5"#)),
            ["invalid_signup_date"]
        );
        assert_eq!(
            codes(&base(r#""signup_date":true"#)),
            ["invalid_signup_date"]
        );
        assert_eq!(
            codes(&base(r#""signup_date":"18 Jan 2013""#)),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes(&base(r#""delete_vars":"a""#)),
            ["invalid_delete_vars"]
        );
        assert_eq!(
            codes(&base(r#""delete_vars":["a",1]"#)),
            ["invalid_delete_vars"]
        );
        assert_eq!(codes(&base(r#""color":"red""#)), ["unknown_field"]);
        assert_eq!(codes(&base(r#""vars":{"a":1,"a":2}"#)), ["duplicate_key"]);
        assert_eq!(
            codes(&base(r#""vars":{"n":12345678901234567890}"#)),
            ["integer_precision"]
        );
    }

    #[test]
    fn strict_makes_warnings_errors() {
        let f = run(Format::Json, true, r#"{"email":"a@example.com","x":1}"#);
        assert_eq!(f[0].severity, Severity::Error);
        let f = run(Format::Json, false, r#"{"email":"a@example.com","x":1}"#);
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn email_lines() {
        assert_eq!(email_codes("a@example.com"), Vec::<&str>::new());
        assert_eq!(email_codes("a@example.com\r"), Vec::<&str>::new());
        assert_eq!(email_codes(" a@example.com"), ["email_whitespace"]);
        assert_eq!(email_codes("a@example.com\t "), ["email_whitespace"]);
        assert_eq!(email_codes("a@example.com\u{b}"), ["email_whitespace"]);
        // A line of those spaces alone is blank, not an empty address.
        assert_eq!(email_codes("\u{c}"), ["blank_line"]);
        assert_eq!(email_codes(" \u{b}\t"), ["blank_line"]);
        assert_eq!(email_codes("\u{a0}"), ["invalid_email"]);
        // A no-break space is no space a trim removes: the address is invalid.
        assert_eq!(email_codes("\u{a0}a@example.com"), ["invalid_email"]);
        assert_eq!(email_codes("a@example.com\u{2003}"), ["invalid_email"]);
        assert_eq!(
            email_codes("a@example.com,b@example.com"),
            ["not_one_address"]
        );
        assert_eq!(
            email_codes("a@example.com b@example.com"),
            ["not_one_address"]
        );
        assert_eq!(email_codes("nope"), ["invalid_email"]);
        assert_eq!(email_codes(""), ["blank_line"]);
        assert_eq!(email_codes("  "), ["blank_line"]);
        assert_eq!(email_codes(" \t "), ["blank_line"]);
        // Blank is JSON's whitespace: a form feed or a vertical tab is something (serde_json
        // rejects both).
        assert_eq!(codes("\u{c}"), ["invalid_json"]);
        assert_eq!(codes(" \u{b} "), ["invalid_json"]);
        assert_eq!(codes(" \t"), ["blank_line"]);
    }

    #[test]
    fn bom_only_on_line_one() {
        let mut findings = Vec::new();
        let mut out = LineOut {
            findings: &mut findings,
            strict: false,
            errors: false,
            brief: false,
        };
        check_line(
            LineRules {
                format: Format::Json,
                strict: false,
            },
            1,
            Some(0),
            "\u{feff}{\"email\":\"a@example.com\"}".as_bytes(),
            &mut out,
            &mut ListNames::default(),
            &mut Scratch::default(),
        );
        assert!(!out.errors);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, Code::Bom);
        assert_eq!(
            codes("\u{feff}{\"email\":\"a@example.com\"}"),
            ["invalid_json"]
        );
    }

    #[test]
    fn detects_formats() {
        assert_eq!(Format::detect(b"  {\"a\":1}"), Some(Format::Json));
        assert_eq!(Format::detect(b"\xEF\xBB\xBF{}"), Some(Format::Json));
        assert_eq!(Format::detect(b"a@b.com"), Some(Format::Emails));
        // A JSON array export is JSON (its lines then fail as update lines, not as addresses).
        assert_eq!(
            Format::detect(b"[{\"email\":\"a@b.com\"},"),
            Some(Format::Json)
        );
        assert_eq!(Format::detect(b"\x0c \x0b"), None);
        assert_eq!(
            Format::detect_block(b"\x0c\n{\"email\":\"a@b.com\"}\n", true),
            Some(Format::Json)
        );
        assert_eq!(Format::detect(b"   "), None);
        // A byte-order mark counts as nothing only at the start of the input.
        let block = b"\n\xEF\xBB\xBF\n{}";
        assert_eq!(Format::detect_block(block, true), Some(Format::Emails));
        assert_eq!(Format::detect_block(&block[1..], true), Some(Format::Json));
        assert_eq!(
            Format::detect_block(&block[1..], false),
            Some(Format::Emails)
        );
    }
}
