//! Reading CSV records for conversion, in parallel: a reader thread cuts the input into pieces at
//! record boundaries, found by a scan that follows quoting exactly as csv-core does, and each
//! piece is then parsed on its own, with exact line numbers, on any core.
//!
//! Parsing a piece from its first byte gives the same records as parsing the whole input, because
//! a piece starts where csv-core's parser of the whole input is at the start of a record: just
//! after a line end that is not inside quotes. A test holds the pieces to the whole.
//!
//! csv-core's rules are the reference, but most records are split without it: a record on one line
//! whose fields are unquoted, or quoted without a line end inside, reads the same under those rules
//! when its fields are cut at the delimiters and its quoted fields' quotes dropped (a doubled quote
//! made one). Its cells are then the byte ranges of the piece they lie in, copied nowhere, where
//! csv-core copies every byte into a record a byte at a time. csv-core reads whatever is left
//! (a quoted line end, a quote inside an unquoted field, bytes after a closing quote, carriage
//! returns), record by record; tests hold every piece to csv-core's reading of the whole.

use std::borrow::BorrowMut;
use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, SyncSender};

/// CSV records with the line each starts on, counted exactly: the csv crate's positions are those
/// before the blank lines and line ends it skips, which puts a record after a CRLF or a blank line
/// a line early. The parsing is csv-core's (RFC 4180: quotes, doubled quotes, any line ends).
pub(crate) struct Rows<B, P = csv_core::Reader> {
    /// The parser, owned or borrowed (a piece's parser is kept for the next piece).
    core: P,
    input: B,
    /// The line at the read position, from 1.
    line: u64,
    /// The last byte consumed was a `\r`: a line end, unless a `\n` follows (CRLF).
    pending_cr: bool,
    /// Bytes consumed.
    bytes: u64,
    fields: Vec<u8>,
    ends: Vec<usize>,
}

impl<B: BufRead> Rows<B> {
    /// Records from the start of `input`; `pending_cr` says that the byte before it was a `\r`.
    pub fn new(input: B, delimiter: u8, pending_cr: bool) -> Self {
        Rows::with_parser(input, parser(delimiter), pending_cr)
    }
}

impl<B: BufRead, P: BorrowMut<csv_core::Reader>> Rows<B, P> {
    /// [`Rows::new`] with a parser made beforehand and reset, which saves building its state
    /// machine for every piece. (A parser cannot be copied instead: csv-core's `Clone` leaves
    /// out part of the state machine.)
    pub fn with_parser(input: B, core: P, pending_cr: bool) -> Self {
        Rows {
            core,
            input,
            line: 1,
            pending_cr,
            bytes: 0,
            fields: vec![0; 4096],
            ends: vec![0; 64],
        }
    }

    /// Line ends consumed so far, a `\r` still pending not counted.
    pub fn line_ends(&self) -> u64 {
        self.line - 1
    }

    /// The input, the line at the read position, whether a `\r` is pending, and the bytes read.
    pub fn into_parts(self) -> (B, u64, bool, u64) {
        (self.input, self.line, self.pending_cr, self.bytes)
    }

    /// Reads the next record into `record`; returns the line it starts on, or `None` at the end.
    pub fn next(&mut self, record: &mut csv::ByteRecord) -> io::Result<Option<u64>> {
        use csv_core::ReadRecordResult::*;
        let (mut out, mut ends) = (0, 0);
        let mut start = None;
        loop {
            let input = self.input.fill_buf()?;
            let (result, nin, nout, nend) = self.core.borrow_mut().read_record(
                input,
                &mut self.fields[out..],
                &mut self.ends[ends..],
            );
            let consumed = &input[..nin];
            if start.is_none() {
                // Line ends before the record's first byte are skipped blank lines or the end of
                // the previous record.
                if let Some(k) = consumed.iter().position(|&b| b != b'\r' && b != b'\n') {
                    let mut cr = self.pending_cr;
                    let skipped = line_ends(&consumed[..k], &mut cr);
                    // A `\r` still pending is a line end: the record's first byte follows it.
                    start = Some(self.line + skipped + u64::from(cr));
                }
            }
            self.line += line_ends(consumed, &mut self.pending_cr);
            self.bytes += nin as u64;
            self.input.consume(nin);
            out += nout;
            ends += nend;
            match result {
                InputEmpty => continue,
                OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                Record => {
                    record.clear();
                    let mut from = 0;
                    for &end in &self.ends[..ends] {
                        record.push_field(&self.fields[from..end]);
                        from = end;
                    }
                    // A record of one empty field at the very end starts where it ends.
                    return Ok(Some(start.unwrap_or(self.line)));
                }
                End => return Ok(None),
            }
        }
    }
}

/// A CSV parser, fresh, with the given delimiter and csv-core's defaults otherwise.
pub(crate) fn parser(delimiter: u8) -> csv_core::Reader {
    csv_core::ReaderBuilder::new().delimiter(delimiter).build()
}

/// The records of a piece, as the byte ranges of their cells: ranges of the piece's own bytes for
/// the records split without csv-core (no copy), of [`PieceRecords::owned`] for those csv-core
/// read (a doubled quote to undo, carriage returns). Kept from piece to piece for its buffers.
#[derive(Debug, Default)]
pub(crate) struct PieceRecords {
    records: Vec<RecordAt>,
    cells: Vec<(usize, usize)>,
    owned: Vec<u8>,
    core: CoreScratch,
    /// The record csv-core reads into, for a piece with carriage returns.
    spare: csv::ByteRecord,
}

/// Where a record of a [`PieceRecords`] is.
#[derive(Debug, Clone, Copy)]
struct RecordAt {
    /// The line it starts on, from 1 at the piece's start.
    line: u64,
    /// Its cells: `cells[first..end]`.
    first: usize,
    end: usize,
    /// Whether its cells are ranges of `owned` (else of the piece's bytes).
    owned: bool,
}

impl PieceRecords {
    /// Records read.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// The line record `i` starts on, from 1 at the piece's start.
    pub fn line(&self, i: usize) -> u64 {
        self.records[i].line
    }

    /// Record `i`'s cells: the bytes they lie in (`data`, the piece's, or the records' own) and
    /// their ranges there.
    pub fn cells<'a>(&'a self, data: &'a [u8], i: usize) -> (&'a [u8], &'a [(usize, usize)]) {
        let at = self.records[i];
        let base = if at.owned { &self.owned[..] } else { data };
        (base, &self.cells[at.first..at.end])
    }

    /// Record `i` as the csv crate's record (for a rejected row, which the sink gets whole).
    pub fn byte_record(&self, data: &[u8], i: usize) -> csv::ByteRecord {
        let (base, cells) = self.cells(data, i);
        let mut record = csv::ByteRecord::new();
        for &(start, end) in cells {
            record.push_field(&base[start..end]);
        }
        record
    }

    fn clear(&mut self) {
        self.records.clear();
        self.cells.clear();
        self.owned.clear();
    }

    /// Adds a record on `line` whose cells are copied into `owned`.
    pub fn push_owned<'f>(&mut self, line: u64, fields: impl IntoIterator<Item = &'f [u8]>) {
        push_owned(
            &mut self.records,
            &mut self.cells,
            &mut self.owned,
            line,
            fields,
        );
    }
}

/// [`PieceRecords::push_owned`] on its parts (so that the fields may be borrowed from another).
fn push_owned<'f>(
    records: &mut Vec<RecordAt>,
    cells: &mut Vec<(usize, usize)>,
    owned: &mut Vec<u8>,
    line: u64,
    fields: impl IntoIterator<Item = &'f [u8]>,
) {
    let first = cells.len();
    for field in fields {
        let start = owned.len();
        owned.extend_from_slice(field);
        cells.push((start, owned.len()));
    }
    records.push(RecordAt {
        line,
        first,
        end: cells.len(),
        owned: true,
    });
}

/// Parses a piece (whole records, `pending_cr` when the byte before it is a `\r`) into `out`
/// (emptied first), with `parser` for `delimiter`; returns the line ends the piece holds.
///
/// A piece without carriage returns is split by [`simple_record`] record by record, and a record
/// it declines is read by csv-core on its own; a piece with them is csv-core's throughout.
pub(crate) fn parse_piece(
    data: &[u8],
    pending_cr: bool,
    delimiter: u8,
    parser: &mut csv_core::Reader,
    out: &mut PieceRecords,
) -> u64 {
    out.clear();
    parser.reset();
    if pending_cr || memchr::memchr(b'\r', data).is_some() {
        return parse_piece_with_csv_core(data, pending_cr, parser, out);
    }
    // Every line end is a `\n`: a record's line is one plus the `\n`s before its first byte.
    let mut line = 1;
    let mut at = 0;
    while at < data.len() {
        if data[at] == b'\n' {
            // An empty line, which csv-core skips.
            line += 1;
            at += 1;
            continue;
        }
        let first = out.cells.len();
        let kept = out.owned.len();
        // Split as it stands, else with its doubled quotes undone, else by csv-core.
        let split = simple_record(data, at, delimiter, &mut out.cells)
            .map(|end| (end, false))
            .or_else(|| {
                out.cells.truncate(first);
                unescaped_record(data, at, delimiter, &mut out.owned, &mut out.cells)
                    .map(|end| (end, true))
            });
        if let Some((end, owned)) = split {
            out.records.push(RecordAt {
                line,
                first,
                end: out.cells.len(),
                owned,
            });
            line += u64::from(data[end - 1] == b'\n');
            at = end;
            continue;
        }
        out.cells.truncate(first);
        out.owned.truncate(kept);
        let end = at + out.core.one_record(&data[at..], parser);
        let PieceRecords {
            records,
            cells,
            owned,
            core,
            ..
        } = out;
        push_owned(records, cells, owned, line, core.fields());
        line += memchr::memchr_iter(b'\n', &data[at..end]).count() as u64;
        at = end;
    }
    line - 1
}

/// Where the first of `a`, `b` and `c` is in `data` at or after `from`: eight bytes at a time,
/// for the short fields of a CSV row, where a call to `memchr3` costs more than the search.
#[inline(always)]
fn find3(data: &[u8], mut from: usize, a: u8, b: u8, c: u8) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES << 7;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let (a8, b8, c8) = (
        ONES * u64::from(a),
        ONES * u64::from(b),
        ONES * u64::from(c),
    );
    while let Some(word) = data.get(from..from + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap_or_default());
        // The lowest flagged byte is exact (a borrow only flags bytes above a zero one).
        let hits = zero(w ^ a8) | zero(w ^ b8) | zero(w ^ c8);
        if hits != 0 {
            return Some(from + (hits.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    let rest = data.get(from..)?;
    rest.iter()
        .position(|&x| x == a || x == b || x == c)
        .map(|k| from + k)
}

/// The record that starts at `data[at]` (a record's start, not a line end), split without
/// csv-core when it is simple: on one line, each field either unquoted and free of quotes, or
/// quoted with no quote and no line end inside and a delimiter, a `\n` or the end of the data
/// right after the closing quote. Such a record reads the same under csv-core's rules. Appends
/// its cells' ranges in `data` to `cells` and returns where the record ends (past its `\n`); or
/// returns `None`, `cells` then holding some of them, for a record it cannot split as it stands:
/// a doubled quote (which [`unescaped_record`] undoes), and what only csv-core reads: a quote
/// inside an unquoted field, bytes after a closing quote, a quoted line end, an unclosed quote.
fn simple_record(
    data: &[u8],
    mut at: usize,
    delimiter: u8,
    cells: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    loop {
        let step = if data.get(at) == Some(&b'"') {
            let close = find3(data, at + 1, b'"', b'\n', b'"')?;
            if data[close] == b'\n' {
                return None;
            }
            cells.push((at + 1, close));
            after_quote(data, close, delimiter)?
        } else {
            let (end, step) = unquoted_field(data, at, delimiter)?;
            cells.push((at, end));
            step
        };
        match step {
            Step::Field(next) => at = next,
            Step::End(end) => return Some(end),
        }
    }
}

/// [`simple_record`] for a record whose quoted fields may hold doubled quotes (a quote in a
/// quoted field): its cells are copied into `owned`, each doubled quote as one quote, as csv-core
/// reads them, and their ranges there are appended to `cells`. `None` (with `owned` and `cells`
/// then holding some of the record) for the rest of what `simple_record` declines.
fn unescaped_record(
    data: &[u8],
    mut at: usize,
    delimiter: u8,
    owned: &mut Vec<u8>,
    cells: &mut Vec<(usize, usize)>,
) -> Option<usize> {
    loop {
        let start = owned.len();
        let step = if data.get(at) == Some(&b'"') {
            let mut from = at + 1;
            let close = loop {
                let quote = find3(data, from, b'"', b'\n', b'"')?;
                if data[quote] == b'\n' {
                    return None;
                }
                if data.get(quote + 1) != Some(&b'"') {
                    break quote;
                }
                owned.extend_from_slice(&data[from..=quote]);
                from = quote + 2;
            };
            owned.extend_from_slice(&data[from..close]);
            after_quote(data, close, delimiter)?
        } else {
            let (end, step) = unquoted_field(data, at, delimiter)?;
            owned.extend_from_slice(&data[at..end]);
            step
        };
        cells.push((start, owned.len()));
        match step {
            Step::Field(next) => at = next,
            Step::End(end) => return Some(end),
        }
    }
}

/// Where a record goes after one of its fields.
enum Step {
    /// On to the next field, which starts here.
    Field(usize),
    /// The record ends here (past its `\n`).
    End(usize),
}

/// After the closing quote at `close`: a delimiter, a `\n` or the end of the data, else `None`
/// (bytes after a closing quote, which csv-core must read).
#[inline(always)]
fn after_quote(data: &[u8], close: usize, delimiter: u8) -> Option<Step> {
    match data.get(close + 1) {
        None => Some(Step::End(close + 1)),
        Some(b'\n') => Some(Step::End(close + 2)),
        Some(&b) if b == delimiter => Some(Step::Field(close + 2)),
        Some(_) => None,
    }
}

/// An unquoted field from `at`: its end, and what follows it; `None` for a quote inside it (which
/// csv-core must read).
#[inline(always)]
fn unquoted_field(data: &[u8], at: usize, delimiter: u8) -> Option<(usize, Step)> {
    match find3(data, at, delimiter, b'\n', b'"') {
        None => Some((data.len(), Step::End(data.len()))),
        Some(end) => match data[end] {
            b'"' => None,
            b'\n' => Some((end, Step::End(end + 1))),
            _ => Some((end, Step::Field(end + 1))),
        },
    }
}

/// csv-core's output buffers, for the records [`simple_record`] declines.
#[derive(Debug)]
struct CoreScratch {
    fields: Vec<u8>,
    ends: Vec<usize>,
    /// Fields of the record last read: their ends in `fields`.
    len: usize,
}

impl Default for CoreScratch {
    fn default() -> Self {
        CoreScratch {
            fields: vec![0; 1024],
            ends: vec![0; 32],
            len: 0,
        }
    }
}

impl CoreScratch {
    /// Reads the record at the start of `data` (a record's start, not a line end) with csv-core;
    /// returns the bytes it took, its line end included. [`CoreScratch::fields`] then gives its
    /// fields.
    fn one_record(&mut self, data: &[u8], parser: &mut csv_core::Reader) -> usize {
        use csv_core::ReadRecordResult::*;
        parser.reset();
        let (mut at, mut out, mut ends) = (0, 0, 0);
        loop {
            let (result, nin, nout, nend) =
                parser.read_record(&data[at..], &mut self.fields[out..], &mut self.ends[ends..]);
            at += nin;
            out += nout;
            ends += nend;
            match result {
                // At the end of the data, csv-core is told so by an empty input.
                InputEmpty => {}
                OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                Record | End => break,
            }
        }
        self.len = ends;
        at
    }

    /// The fields of the record last read.
    fn fields(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let ends = &self.ends[..self.len];
        let starts = std::iter::once(0).chain(ends.iter().copied());
        starts
            .zip(ends)
            .map(|(start, &end)| &self.fields[start..end])
    }
}

/// [`parse_piece`] by csv-core alone, line ends of every kind counted as it reads.
fn parse_piece_with_csv_core(
    data: &[u8],
    pending_cr: bool,
    parser: &mut csv_core::Reader,
    out: &mut PieceRecords,
) -> u64 {
    let mut rows = Rows::with_parser(data, parser, pending_cr);
    let mut record = std::mem::take(&mut out.spare);
    // Reading from memory cannot fail.
    while let Ok(Some(line)) = rows.next(&mut record) {
        out.push_owned(line, record.iter());
    }
    out.spare = record;
    rows.line_ends()
}

/// Counts line ends as csv-core reads them: `\n`, `\r\n` and a lone `\r` (old Mac files). A
/// `\r` at the end of `bytes` is held in `pending_cr` until the next byte shows what it was.
fn line_ends(bytes: &[u8], pending_cr: &mut bool) -> u64 {
    // Most files have no carriage return, or none in most records: then `\n`s are the count.
    // One pass that the compiler vectorises; a record is too short for memchr's set-up to pay.
    let (newlines, returns) = bytes.iter().fold((0u64, 0u64), |(n, r), &b| {
        (n + u64::from(b == b'\n'), r + u64::from(b == b'\r'))
    });
    if !*pending_cr && returns == 0 {
        return newlines;
    }
    let mut n = 0;
    for &b in bytes {
        match b {
            b'\n' => {
                n += 1;
                *pending_cr = false;
            }
            b'\r' => {
                n += u64::from(*pending_cr);
                *pending_cr = true;
            }
            _ => {
                n += u64::from(*pending_cr);
                *pending_cr = false;
            }
        }
    }
    n
}

/// Finds record ends in `data`, which starts at the start of a record: the offsets just past a
/// `\n`, or past a `\r` not followed by `\n`, that are not inside quotes. It keeps the first end
/// at or past every `piece` bytes from the previous one kept, and the last end found, in `cuts`.
///
/// Quoting follows csv-core's defaults: a quote opens a quoted field only as a field's first byte
/// (after the delimiter, a line end or at the start); inside, a doubled quote is a quote; a quote
/// anywhere else is an ordinary byte. The scan stops where the next byte would decide (a quote or
/// a `\r` as the last byte), and at an unclosed quote.
pub(crate) fn record_ends(data: &[u8], delimiter: u8, piece: usize, cuts: &mut Vec<usize>) {
    cuts.clear();
    // The last end found, and where the next kept one may be.
    let (mut last, mut mark) = (0, piece);
    let mut end = |at: usize, last: &mut usize, cuts: &mut Vec<usize>| {
        *last = at;
        if at >= mark {
            cuts.push(at);
            mark = at + piece;
        }
    };
    let mut i = 0;
    'outside: while let Some(k) = memchr::memchr3(b'"', b'\n', b'\r', &data[i..]) {
        let j = i + k;
        i = j + 1;
        match data[j] {
            b'\n' => end(j + 1, &mut last, cuts),
            b'\r' => match data.get(j + 1) {
                None => break,
                // The `\n` ends the record.
                Some(b'\n') => {}
                Some(_) => end(j + 1, &mut last, cuts),
            },
            _ => {
                let opens =
                    j == 0 || matches!(data[j - 1], b'\n' | b'\r') || data[j - 1] == delimiter;
                if !opens {
                    continue;
                }
                // Inside quotes, to the closing quote.
                let mut q = j + 1;
                loop {
                    let Some(k) = memchr::memchr(b'"', &data[q..]) else {
                        break 'outside;
                    };
                    let close = q + k;
                    match data.get(close + 1) {
                        None => break 'outside,
                        Some(b'"') => q = close + 2,
                        Some(_) => {
                            i = close + 1;
                            continue 'outside;
                        }
                    }
                }
            }
        }
    }
    if last > 0 && cuts.last() != Some(&last) {
        cuts.push(last);
    }
}

/// Bytes the reader thread hands over at a time (more when a record is longer).
pub(crate) const BATCH_BYTES: usize = 2 << 20;

/// Bytes per piece parsed by one task.
pub(crate) const PIECE_BYTES: usize = 128 << 10;

/// A run of whole records from the input, cut into pieces that parse on their own.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The bytes.
    pub data: Vec<u8>,
    /// The end of each piece in `data`; the last is `data.len()`.
    pub cuts: Vec<usize>,
    /// The byte before `data` was a `\r` (a line end not yet counted).
    pub pending_cr: bool,
}

impl Batch {
    /// The pieces: their byte ranges, and whether the byte before each is a `\r`.
    pub fn pieces(&self) -> impl Iterator<Item = (std::ops::Range<usize>, bool)> + '_ {
        let starts = std::iter::once(0).chain(self.cuts.iter().copied());
        starts.zip(&self.cuts).map(|(start, &end)| {
            let pending_cr = match start {
                0 => self.pending_cr,
                _ => self.data[start - 1] == b'\r',
            };
            (start..end, pending_cr)
        })
    }
}

/// The reader thread's loop: reads `input` (positioned at the start of a record, the byte before
/// it a `\r` when `pending_cr`) into batches of whole records of about `batch_bytes`, cut into
/// pieces of about `piece_bytes`, sends them in order, and takes spent batches back for their
/// buffers. Returns the bytes read.
pub(crate) fn read_batches<R: Read>(
    mut input: R,
    delimiter: u8,
    mut pending_cr: bool,
    (batch_bytes, piece_bytes): (usize, usize),
    tx: &SyncSender<io::Result<Batch>>,
    spent: &Receiver<Batch>,
) -> u64 {
    let mut bytes = 0u64;
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let mut batch = spent.try_recv().unwrap_or_default();
        batch.data.clear();
        batch.data.append(&mut carry);
        // A record longer than a batch doubles the read, so it costs linear time.
        let want = batch_bytes.max(batch.data.len());
        let got = match (&mut input).take(want as u64).read_to_end(&mut batch.data) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Err(e));
                return bytes;
            }
        };
        let at_end = got < want;
        record_ends(&batch.data, delimiter, piece_bytes, &mut batch.cuts);
        if at_end {
            let len = batch.data.len();
            if len > 0 && batch.cuts.last() != Some(&len) {
                batch.cuts.push(len);
            }
        } else {
            match batch.cuts.last() {
                Some(&end) => {
                    carry.extend_from_slice(&batch.data[end..]);
                    batch.data.truncate(end);
                }
                None => {
                    // No record ends yet: keep it all and read on.
                    carry = std::mem::take(&mut batch.data);
                    continue;
                }
            }
        }
        batch.pending_cr = pending_cr;
        pending_cr = batch.data.last() == Some(&b'\r');
        bytes += batch.data.len() as u64;
        if !batch.data.is_empty() && tx.send(Ok(batch)).is_err() {
            return bytes;
        }
        if at_end {
            return bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Records as their cells, each with its line.
    type Records = Vec<(Vec<Vec<u8>>, u64)>;

    /// Every record with its line, parsed in one go.
    fn whole(data: &[u8]) -> Records {
        whole_with(data, b',')
    }

    /// [`whole`] with a delimiter: csv-core alone, the reference.
    fn whole_with(data: &[u8], delimiter: u8) -> Records {
        let mut rows = Rows::new(data, delimiter, false);
        let mut record = csv::ByteRecord::new();
        let mut out = Vec::new();
        while let Some(line) = rows.next(&mut record).unwrap() {
            out.push((record.iter().map(<[u8]>::to_vec).collect(), line));
        }
        out
    }

    /// A reader that hands out at most `step` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Every record with its line, parsed piece by piece from the batches the reader thread's
    /// loop makes; also checks that the batches hold the input, byte for byte.
    fn in_pieces(data: &[u8], sizes: (usize, usize), step: usize) -> Records {
        let (tx, rx) = std::sync::mpsc::sync_channel(data.len() + 1);
        let (_spent_tx, spent_rx) = std::sync::mpsc::sync_channel(1);
        let bytes = read_batches(Trickle(data, step), b',', false, sizes, &tx, &spent_rx);
        drop(tx);
        assert_eq!(bytes, data.len() as u64);
        let mut out = Vec::new();
        let mut base = 1;
        let mut parser = parser(b',');
        let mut records = PieceRecords::default();
        let mut joined = Vec::new();
        for batch in rx {
            let batch = batch.unwrap();
            joined.extend_from_slice(&batch.data);
            for (range, pending_cr) in batch.pieces() {
                let data = &batch.data[range];
                let line_ends = parse_piece(data, pending_cr, b',', &mut parser, &mut records);
                for (cells, line) in cells_of(data, &records) {
                    out.push((cells, base + line - 1));
                }
                base += line_ends;
            }
        }
        assert_eq!(joined, data);
        out
    }

    #[test]
    fn record_ends_follow_quotes_as_csv_core_does() {
        let ends = |data: &[u8]| {
            let mut cuts = Vec::new();
            record_ends(data, b',', 1, &mut cuts);
            cuts
        };
        assert_eq!(ends(b"a,b\nc,d\n"), [4, 8]);
        // A line end inside quotes is not a record end; a doubled quote stays inside.
        assert_eq!(ends(b"a,\"x\ny\"\nc\n"), [8, 10]);
        assert_eq!(ends(b"\"a\"\"\nb\"\nc\n"), [8, 10]);
        // A quote inside an unquoted field is an ordinary byte.
        assert_eq!(ends(b"ab\"c\nd\n"), [5, 7]);
        // Carriage returns: CRLF ends once, after the `\n`; a lone `\r` ends a record.
        assert_eq!(ends(b"a\r\nb\rc\n"), [3, 5, 7]);
        // Undecided at the end: a `\r` or a closing quote as the last byte, an open quote.
        assert_eq!(ends(b"a\nb\r"), [2]);
        assert_eq!(ends(b"a\n\"b\""), [2]);
        assert_eq!(ends(b"a\n\"b\nc"), [2]);
        assert!(ends(b"abc").is_empty());
    }

    #[test]
    fn pieces_are_kept_about_a_piece_apart() {
        let data = b"aa\nbb\ncc\ndd\nee\n";
        let mut cuts = Vec::new();
        record_ends(data, b',', 5, &mut cuts);
        assert_eq!(cuts, [6, 12, 15]);
    }

    /// A piece's records as their cells, with their lines.
    fn cells_of(data: &[u8], records: &PieceRecords) -> Records {
        (0..records.len())
            .map(|i| {
                let (base, cells) = records.cells(data, i);
                let cells = cells.iter().map(|&(a, b)| base[a..b].to_vec()).collect();
                assert_eq!(
                    records.byte_record(data, i).iter().collect::<Vec<_>>(),
                    cells
                );
                (cells, records.line(i))
            })
            .collect()
    }

    /// `data` as one piece, with its records and lines and the line ends it counted.
    fn one_piece(data: &[u8], delimiter: u8) -> (Records, u64) {
        let mut records = PieceRecords::default();
        let line_ends = parse_piece(data, false, delimiter, &mut parser(delimiter), &mut records);
        (cells_of(data, &records), line_ends)
    }

    /// The piece reads as csv-core reads the whole, and counts every line end.
    fn reads_as_csv_core(data: &[u8], delimiter: u8) {
        let (rows, line_ends) = one_piece(data, delimiter);
        assert_eq!(
            rows,
            whole_with(data, delimiter),
            "{:?}",
            String::from_utf8_lossy(data)
        );
        let expected = line_ends_of(data);
        assert_eq!(line_ends, expected, "{:?}", String::from_utf8_lossy(data));
    }

    /// Line ends as csv-core counts them: `\n`, `\r\n` and a lone `\r`.
    fn line_ends_of(data: &[u8]) -> u64 {
        let mut cr = false;
        let n = line_ends(data, &mut cr);
        n + u64::from(cr)
    }

    #[test]
    fn simple_records_read_as_csv_core_reads_them() {
        for data in [
            &b"a,b\nc,d\n"[..],
            b"a,b\nc,d",
            b"a,b,\n,\n",
            b"\n\na,b\n\n\nc\n\n",
            b"\"a,b\",c\n\"\",d\n",
            b"\"a\"",
            b"\"a\"\n",
            b"x,\"\"",
            // What the simple split declines, record by record, among records it takes.
            b"a\n\"a\"\"b\",c\nd\n",
            b"a\nab\"c,d\ne\n",
            b"a\n\"ab\"c,d\ne\n",
            b"a\n\"x\ny\",z\nw\n",
            b"a\n\"unclosed,b\nc\n",
            b"a\n\"unclosed",
            b"\"\"\"\"\n",
            b"\" a\" ,b\n",
            b" \"a\",b\n",
        ] {
            reads_as_csv_core(data, b',');
            reads_as_csv_core(data, b';');
        }
        reads_as_csv_core(b"a\tb\n\"c\td\"\te\n", b'\t');
    }

    proptest! {
        #[test]
        fn pieces_without_carriage_returns_read_as_csv_core_reads_them(
            data in proptest::collection::vec(
                prop_oneof![
                    Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(b' '), Just(b'\t'),
                    Just(0xC3), Just(0xA9),
                ],
                0..200,
            ),
            tab in any::<bool>(),
        ) {
            reads_as_csv_core(&data, if tab { b'\t' } else { b',' });
        }

        #[test]
        fn pieces_parse_to_the_same_records_and_lines_as_the_whole(
            data in proptest::collection::vec(
                prop_oneof![
                    Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b' '),
                ],
                0..300,
            ),
            batch in 1usize..80,
            piece in 1usize..40,
            step in 1usize..100,
            keep_cr in any::<bool>(),
        ) {
            // Half the inputs without `\r`, where pieces count lines in one pass.
            let data: Vec<u8> = data.into_iter().filter(|&b| keep_cr || b != b'\r').collect();
            prop_assert_eq!(in_pieces(&data, (batch, piece), step), whole(&data));
        }
    }
}
