//! The fast path: a line of an update file that breaks no rule, recognised without the full check.
//!
//! Almost every line of a real file is valid and draws no warning, and for those lines the full
//! check ([`crate::check`]) does more work than the verdict needs: it keeps paths, positions and
//! decoded strings ready for findings that never come. This module answers one question, "does this
//! line draw no finding at all?", in two stages in the manner of simdjson:
//!
//! 1. [`index`] classifies the line 64 bytes at a time (AVX2 where the processor has it, a portable
//!    loop elsewhere) into bit masks of quotes, backslashes, control characters, whitespace and
//!    structural characters; works out which quotes are escaped and which bytes lie inside strings
//!    by carry-free bit arithmetic; checks every escape and control character at once, and the
//!    UTF-8 encoding of the chunks that hold bytes of 0x80 and up (so that no other pass reads
//!    the bytes for it); and marks the tokens in a mask per chunk: structural characters outside
//!    strings, both quotes of every string, and the first byte of every number or literal.
//! 2. [`Walker`] follows the JSON grammar over those tokens alone, taken in order from the masks
//!    (whitespace and string bodies are never visited byte by byte), and applies the update-file
//!    rules as it goes.
//!
//! The answer is conservative: `true` means the full check would report nothing for the line and
//! would see the same list names; `false` means only "not sure", and the caller runs the full
//! check, which then says what is wrong, if anything. Whatever is rare or subtle (escaped keys,
//! `\u` surrogates, exponents, integers of 16 digits or more, unknown fields, deep nesting, a
//! byte-order mark) answers `false`. Tests hold the two paths to the same verdict on the fixtures,
//! JSONTestSuite and random lines.

use crate::date::{is_valid_unix_timestamp, parse_signup_date};
use crate::email::is_plain_address_in;
use crate::json::{fingerprint_slot, key_fingerprint};
use sailbulk_spec::{is_var_name_byte, VAR_VALUE_MAX_CHARS};
use sailbulk_spec::{IDENTITY_KEYS, KEYSCONFLICT_VALUES, OPTOUT_VALUES, VAR_NAME_MAX_CHARS};

/// Deeper than this, the fast path leaves the line to the full check (which enforces the 127 levels
/// serde_json allows).
const MAX_FAST_DEPTH: u32 = 64;

/// Past this many keys in one object, the fast path leaves the line to the full check (whose
/// duplicate check switches to a set).
const MAX_FAST_KEYS: usize = 32;

/// Buffers the fast path reuses from line to line.
#[derive(Debug, Default)]
pub(crate) struct FastScratch {
    /// Per 64-byte chunk of the text, its masks (bit `i` of chunk `c` for byte `64 c + i`): its
    /// tokens ([`MARKS`]), and its backslashes ([`BACKSLASH`]) and the bytes that may not stand
    /// in a var name ([`NONWORD`]) for the checks of strings that follow. One array rather than
    /// three, so that the walker keeps one pointer for them in a register, not three.
    chunks: Vec<[u64; 3]>,
    /// Keys of the objects being walked.
    keys: Vec<KeyHead>,
    /// The raw ranges of the line's list names, in order.
    pub lists: Vec<(u32, u32)>,
    /// The length of the text the marks were written for: every token is below it.
    indexed: usize,
}

/// The index of each mask in an entry of [`FastScratch::chunks`].
const MARKS: usize = 0;
const BACKSLASH: usize = 1;
const NONWORD: usize = 2;

/// Words of bit masks, bit `i` of word `w` for byte `64 w + i`: a slice of them, or one mask of
/// each chunk's ([`Field`]).
trait Words {
    fn word(&self, w: usize) -> Option<u64>;
}

/// For the tests, which hold the functions over words to plain slices of them.
#[cfg(test)]
impl Words for [u64] {
    #[inline(always)]
    fn word(&self, w: usize) -> Option<u64> {
        self.get(w).copied()
    }
}

/// Mask `F` of each chunk.
#[derive(Clone, Copy)]
struct Field<'a, const F: usize>(&'a [[u64; 3]]);

impl<const F: usize> Words for Field<'_, F> {
    #[inline(always)]
    fn word(&self, w: usize) -> Option<u64> {
        self.0.get(w).map(|c| c[F])
    }
}

/// A key as the duplicate check compares it.
#[derive(Debug, Clone, Copy)]
struct KeyHead {
    head: u64,
    start: u32,
    len: u32,
}

/// Whether `line` (without its line ending) is a JSON update object that draws no finding. On
/// `true`, `scratch.lists` holds the raw ranges of its list names, in order (and the line is valid
/// UTF-8: stage 1 checks it).
pub(crate) fn clean(line: &[u8], scratch: &mut FastScratch) -> bool {
    scratch.lists.clear();
    scratch.keys.clear();
    if line.len() >= u32::MAX as usize - 64 || !index(line, scratch) {
        return false;
    }
    let mut walker = Walker::new(line, scratch);
    // Nothing may follow the object.
    walker.update().is_some() && walker.next().is_none()
}

/// What [`clean_lines`] calls for each line: its start and end in the piece (the end at its
/// `\n`), and, when it is clean, its list names' raw ranges relative to its start.
pub(crate) type EachLine<'a> = dyn FnMut(usize, usize, Option<&[(u32, u32)]>) + 'a;

/// About this many bytes of lines are indexed at a time by [`clean_lines`], so that a window's
/// masks are still in the cache when they are walked.
const WINDOW: usize = 32 << 10;

/// [`clean`] for every line of `piece` (whole lines, the last of which may lack its `\n`),
/// indexed a window of lines at a time rather than line by line. `each` is called for
/// every line, in order, with the line's byte range in `piece` (without its `\n`, with the `\r`
/// of a CRLF ending) and, when the line is clean, the raw ranges of its list names relative to
/// the line's start; `None` means "not sure", as `clean`'s `false` does.
pub(crate) fn clean_lines(piece: &[u8], scratch: &mut FastScratch, each: &mut EachLine<'_>) {
    clean_lines_in(piece, scratch, WINDOW, each);
}

/// [`clean_lines`] with a given window size (tests use tiny ones).
fn clean_lines_in(piece: &[u8], scratch: &mut FastScratch, window: usize, each: &mut EachLine<'_>) {
    let mut from = 0;
    while from < piece.len() {
        let target = from + window;
        let to = match piece.get(target..) {
            Some(rest) => memchr::memchr(b'\n', rest).map_or(piece.len(), |i| target + i + 1),
            None => piece.len(),
        };
        if to - from >= u32::MAX as usize - 128 {
            // Token positions are 32-bit: a line this long is left to the full check.
            let end = memchr::memchr(b'\n', &piece[from..]).map_or(piece.len(), |i| from + i);
            each(from, end, None);
            from = end + 1;
            continue;
        }
        from = walk_window(piece, from, to, scratch, each);
    }
}

/// Indexes the lines of `piece[from..to]` and walks them; returns where the next window starts:
/// `to`, or the line after the one where stage 1 stopped.
fn walk_window(
    piece: &[u8],
    from: usize,
    to: usize,
    scratch: &mut FastScratch,
    each: &mut EachLine<'_>,
) -> usize {
    let text = &piece[from..to];
    let complete = index(text, scratch);
    let mut w = Walker::new(text, scratch);
    let mut start = 0;
    while start < text.len() {
        let first = w.at;
        w.keys.clear();
        w.lists.clear();
        if (w.backslash_at as usize) < start {
            w.backslash_at = next_bit(&Field::<BACKSLASH>(w.chunks), start as u32);
        }
        let end = match w.update() {
            Some(()) => w.line_end(complete),
            None => None,
        };
        if let Some(end) = end {
            for range in w.lists.iter_mut() {
                *range = (range.0 - start as u32, range.1 - start as u32);
            }
            each(from + start, from + end, Some(w.lists));
            start = end + 1;
            continue;
        }
        // Not clean, or not sure: on to the line's end, among its tokens when stage 1 got that
        // far (a line end outside a string is always a token).
        w.at = first;
        match w.next_line_end() {
            Some(end) => {
                each(from + start, from + end, None);
                start = end + 1;
            }
            None => {
                // The line runs past where stage 1 stopped: indexing starts again after it.
                let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |i| start + i);
                each(from + start, from + end, None);
                return from + end + 1;
            }
        }
    }
    to
}

/// The classes of the 64 bytes of a chunk, one bit per byte (bit `i` for byte `i`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Masks {
    quote: u64,
    backslash: u64,
    /// Bytes below 0x20, tab included.
    control: u64,
    /// Space and tab.
    space: u64,
    /// `{ } [ ] : ,` and `\n` (which ends a line of a window).
    structural: u64,
    /// `\n` and `\r`: with tab, the control characters that may stand between tokens (a `\r` is
    /// then a token of its own, which only a line's end accepts).
    line_end: u64,
    /// Bytes other than ASCII letters, digits and `_`.
    nonword: u64,
    /// Bytes of 0x80 and up: a chunk without any is valid UTF-8 on its own.
    nonascii: u64,
}

impl Masks {
    /// The masks, each made opaque to the optimiser in its register (where
    /// `std::hint::black_box` of the whole would send them through memory).
    #[inline(always)]
    fn opaque(self) -> Masks {
        Masks {
            quote: crate::simd::opaque(self.quote),
            backslash: crate::simd::opaque(self.backslash),
            control: crate::simd::opaque(self.control),
            space: crate::simd::opaque(self.space),
            structural: crate::simd::opaque(self.structural),
            line_end: crate::simd::opaque(self.line_end),
            nonword: crate::simd::opaque(self.nonword),
            nonascii: crate::simd::opaque(self.nonascii),
        }
    }
}

/// The portable classification, and the reference for the vector one.
fn classify_portable(chunk: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in chunk.iter().enumerate() {
        let bit = 1u64 << i;
        if b == b'"' {
            m.quote |= bit;
        }
        if b == b'\\' {
            m.backslash |= bit;
        }
        if b < 0x20 {
            m.control |= bit;
        }
        if b == b' ' || b == b'\t' {
            m.space |= bit;
        }
        if matches!(b, b'{' | b'}' | b'[' | b']' | b',' | b':' | b'\n') {
            m.structural |= bit;
        }
        if b == b'\n' || b == b'\r' {
            m.line_end |= bit;
        }
        if !is_var_name_byte(b) {
            m.nonword |= bit;
        }
        if b >= 0x80 {
            m.nonascii |= bit;
        }
    }
    m
}

/// Nibble tables for [`classify_avx2`]: a byte's classes are `HIGH[b >> 4] & LOW[b & 15]`, each
/// class a bit that is set for a rectangle of high and low nibbles (bytes of 0x80 and up look up
/// zero). For the structure: bit 0 `[ ] { }` (high 5 or 7, low B or D), 1 `:`, 2 `,`, 3 `\n`,
/// 4 `\r`, 5 space, 6 tab.
const STRUCTURE_HIGH: [u8; 16] = [
    0x58, 0, 0x24, 0x02, 0, 0x01, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
];
const STRUCTURE_LOW: [u8; 16] = [
    0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0x0A, 0x01, 0x04, 0x11, 0, 0,
];
/// For the bytes of a var name: bit 0 `A-O a-o` (high 4 or 6, low 1 to F), 1 `P-Z p-z` (high 5
/// or 7, low 0 to A), 2 digits (high 3, low 0 to 9), 3 `_` (high 5, low F).
const WORD_HIGH: [u8; 16] = [
    0, 0, 0, 0x04, 0x01, 0x0A, 0x01, 0x02, 0, 0, 0, 0, 0, 0, 0, 0,
];
const WORD_LOW: [u8; 16] = [
    0x06, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07, 0x03, 0x01, 0x01, 0x01, 0x01, 0x09,
];

/// [`classify_portable`] with AVX2, 32 bytes at a time: quotes, backslashes and control
/// characters by comparison, the rest by two nibble lookups each.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn classify_avx2(chunk: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    // SAFETY: `chunk` is 64 readable bytes and the loads have no alignment requirement, as do
    // the tables'; the rest are register operations; the caller has checked that the processor
    // has AVX2. (Newer compilers call the register operations safe inside an AVX2 function;
    // older ones need the block.)
    #[allow(unused_unsafe)]
    unsafe {
        crate::simd::avx2_chunk!(chunk, splat, bits, _within);
        let table = |t: &[u8; 16]| _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr().cast()));
        let (s_high, s_low) = (table(&STRUCTURE_HIGH), table(&STRUCTURE_LOW));
        let (w_high, w_low) = (table(&WORD_HIGH), table(&WORD_LOW));
        let nibble = splat(0x0F);
        // A byte's classes in a pair of tables. The low nibble's lookup takes the byte itself:
        // pshufb gives zero for an index with its high bit set, so bytes of 0x80 and up are in
        // no class.
        let lookup = |v: __m256i, high: __m256i, low: __m256i| {
            let h = _mm256_shuffle_epi8(high, _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble));
            _mm256_and_si256(h, _mm256_shuffle_epi8(low, v))
        };
        // The bytes with any of the classes `mask` (class bits are below bit 7, so a byte with
        // one is positive).
        let any = |classes: __m256i, mask: u8| {
            _mm256_cmpgt_epi8(
                _mm256_and_si256(classes, splat(mask)),
                _mm256_setzero_si256(),
            )
        };
        Masks {
            quote: bits(&|v| _mm256_cmpeq_epi8(v, splat(b'"'))),
            backslash: bits(&|v| _mm256_cmpeq_epi8(v, splat(b'\\'))),
            control: bits(&|v| _mm256_cmpeq_epi8(_mm256_min_epu8(v, splat(0x1F)), v)),
            space: bits(&|v| any(lookup(v, s_high, s_low), 0x60)),
            structural: bits(&|v| any(lookup(v, s_high, s_low), 0x0F)),
            line_end: bits(&|v| any(lookup(v, s_high, s_low), 0x18)),
            nonword: bits(&|v| _mm256_cmpeq_epi8(lookup(v, w_high, w_low), _mm256_setzero_si256())),
            nonascii: bits(&|v| v),
        }
    }
}

/// [`classify_portable`] with AVX-512, the whole chunk in one register: quotes, backslashes and
/// control characters by comparison, the rest by the nibble lookups of [`classify_avx2`], each
/// test straight into its 64-bit mask.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn classify_avx512(chunk: &[u8; 64]) -> Masks {
    use std::arch::x86_64::*;
    // SAFETY: `chunk` is 64 readable bytes and the loads have no alignment requirement, as do
    // the tables'; the rest are register operations; the caller has checked that the processor
    // has AVX-512F and AVX-512BW.
    #[allow(unused_unsafe)]
    unsafe {
        let v = _mm512_loadu_si512(chunk.as_ptr().cast());
        let splat = |c: u8| _mm512_set1_epi8(c as i8);
        let table = |t: &[u8; 16]| _mm512_broadcast_i32x4(_mm_loadu_si128(t.as_ptr().cast()));
        let high = _mm512_and_si512(_mm512_srli_epi16::<4>(v), splat(0x0F));
        // As in `classify_avx2`: the low nibble's lookup takes the byte itself, so bytes of 0x80
        // and up are in no class.
        let lookup = |h: &[u8; 16], l: &[u8; 16]| {
            _mm512_and_si512(
                _mm512_shuffle_epi8(table(h), high),
                _mm512_shuffle_epi8(table(l), v),
            )
        };
        let structure = lookup(&STRUCTURE_HIGH, &STRUCTURE_LOW);
        let word = lookup(&WORD_HIGH, &WORD_LOW);
        Masks {
            quote: _mm512_cmpeq_epi8_mask(v, splat(b'"')),
            backslash: _mm512_cmpeq_epi8_mask(v, splat(b'\\')),
            control: _mm512_cmple_epu8_mask(v, splat(0x1F)),
            space: _mm512_test_epi8_mask(structure, splat(0x60)),
            structural: _mm512_test_epi8_mask(structure, splat(0x0F)),
            line_end: _mm512_test_epi8_mask(structure, splat(0x18)),
            nonword: _mm512_testn_epi8_mask(word, word),
            nonascii: _mm512_movepi8_mask(v),
        }
    }
}

/// UTF-8 validation, a chunk at a time and carried from chunk to chunk, so that stage 1 checks the
/// text's encoding as it classifies it, and the input needs no pass of its own for that. A
/// checker's `chunk(bytes, ascii)` is `false` at the chunk where an error shows: a byte that
/// starts no sequence, a sequence cut short, overlong or continued too far, a surrogate, a code
/// point past U+10FFFF. `ascii` says the chunk holds no byte of 0x80 and up (its bytes are then not
/// looked at: it is valid unless the chunk before ended inside a sequence). An error shows at or
/// before the first ASCII byte that follows it, so every line that ends in an earlier chunk is
/// valid UTF-8. After the last chunk, an ASCII chunk says whether the text ended inside a
/// sequence.
///
/// This one goes byte by byte through the chunks that need it, for processors without AVX2.
#[derive(Debug, Clone, Copy)]
struct Utf8Portable {
    /// Continuation bytes still to come, and the range the next one must lie in.
    need: u8,
    low: u8,
    high: u8,
}

impl Default for Utf8Portable {
    fn default() -> Self {
        Utf8Portable {
            need: 0,
            low: 0x80,
            high: 0xBF,
        }
    }
}

impl Utf8Portable {
    fn chunk(&mut self, chunk: &[u8; 64], ascii: bool) -> bool {
        if ascii {
            return self.need == 0;
        }
        for &b in chunk {
            if self.need > 0 {
                if !(self.low..=self.high).contains(&b) {
                    return false;
                }
                self.need -= 1;
                (self.low, self.high) = (0x80, 0xBF);
                continue;
            }
            // The Unicode standard's table of well-formed sequences (its table 3-7): the second
            // byte's range depends on the first.
            (self.need, self.low, self.high) = match b {
                0x00..=0x7F => continue,
                0xC2..=0xDF => (1, 0x80, 0xBF),
                0xE0 => (2, 0xA0, 0xBF),
                0xED => (2, 0x80, 0x9F),
                0xE1..=0xEF => (2, 0x80, 0xBF),
                0xF0 => (3, 0x90, 0xBF),
                0xF1..=0xF3 => (3, 0x80, 0xBF),
                0xF4 => (3, 0x80, 0x8F),
                _ => return false,
            };
        }
        true
    }
}

/// The state of [`utf8_avx2`] between chunks.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Utf8Avx2 {
    /// The last 32 bytes of the chunk before; zeros after an ASCII chunk (every ASCII byte looks
    /// the same to the check).
    prev: std::arch::x86_64::__m256i,
    /// Whether the chunk before ended inside a sequence.
    incomplete: bool,
}

/// Error classes of the lookup tables below, a bit each (two share one: they never meet).
#[cfg(target_arch = "x86_64")]
mod utf8_class {
    pub const TOO_SHORT: u8 = 1 << 0;
    pub const TOO_LONG: u8 = 1 << 1;
    pub const OVERLONG_3: u8 = 1 << 2;
    pub const TOO_LARGE: u8 = 1 << 3;
    pub const SURROGATE: u8 = 1 << 4;
    pub const OVERLONG_2: u8 = 1 << 5;
    pub const TOO_LARGE_1000: u8 = 1 << 6;
    pub const OVERLONG_4: u8 = 1 << 6;
    pub const TWO_CONTS: u8 = 1 << 7;
    pub const CARRY: u8 = TOO_SHORT | TOO_LONG | TWO_CONTS;
}

/// For [`utf8_avx2`]: the errors a pair of bytes can make, looked up by the first byte's high
/// nibble, its low nibble and the second byte's high nibble; a pair is wrong when all three
/// lookups share a class.
#[cfg(target_arch = "x86_64")]
const UTF8_FIRST_HIGH: [u8; 16] = {
    use utf8_class::*;
    let ascii = TOO_LONG;
    let continuation = TWO_CONTS;
    [
        ascii,
        ascii,
        ascii,
        ascii,
        ascii,
        ascii,
        ascii,
        ascii,
        continuation,
        continuation,
        continuation,
        continuation,
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,
    ]
};
#[cfg(target_arch = "x86_64")]
const UTF8_FIRST_LOW: [u8; 16] = {
    use utf8_class::*;
    let large = CARRY | TOO_LARGE | TOO_LARGE_1000;
    [
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
        CARRY | OVERLONG_2,
        CARRY,
        CARRY,
        CARRY | TOO_LARGE,
        large,
        large,
        large,
        large,
        large,
        large,
        large,
        large,
        large | SURROGATE,
        large,
        large,
    ]
};
#[cfg(target_arch = "x86_64")]
const UTF8_SECOND_HIGH: [u8; 16] = {
    use utf8_class::*;
    let ascii = TOO_SHORT;
    let lead = TOO_SHORT;
    [
        ascii,
        ascii,
        ascii,
        ascii,
        ascii,
        ascii,
        ascii,
        ascii,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        lead,
        lead,
        lead,
        lead,
    ]
};
/// The largest bytes the last three of a chunk may be when the next chunk is ASCII: no lead
/// byte whose sequence would run past the chunk.
#[cfg(target_arch = "x86_64")]
const UTF8_LAST_MAX: [u8; 32] = {
    let mut max = [0xFF; 32];
    max[29] = 0xEF;
    max[30] = 0xDF;
    max[31] = 0xBF;
    max
};

/// The UTF-8 check (see [`Utf8Portable`]) with AVX2, by Keiser and Lemire's lookup method
/// ("Validating UTF-8 in less than one instruction per byte", 2021), which simdjson and
/// simdutf8 use: three nibble lookups per byte pair find the errors a sequence's first two
/// bytes can make, and a byte two or three after a three- or four-byte lead must be a
/// continuation.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn utf8_avx2(chunk: &[u8; 64], ascii: bool, state: &mut Utf8Avx2) -> bool {
    use std::arch::x86_64::*;
    // SAFETY: `chunk` is 64 readable bytes and the tables are 16 or 32; the loads have no
    // alignment requirement; the rest are register operations, and the caller has checked that
    // the processor has AVX2.
    #[allow(unused_unsafe)]
    unsafe {
        if ascii {
            let ok = !state.incomplete;
            state.prev = _mm256_setzero_si256();
            state.incomplete = false;
            return ok;
        }
        let table = |t: &[u8; 16]| _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr().cast()));
        let nibble = _mm256_set1_epi8(0x0F);
        let high = |v: __m256i| _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble);
        // The errors at each byte of `cur`, given the 32 bytes before it.
        let errors = |cur: __m256i, before: __m256i| {
            // The bytes one, two and three before each byte of `cur`.
            let joined = _mm256_permute2x128_si256::<0x21>(before, cur);
            let prev1 = _mm256_alignr_epi8::<15>(cur, joined);
            let prev2 = _mm256_alignr_epi8::<14>(cur, joined);
            let prev3 = _mm256_alignr_epi8::<13>(cur, joined);
            let pair = _mm256_and_si256(
                _mm256_and_si256(
                    _mm256_shuffle_epi8(table(&UTF8_FIRST_HIGH), high(prev1)),
                    _mm256_shuffle_epi8(table(&UTF8_FIRST_LOW), _mm256_and_si256(prev1, nibble)),
                ),
                _mm256_shuffle_epi8(table(&UTF8_SECOND_HIGH), high(cur)),
            );
            // 0x80 where the byte must continue a three- or four-byte sequence: the pair
            // lookup's TWO_CONTS (two continuations in a row) must be set there and only there.
            let third = _mm256_subs_epu8(prev2, _mm256_set1_epi8(0x60));
            let fourth = _mm256_subs_epu8(prev3, _mm256_set1_epi8(0x70));
            let must = _mm256_and_si256(_mm256_or_si256(third, fourth), _mm256_set1_epi8(-0x80));
            _mm256_xor_si256(must, pair)
        };
        let p = chunk.as_ptr().cast::<__m256i>();
        let (lo, hi) = (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)));
        let wrong = _mm256_or_si256(errors(lo, state.prev), errors(hi, lo));
        let over = _mm256_subs_epu8(hi, _mm256_loadu_si256(UTF8_LAST_MAX.as_ptr().cast()));
        state.incomplete = _mm256_testz_si256(over, over) == 0;
        state.prev = hi;
        _mm256_testz_si256(wrong, wrong) == 1
    }
}

/// The state of [`utf8_avx512`] between chunks: as [`Utf8Avx2`]'s, with the whole chunk before.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Utf8Avx512 {
    prev: std::arch::x86_64::__m512i,
    incomplete: bool,
}

/// [`UTF8_LAST_MAX`] for a whole chunk.
#[cfg(target_arch = "x86_64")]
const UTF8_LAST_MAX_64: [u8; 64] = {
    let mut max = [0xFF; 64];
    max[61] = 0xEF;
    max[62] = 0xDF;
    max[63] = 0xBF;
    max
};

/// [`utf8_avx2`] with AVX-512: the same lookups, over the whole chunk at once.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn utf8_avx512(chunk: &[u8; 64], ascii: bool, state: &mut Utf8Avx512) -> bool {
    use std::arch::x86_64::*;
    // SAFETY: `chunk` and the 64-byte table are readable, the 16-byte tables too; the loads have
    // no alignment requirement; the rest are register operations, and the caller has checked
    // that the processor has AVX-512F and AVX-512BW.
    #[allow(unused_unsafe)]
    unsafe {
        if ascii {
            let ok = !state.incomplete;
            state.prev = _mm512_setzero_si512();
            state.incomplete = false;
            return ok;
        }
        let splat = |c: u8| _mm512_set1_epi8(c as i8);
        let table = |t: &[u8; 16]| _mm512_broadcast_i32x4(_mm_loadu_si128(t.as_ptr().cast()));
        let nibble = splat(0x0F);
        let cur = _mm512_loadu_si512(chunk.as_ptr().cast());
        // Each 16-byte lane of `cur` beside the lane before it (the chunk before's last lane for
        // the first), so that the byte-wise shifts within lanes bring in the bytes before.
        let joined = _mm512_alignr_epi64::<6>(cur, state.prev);
        let prev1 = _mm512_alignr_epi8::<15>(cur, joined);
        let prev2 = _mm512_alignr_epi8::<14>(cur, joined);
        let prev3 = _mm512_alignr_epi8::<13>(cur, joined);
        let high = |v: __m512i| _mm512_and_si512(_mm512_srli_epi16::<4>(v), nibble);
        let pair = _mm512_and_si512(
            _mm512_and_si512(
                _mm512_shuffle_epi8(table(&UTF8_FIRST_HIGH), high(prev1)),
                _mm512_shuffle_epi8(table(&UTF8_FIRST_LOW), _mm512_and_si512(prev1, nibble)),
            ),
            _mm512_shuffle_epi8(table(&UTF8_SECOND_HIGH), high(cur)),
        );
        let third = _mm512_subs_epu8(prev2, splat(0x60));
        let fourth = _mm512_subs_epu8(prev3, splat(0x70));
        let must = _mm512_and_si512(_mm512_or_si512(third, fourth), splat(0x80));
        let wrong = _mm512_xor_si512(must, pair);
        let over = _mm512_subs_epu8(cur, _mm512_loadu_si512(UTF8_LAST_MAX_64.as_ptr().cast()));
        state.incomplete = _mm512_test_epi8_mask(over, over) != 0;
        state.prev = cur;
        _mm512_test_epi8_mask(wrong, wrong) == 0
    }
}

/// The bits that are set in an odd number of the positions at or below each position: with `x` the
/// unescaped quotes, the bytes inside strings (opening quote included, closing quote excluded).
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The bytes escaped by a backslash, given the chunk's backslashes and whether the previous chunk
/// ended with an escaping backslash (updated for the next chunk). This is simdjson's branch-free
/// method: a run of backslashes escapes the byte after it when its length is odd.
#[inline(always)]
fn escaped_bytes(backslash: u64, carry: &mut u64) -> u64 {
    const EVEN: u64 = 0x5555_5555_5555_5555;
    let backslash = backslash & !*carry;
    let follows_escape = backslash << 1 | *carry;
    let odd_starts = backslash & !EVEN & !follows_escape;
    let (even_starts, overflow) = odd_starts.overflowing_add(backslash);
    *carry = u64::from(overflow);
    let invert = even_starts << 1;
    (EVEN ^ invert) & follows_escape
}

/// Stage 1: marks the tokens of `text` (one line, or several) in `scratch.chunks`, a mask per
/// 64-byte chunk, beside the chunk's other masks that the walker reads. `true` when the whole text
/// was indexed and it ends outside any string or escape. `false` when a line of it cannot be clean:
/// a control character in a string or outside one (tabs and line ends between tokens aside), an
/// invalid escape or a `\u` escape that is neither a plain code point nor half of a valid surrogate
/// pair, an unterminated string, bytes that are not UTF-8 (checked here, so that the walker's text
/// is known to be valid). Stage 1 then stops at the 64-byte chunk where it found that, and the
/// masks are those of the chunks before it: a line that ends (at a `\n` token) before the chunk is
/// fully indexed, and the line that runs into it has no `\n` token.
///
/// Line ends (`\n`, and `\r` before it) are tokens; since a string may not hold a raw line end,
/// every line of a text that stage 1 passes starts outside any string, as it would on its own.
pub(crate) fn index(text: &[u8], scratch: &mut FastScratch) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::wide_vector_runs() {
        // SAFETY: the processor has the features `index_avx512` is compiled for.
        return unsafe { index_avx512(text, scratch) };
    }
    #[cfg(target_arch = "x86_64")]
    if crate::simd::vector_runs() {
        // SAFETY: the processor has the features `index_avx2` is compiled for.
        return unsafe { index_avx2(text, scratch) };
    }
    index_portable(text, scratch)
}

/// Stage 1 without AVX2 (and the reference the tests hold the vector one to).
fn index_portable(text: &[u8], scratch: &mut FastScratch) -> bool {
    let mut utf8 = Utf8Portable::default();
    index_with(text, scratch, classify_portable, prefix_xor, |c, ascii| {
        utf8.chunk(c, ascii)
    })
}

/// Stage 1 by each of its forms that the processor runs (the portable one first): each form's
/// name, verdict and masks, for the tests to hold them to one another.
#[cfg(test)]
fn index_each(text: &[u8]) -> Vec<(&'static str, bool, Vec<[u64; 3]>)> {
    let mut out = Vec::new();
    let mut scratch = FastScratch::default();
    let ok = index_portable(text, &mut scratch);
    out.push(("portable", ok, scratch.chunks.clone()));
    #[cfg(target_arch = "x86_64")]
    if crate::simd::vector_runs() {
        // SAFETY: the processor has the features `index_avx2` is compiled for.
        let ok = unsafe { index_avx2(text, &mut scratch) };
        out.push(("avx2", ok, scratch.chunks.clone()));
    }
    #[cfg(target_arch = "x86_64")]
    if crate::simd::wide_vector_runs() {
        // SAFETY: the processor has the features `index_avx512` is compiled for.
        let ok = unsafe { index_avx512(text, &mut scratch) };
        out.push(("avx512", ok, scratch.chunks.clone()));
    }
    out
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,lzcnt,popcnt,pclmulqdq")]
unsafe fn index_avx2(text: &[u8], scratch: &mut FastScratch) -> bool {
    let mut utf8 = Utf8Avx2 {
        prev: std::arch::x86_64::_mm256_setzero_si256(),
        incomplete: false,
    };
    // SAFETY: this function runs only where `vector_runs`.
    index_with(
        text,
        scratch,
        |c| unsafe { classify_avx2(c) },
        |x| unsafe { prefix_xor_clmul(x) },
        |c, ascii| unsafe { utf8_avx2(c, ascii, &mut utf8) },
    )
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,bmi1,lzcnt,popcnt,pclmulqdq")]
unsafe fn index_avx512(text: &[u8], scratch: &mut FastScratch) -> bool {
    let mut utf8 = Utf8Avx512 {
        prev: std::arch::x86_64::_mm512_setzero_si512(),
        incomplete: false,
    };
    // SAFETY: this function runs only where `wide_vector_runs`.
    index_with(
        text,
        scratch,
        |c| unsafe { classify_avx512(c) },
        |x| unsafe { prefix_xor_clmul(x) },
        |c, ascii| unsafe { utf8_avx512(c, ascii, &mut utf8) },
    )
}

/// [`prefix_xor`] in one carry-less multiplication (by a word of ones).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "pclmulqdq")]
#[inline]
unsafe fn prefix_xor_clmul(x: u64) -> u64 {
    use std::arch::x86_64::*;
    // SAFETY: register operations only; the caller has checked that the processor has PCLMUL.
    #[allow(unused_unsafe)]
    unsafe {
        let product = _mm_clmulepi64_si128(_mm_set_epi64x(0, x as i64), _mm_set1_epi8(-1), 0);
        _mm_cvtsi128_si64(product) as u64
    }
}

/// Stage 1 with a given classifier (the tests compare the two).
#[inline(always)]
fn index_with(
    text: &[u8],
    scratch: &mut FastScratch,
    classify: impl Fn(&[u8; 64]) -> Masks,
    prefix_xor: impl Fn(u64) -> u64,
    mut utf8: impl FnMut(&[u8; 64], bool) -> bool,
) -> bool {
    scratch.chunks.clear();
    let chunks = text.len().div_ceil(64);
    scratch.chunks.reserve(chunks);
    let chunks_out = scratch.chunks.spare_capacity_mut().as_mut_ptr();
    let mut escape_carry = 0u64;
    let mut in_string_carry = 0u64;
    let mut scalar_carry = 0u64;
    let mut low_at = usize::MAX;
    let mut padded = [b' '; 64];
    let mut base = 0usize;
    let mut valid = true;
    scratch.indexed = text.len();
    while base < text.len() {
        // The bytes of the chunk that are bytes of the text: all but in the last chunk, whose
        // padding may never yield a token (the walker relies on it).
        let mut live = u64::MAX;
        let chunk: &[u8; 64] = match text.get(base..base + 64).and_then(|c| c.try_into().ok()) {
            Some(c) => c,
            None => {
                let rest = &text[base..];
                padded[..rest.len()].copy_from_slice(rest);
                padded[rest.len()..].fill(b' ');
                live >>= 64 - rest.len();
                &padded
            }
        };
        // Opaque to the optimiser: left to see through the movemasks, it rebuilds the masks from
        // the compare vectors byte by byte.
        let m = classify(chunk).opaque();
        let escaped = escaped_bytes(m.backslash, &mut escape_carry);
        let quote = m.quote & !escaped;
        let in_string = prefix_xor(quote) ^ in_string_carry;
        in_string_carry = ((in_string as i64) >> 63) as u64;
        // Control characters: none in strings; between tokens only tabs and line ends.
        let between = m.control & (m.space | m.line_end);
        if m.control & (in_string | !between) != 0
            || (escaped != 0 && !escapes_valid(text, base, escaped, &mut low_at))
            || !utf8(chunk, m.nonascii == 0)
        {
            valid = false;
            break;
        }
        let outside = !in_string;
        let scalar = !(m.structural | m.space | quote) & outside;
        let scalar_start = scalar & !(scalar << 1 | scalar_carry);
        scalar_carry = scalar >> 63;
        // Only bytes of the text are marked (the walker reads a token's byte unchecked).
        let marks = ((m.structural & outside) | quote | scalar_start) & live;
        let mut masks = [0; 3];
        (masks[MARKS], masks[BACKSLASH], masks[NONWORD]) = (marks, m.backslash, m.nonword);
        // SAFETY: chunk `base / 64` is one of the `chunks` reserved above.
        unsafe {
            (*chunks_out.add(base / 64)).write(masks);
        }
        base += 64;
    }
    // SAFETY: the masks of the chunks before `base` were written above.
    unsafe {
        scratch.chunks.set_len(base / 64);
    }
    // An ASCII chunk after the last: whether the text ends inside a UTF-8 sequence.
    valid && utf8(&[b' '; 64], true) && in_string_carry == 0 && escape_carry == 0
}

/// Whether each escaped byte (bit `i` of `escaped` is byte `base + i` of the line) makes a valid
/// escape, `\u` escapes included (a surrogate only as a valid pair, as serde_json requires).
/// `low_at` is the position of the `u` of the low surrogate that a valid high surrogate has
/// announced, which may lie in the next chunk.
#[cold]
#[inline(never)]
fn escapes_valid(line: &[u8], base: usize, mut escaped: u64, low_at: &mut usize) -> bool {
    while escaped != 0 {
        let at = base + escaped.trailing_zeros() as usize;
        escaped &= escaped - 1;
        if at == *low_at {
            // Checked with its high surrogate.
            *low_at = usize::MAX;
            continue;
        }
        match line.get(at) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
            Some(b'u') => match hex4(line, at + 1) {
                Some(0xDC00..=0xDFFF) | None => return false,
                Some(0xD800..=0xDBFF) => {
                    let pair = line.get(at + 5..at + 7) == Some(b"\\u");
                    if !pair || !matches!(hex4(line, at + 7), Some(0xDC00..=0xDFFF)) {
                        return false;
                    }
                    *low_at = at + 6;
                }
                Some(_) => {}
            },
            _ => return false,
        }
    }
    true
}

fn hex4(line: &[u8], at: usize) -> Option<u32> {
    let digits = line.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, &d| {
        (d as char).to_digit(16).map(|x| acc * 16 + x)
    })
}

/// Bytes that may follow a number or a literal: structural characters, whitespace, a quote.
/// Anything else continues the token, which is then not a valid one.
static TOKEN_END: [bool; 256] = {
    let mut t = [false; 256];
    let ends = b"{}[]:,\" \t";
    let mut i = 0;
    while i < ends.len() {
        t[ends[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether `bytes` holds `byte`: eight bytes at a time, for the short strings where a call to
/// `memchr` costs more than the search. A string of eight bytes or more ends with a word that
/// overlaps the one before it rather than a loop over its last few bytes, whose exit, at a
/// length that changes from string to string, the processor would mispredict.
#[inline(always)]
fn has_byte(bytes: &[u8], byte: u8) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let holds = |word: &[u8]| {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default()) ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & (ONES << 7) != 0
    };
    match bytes.len().checked_sub(8) {
        Some(last) => {
            let mut found = holds(&bytes[last..]);
            let mut at = 0;
            while at < last {
                found |= holds(&bytes[at..at + 8]);
                at += 8;
            }
            found
        }
        None => bytes.iter().fold(false, |found, &b| found | (b == byte)),
    }
}

/// What a value was, for the rules that care.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string, with the raw range between its quotes.
    Str(u32, u32),
    /// An integer of at most 15 digits, with the raw range of its text (its value is worked out
    /// only where a rule needs it).
    Int(u32, u32),
    /// Any other value.
    Other,
}

/// Where a walker is among the marks of its text: the position of the first byte of the chunk
/// of the next token, and the tokens of that chunk not yet taken.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    base: usize,
    bits: u64,
}

impl Cursor {
    /// The cursor at the next chunk with a token, when this one has none left; `None` at the
    /// end of the chunks.
    #[cold]
    #[inline(never)]
    fn refill(self, chunks: &[[u64; 3]]) -> Option<Cursor> {
        let mut word = self.base / 64;
        loop {
            word += 1;
            let bits = chunks.get(word)?[MARKS];
            if bits != 0 {
                return Some(Cursor {
                    base: word * 64,
                    bits,
                });
            }
        }
    }
}

/// Stage 2: the grammar and the rules over the tokens that stage 1 marked, taken in order from
/// the marks themselves (the set bits of each chunk's word), so that no list of positions is
/// written between the two stages.
struct Walker<'a, 's> {
    line: &'a [u8],
    /// The masks of the text's 64-byte chunks: its tokens, backslashes and non-word bytes.
    chunks: &'s [[u64; 3]],
    at: Cursor,
    keys: &'s mut Vec<KeyHead>,
    lists: &'s mut Vec<(u32, u32)>,
    /// The position of the first backslash at or after the start of the line being walked (or
    /// of an earlier line of the text, when it lies in this one or after it): a string that ends
    /// before it holds none, which spares most strings looking at the masks (most lines hold no
    /// backslash). `u32::MAX` when there is none.
    backslash_at: u32,
}

/// Whether any bit of `masks` (bit `i` of word `w` for byte `64 w + i`) is set at the bytes
/// `start..end`.
#[inline(always)]
fn any_in(masks: &(impl Words + ?Sized), start: u32, end: u32) -> bool {
    let len = end.wrapping_sub(start);
    if start >= end {
        return false;
    }
    let first = (start / 64) as usize;
    if len <= 64 {
        // The range lies within two adjacent words: one 128-bit shift brings it to bit 0. A range
        // that reaches past the last word (which the ranges of an indexed text never do) counts
        // as set, the answer that sends a line to the full check.
        let Some(low) = masks.word(first) else {
            return true;
        };
        let shift = start % 64;
        let high = if shift + len > 64 {
            masks.word(first + 1).unwrap_or(u64::MAX)
        } else {
            0
        };
        let window = ((u128::from(high) << 64 | u128::from(low)) >> shift) as u64;
        return window & (u64::MAX >> (64 - len)) != 0;
    }
    let last = ((end - 1) / 64) as usize;
    let low = u64::MAX << (start % 64);
    let high = u64::MAX >> (63 - (end - 1) % 64);
    masks.word(first).is_some_and(|m| m & low != 0)
        || (first + 1..last).any(|w| masks.word(w).is_some_and(|m| m != 0))
        || masks.word(last).is_some_and(|m| m & high != 0)
}

/// The position of the first bit of `masks` (bit `i` of word `w` for byte `64 w + i`) at or after
/// `from`; `u32::MAX` when there is none.
fn next_bit(masks: &(impl Words + ?Sized), from: u32) -> u32 {
    let mut w = (from / 64) as usize;
    let mut word = match masks.word(w) {
        Some(m) => m & u64::MAX << (from % 64),
        None => return u32::MAX,
    };
    while word == 0 {
        w += 1;
        match masks.word(w) {
            Some(m) => word = m,
            None => return u32::MAX,
        }
    }
    (w * 64) as u32 + word.trailing_zeros()
}

impl<'s> Walker<'s, 's> {
    /// A walker over the tokens that [`index`] marked for `line` in `scratch`.
    fn new(line: &'s [u8], scratch: &'s mut FastScratch) -> Self {
        // Every token is a position in the line, which lets the walker read a token's byte
        // without a bounds check: stage 1 marks only bytes of the text it indexed, and a walker
        // over a shorter line has no tokens (it answers "not sure").
        let chunks: &[[u64; 3]] = if scratch.indexed <= line.len() {
            &scratch.chunks
        } else {
            &[]
        };
        Walker {
            line,
            chunks,
            at: Cursor {
                base: 0,
                bits: chunks.first().map_or(0, |c| c[MARKS]),
            },
            keys: &mut scratch.keys,
            lists: &mut scratch.lists,
            backslash_at: next_bit(&Field::<BACKSLASH>(chunks), 0),
        }
    }

    /// The byte at token position `p`.
    #[inline(always)]
    fn byte_at(&self, p: usize) -> u8 {
        debug_assert!(p < self.line.len());
        // SAFETY: `p` is a set bit of the chunks' token masks, which `index` sets only for bytes
        // of the text it indexed, whose length `new` has checked is at most `self.line.len()`;
        // `chunks` and `line` do not change after `new`.
        unsafe { *self.line.get_unchecked(p) }
    }
}

impl Walker<'_, '_> {
    /// After an update object: the position of the `\n` that ends its line (a `\r` may come
    /// first), or the text's end when the text is `complete` and no token is left.
    #[inline(always)]
    fn line_end(&mut self, complete: bool) -> Option<usize> {
        match self.next() {
            Some((b'\n', p)) => Some(p),
            Some((b'\r', p)) => match self.next() {
                Some((b'\n', q)) if q == p + 1 => Some(q),
                // The text's last line, ended by a `\r` alone (the `\r` is the line end's).
                None if complete && p + 1 == self.line.len() => Some(self.line.len()),
                _ => None,
            },
            None if complete => Some(self.line.len()),
            _ => None,
        }
    }

    /// Skips to the next `\n` token; its position (the walk goes on after it).
    #[cold]
    fn next_line_end(&mut self) -> Option<usize> {
        loop {
            let (c, p) = self.next()?;
            if c == b'\n' {
                return Some(p);
            }
        }
    }

    /// The next token's byte and position.
    #[inline(always)]
    fn next(&mut self) -> Option<(u8, usize)> {
        let p = self.first()?;
        self.skip();
        Some((self.byte_at(p), p))
    }

    /// The byte of the next token, without taking it.
    #[inline(always)]
    fn peek(&mut self) -> Option<u8> {
        let p = self.first()?;
        Some(self.byte_at(p))
    }

    /// The position of the next token (the cursor moves past words without one).
    #[inline(always)]
    fn first(&mut self) -> Option<usize> {
        if self.at.bits == 0 {
            // The next chunk, which almost always holds a token, is taken here; a run of chunks
            // without one (inside a long string) is left to `refill`, out of line.
            let word = self.at.base / 64 + 1;
            let next = Cursor {
                base: word * 64,
                bits: self.chunks.get(word).map_or(0, |c| c[MARKS]),
            };
            self.at = if next.bits != 0 {
                next
            } else {
                next.refill(self.chunks)?
            };
        }
        Some(self.at.base + self.at.bits.trailing_zeros() as usize)
    }

    /// Takes the token that [`Walker::peek`] has just shown.
    #[inline(always)]
    fn skip(&mut self) {
        self.at.bits &= self.at.bits.wrapping_sub(1);
    }

    /// The closing quote of the string opened at `open`: always the next token.
    #[inline(always)]
    fn close(&mut self, open: usize) -> Option<(u32, u32)> {
        let (c, p) = self.next()?;
        (c == b'"').then_some((open as u32 + 1, p as u32))
    }

    #[inline(always)]
    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()?.0 == want).then_some(())
    }

    #[inline(always)]
    fn raw(&self, (start, end): (u32, u32)) -> &[u8] {
        debug_assert!(start <= end && end as usize <= self.line.len());
        // SAFETY: the walker's ranges lie in the line: a string's runs from just after its
        // opening quote to its closing quote, the token after it; a number's from its first
        // token byte to where a scan bounded by the line stopped (see `byte_at` for why token
        // positions are in the line).
        unsafe { self.line.get_unchecked(start as usize..end as usize) }
    }

    /// The raw text of a string when it holds no escape.
    #[inline(always)]
    fn plain(&self, range: (u32, u32)) -> Option<&[u8]> {
        let escaped = range.1 > self.backslash_at
            && any_in(&Field::<BACKSLASH>(self.chunks), range.0, range.1);
        (!escaped).then(|| self.raw(range))
    }

    /// A string value, as its raw range.
    #[inline(always)]
    fn string(&mut self) -> Option<(u32, u32)> {
        let (c, p) = self.next()?;
        if c != b'"' {
            return None;
        }
        self.close(p)
    }

    /// The line's update object.
    #[inline(always)]
    fn update(&mut self) -> Option<()> {
        self.expect(b'{')?;
        let mut seen = 0u16;
        let mut id = None;
        let mut key_is_email = true;
        if self.peek()? != b'}' {
            loop {
                let range = self.string()?;
                self.expect(b':')?;
                let field: u16 = match self.raw(range) {
                    b"email" => 0,
                    b"id" => 1,
                    b"key" => 2,
                    b"keys" => 3,
                    b"keysconflict" => 4,
                    b"fields" => 5,
                    b"vars" => 6,
                    b"lists" => 7,
                    b"optout" => 8,
                    b"signup_date" => 9,
                    b"delete_vars" => 10,
                    _ => return None,
                };
                if seen & 1 << field != 0 {
                    return None;
                }
                seen |= 1 << field;
                match field {
                    0 => {
                        let email = self.string()?;
                        self.email(email)?;
                    }
                    1 => {
                        let value = self.string()?;
                        if value.0 == value.1 {
                            return None;
                        }
                        id = Some(value);
                    }
                    2 => key_is_email = self.one_of(&IDENTITY_KEYS)? == b"email",
                    3 => self.keys_object()?,
                    4 => {
                        self.one_of(&KEYSCONFLICT_VALUES)?;
                    }
                    5 => {
                        self.value(1)?;
                    }
                    6 => self.vars()?,
                    7 => self.lists()?,
                    8 => {
                        self.one_of(&OPTOUT_VALUES)?;
                    }
                    9 => self.signup_date()?,
                    _ => self.delete_vars()?,
                }
                match self.next()?.0 {
                    b',' => {}
                    b'}' => break,
                    _ => return None,
                }
            }
        } else {
            self.skip();
        }
        // An identity, and an `id` that is an address when it is one. (What may follow the
        // object is the caller's to check.)
        if seen & 0b11 == 0 {
            return None;
        }
        if let (Some(id), true) = (id, key_is_email) {
            self.email(id)?;
        }
        Some(())
    }

    /// A string value that is, unescaped, one of `values`; its raw text.
    #[inline(always)]
    fn one_of(&mut self, values: &[&str]) -> Option<&[u8]> {
        let range = self.string()?;
        let raw = self.plain(range)?;
        values.iter().any(|v| v.as_bytes() == raw).then_some(raw)
    }

    /// An address the full check accepts with nothing to say.
    #[inline(always)]
    fn email(&self, range: (u32, u32)) -> Option<()> {
        self.plain(range)?;
        is_plain_address_in(self.line, range.0 as usize, range.1 as usize).then_some(())
    }

    /// `keys`: an object of identity-key names to strings.
    #[inline(always)]
    fn keys_object(&mut self) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.skip();
            return Some(());
        }
        let mut seen = 0u8;
        loop {
            let key = self.string()?;
            let name = self.plain(key)?;
            let which = IDENTITY_KEYS.iter().position(|k| k.as_bytes() == name)?;
            if seen & 1 << which != 0 {
                return None;
            }
            seen |= 1 << which;
            self.expect(b':')?;
            self.string()?;
            match self.next()?.0 {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// `vars`: an object of valid var names to values of at most the documented length.
    #[inline(always)]
    fn vars(&mut self) -> Option<()> {
        self.members(
            1,
            #[inline(always)]
            |w, key| {
                // Letters, digits and `_` only (so no escape either), not starting with a digit:
                // the first byte from the name's start that is none of those is its closing quote.
                let name = w.raw(key);
                if name.len() > VAR_NAME_MAX_CHARS
                    || name.first().is_none_or(u8::is_ascii_digit)
                    || next_bit(&Field::<NONWORD>(w.chunks), key.0) != key.1
                {
                    return None;
                }
                if let Kind::Str(start, end) = w.value(1)? {
                    if (end - start) as usize > VAR_VALUE_MAX_CHARS {
                        let raw = w.plain((start, end))?;
                        let chars = raw.iter().filter(|&&b| (b as i8) >= -0x40).count();
                        if chars > VAR_VALUE_MAX_CHARS {
                            return None;
                        }
                    }
                }
                Some(())
            },
        )
    }

    /// `lists`: an object of acceptable list names to 0 or 1.
    #[inline(always)]
    fn lists(&mut self) -> Option<()> {
        self.members(
            1,
            #[inline(always)]
            |w, key| {
                let name = w.plain(key)?;
                // No `$`, and a letter or digit (an ASCII one: others are left to the full check).
                if has_byte(name, b'$') || !name.iter().any(u8::is_ascii_alphanumeric) {
                    return None;
                }
                let (c, p) = w.next()?;
                if !matches!(c, b'0' | b'1')
                    || !w.line.get(p + 1).is_none_or(|&b| TOKEN_END[usize::from(b)])
                {
                    return None;
                }
                w.lists.push(key);
                Some(())
            },
        )
    }

    /// `signup_date`: a date string in an accepted format, or a Unix timestamp.
    #[inline(always)]
    fn signup_date(&mut self) -> Option<()> {
        match self.value(1)? {
            Kind::Str(start, end) => {
                let raw = self.plain((start, end))?;
                // Dates are ASCII (any other is left to the full check), and ASCII is UTF-8 as
                // it stands: no second look at the bytes.
                if !raw.is_ascii() {
                    return None;
                }
                // SAFETY: every byte is ASCII, checked above.
                let text = unsafe { std::str::from_utf8_unchecked(raw) };
                parse_signup_date(text).map(|_| ())
            }
            Kind::Int(start, end) => {
                let text = self.raw((start, end));
                let (negative, digits) = match text.split_first() {
                    Some((b'-', digits)) => (true, digits),
                    _ => (false, text),
                };
                let magnitude = digits
                    .iter()
                    .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
                let secs = if negative { -magnitude } else { magnitude };
                is_valid_unix_timestamp(secs).then_some(())
            }
            Kind::Other => None,
        }
    }

    /// `delete_vars`: an array of strings.
    #[inline(always)]
    fn delete_vars(&mut self) -> Option<()> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.skip();
            return Some(());
        }
        loop {
            self.string()?;
            match self.next()?.0 {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An object whose members `member` checks: it is called with each key's raw range and must
    /// take the value. Keys must be distinct and unescaped.
    #[inline(always)]
    fn members(
        &mut self,
        depth: u32,
        member: impl FnMut(&mut Self, (u32, u32)) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        self.members_after_brace(depth, member)
    }

    /// [`Walker::members`] after the object's `{`.
    #[inline(always)]
    fn members_after_brace(
        &mut self,
        depth: u32,
        mut member: impl FnMut(&mut Self, (u32, u32)) -> Option<()>,
    ) -> Option<()> {
        if depth > MAX_FAST_DEPTH {
            return None;
        }
        if self.peek()? == b'}' {
            self.skip();
            return Some(());
        }
        let base = self.keys.len();
        let mut seen = 0u64;
        loop {
            let key = self.string()?;
            self.distinct(base, &mut seen, key)?;
            self.expect(b':')?;
            member(self, key)?;
            match self.next()?.0 {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        self.keys.truncate(base);
        Some(())
    }

    /// Records a key of the object whose keys start at `base`; `None` when it is escaped, repeats
    /// an earlier key, or the object has too many keys for a linear check. `seen` is the object's
    /// filter: a bit per key fingerprint, so that only a key whose bit is already set is compared
    /// with the earlier ones (a data-dependent comparison per earlier key mispredicts often).
    #[inline(always)]
    fn distinct(&mut self, base: usize, seen: &mut u64, key: (u32, u32)) -> Option<()> {
        let raw = self.plain(key)?;
        let len = raw.len();
        let head = key_fingerprint(self.line, key.0 as usize, raw);
        let this = KeyHead {
            head,
            start: key.0,
            len: len as u32,
        };
        let earlier = &self.keys[base..];
        if earlier.len() >= MAX_FAST_KEYS {
            return None;
        }
        let bit = 1u64 << fingerprint_slot(head, len);
        if *seen & bit != 0 {
            let line = self.line;
            let same = |k: &KeyHead| {
                k.len == this.len
                    && k.head == this.head
                    && (len <= 8 || line[k.start as usize..(k.start + k.len) as usize] == *raw)
            };
            if earlier.iter().any(same) {
                return None;
            }
        }
        *seen |= bit;
        self.keys.push(this);
        Some(())
    }

    /// Any value, at `depth` levels of nesting. Scalars are handled here, inline in the caller;
    /// objects and arrays in [`Walker::nested`], which is out of line (it recurses).
    #[inline(always)]
    fn value(&mut self, depth: u32) -> Option<Kind> {
        let (c, p) = self.next()?;
        match c {
            b'"' => {
                let (start, end) = self.close(p)?;
                Some(Kind::Str(start, end))
            }
            b'{' | b'[' => self.forked(|w| w.nested(c, depth)),
            b't' => self.literal(p, b"true"),
            b'f' => self.literal(p, b"false"),
            b'n' => self.literal(p, b"null"),
            _ => self.number(p),
        }
    }

    /// An object or an array whose opening token `open` has been taken, at `depth` levels.
    #[inline(never)]
    fn nested(&mut self, open: u8, depth: u32) -> Option<Kind> {
        self.forked(|w| w.nested_in(open, depth))
    }

    /// Runs `f` on a walker that shares this one's buffers and starts at its position, then
    /// moves this one to where `f` left it. For a call out of line: the caller's walker then never
    /// has its address taken, which keeps its position in a register through the walk of a line.
    #[inline(always)]
    fn forked<R>(&mut self, f: impl FnOnce(&mut Walker<'_, '_>) -> R) -> R {
        let mut fork = Walker {
            line: self.line,
            chunks: self.chunks,
            at: self.at,
            keys: &mut *self.keys,
            lists: &mut *self.lists,
            backslash_at: self.backslash_at,
        };
        let out = f(&mut fork);
        let at = fork.at;
        self.at = at;
        out
    }

    /// [`Walker::nested`], inline.
    #[inline(always)]
    fn nested_in(&mut self, open: u8, depth: u32) -> Option<Kind> {
        if open == b'{' {
            self.members_after_brace(
                depth + 1,
                #[inline(always)]
                |w, _| w.value(depth + 1).map(|_| ()),
            )?;
            return Some(Kind::Other);
        }
        if depth + 1 > MAX_FAST_DEPTH {
            return None;
        }
        if self.peek()? == b']' {
            self.skip();
            return Some(Kind::Other);
        }
        loop {
            self.value(depth + 1)?;
            match self.next()?.0 {
                b',' => {}
                b']' => return Some(Kind::Other),
                _ => return None,
            }
        }
    }

    #[inline(always)]
    fn literal(&self, p: usize, word: &[u8]) -> Option<Kind> {
        let rest = self.line.get(p..)?;
        let ends = rest
            .get(word.len())
            .is_none_or(|&b| TOKEN_END[usize::from(b)]);
        (rest.starts_with(word) && ends).then_some(Kind::Other)
    }

    /// A number at `p`: JSON's grammar, no exponent, and an integer part of at most 15 digits (so
    /// that it can be neither out of range nor beyond 2^53).
    #[inline(always)]
    fn number(&self, p: usize) -> Option<Kind> {
        let b = self.line;
        let mut i = p;
        let negative = b.get(i) == Some(&b'-');
        i += usize::from(negative);
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while b.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return None,
        }
        let int_end = i;
        if int_end - int_start > 15 {
            return None;
        }
        let mut integer = true;
        if b.get(i) == Some(&b'.') {
            i += 1;
            if !b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            integer = false;
        }
        if !b.get(i).is_none_or(|&c| TOKEN_END[usize::from(c)]) {
            // An exponent, or bytes that make the token invalid.
            return None;
        }
        if !integer {
            return Some(Kind::Other);
        }
        Some(Kind::Int(p as u32, int_end as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The escaped bytes, one at a time: a backslash that is not itself escaped escapes the next
    /// byte.
    fn escaped_reference(bytes: &[u8]) -> Vec<bool> {
        let mut out = vec![false; bytes.len()];
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\\' && i + 1 < bytes.len() {
                out[i + 1] = true;
                i += 2;
            } else {
                i += 1;
            }
        }
        out
    }

    #[test]
    fn escapes_match_a_byte_by_byte_reference_across_chunks() {
        // Runs of backslashes of every length at every offset, across the 64-byte boundary.
        for run in 0..70 {
            for at in 0..130 {
                let mut bytes = vec![b'a'; 200];
                for b in &mut bytes[at..at + run] {
                    *b = b'\\';
                }
                let want = escaped_reference(&bytes);
                let mut carry = 0;
                for (c, chunk) in bytes.chunks(64).enumerate() {
                    let mut padded = [b'a'; 64];
                    padded[..chunk.len()].copy_from_slice(chunk);
                    let m = classify_portable(&padded);
                    let got = escaped_bytes(m.backslash, &mut carry);
                    for (i, _) in chunk.iter().enumerate() {
                        assert_eq!(
                            got >> i & 1 == 1,
                            want[c * 64 + i],
                            "run {run} at {at}, byte {}",
                            c * 64 + i
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn has_byte_finds_the_byte_at_every_offset() {
        // Fillers one bit away from `$` (0x24), and 0xFF.
        for fill in [b'a', b'#', b'%', b'4', 0xA4, 0xFF] {
            for len in 0..40 {
                assert!(!has_byte(&vec![fill; len], b'$'), "{fill} {len}");
                for at in 0..len {
                    let mut bytes = vec![fill; len];
                    bytes[at] = b'$';
                    assert!(has_byte(&bytes, b'$'), "{fill} {len} {at}");
                }
            }
        }
    }

    #[test]
    fn any_in_sees_every_set_bit_of_every_range() {
        // Three words, each with one bit set, at every pair of positions: every range is checked
        // against the bits it covers, one at a time.
        for (a, b, c) in [(0, 0, 0), (5, 63, 17), (63, 0, 62), (31, 32, 1)] {
            let masks = [1u64 << a, 1u64 << b, 1u64 << c];
            let set = |i: u32| masks[(i / 64) as usize] >> (i % 64) & 1 == 1;
            // The same words as one mask of each chunk, beside other masks full of bits.
            let chunks = masks.map(|m| [u64::MAX, m, u64::MAX]);
            for start in 0..192u32 {
                for end in start..=192u32 {
                    let want = (start..end).any(set);
                    assert_eq!(
                        any_in(&masks[..], start, end),
                        want,
                        "{a} {b} {c}: {start}..{end}"
                    );
                    assert_eq!(
                        any_in(&Field::<BACKSLASH>(&chunks), start, end),
                        want,
                        "{a} {b} {c}: {start}..{end}"
                    );
                }
            }
        }
        // A range past the words is "set" (not sure) however short; an empty one never is.
        let none: &[u64] = &[];
        assert!(any_in(&[0u64][..], 60, 70));
        assert!(any_in(none, 3, 4));
        assert!(!any_in(none, 3, 3));
    }

    #[test]
    fn prefix_xor_marks_string_bodies() {
        assert_eq!(prefix_xor(0b1001), 0b0111);
        assert_eq!(prefix_xor(0b1001_1001), 0b0111_0111);
        assert_eq!(prefix_xor(1), u64::MAX);
        #[cfg(target_arch = "x86_64")]
        if crate::simd::vector_runs() {
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                for v in [x, x & x >> 3, 1 << (x % 64), 0, u64::MAX] {
                    // SAFETY: the processor has PCLMUL.
                    assert_eq!(unsafe { prefix_xor_clmul(v) }, prefix_xor(v), "{v:#x}");
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_classification_equals_the_portable_one() {
        if !crate::simd::vector_runs() {
            return;
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..5000 {
            let mut chunk = [0u8; 64];
            for b in &mut chunk {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Every byte value, with the interesting ones more often.
                *b = if round % 2 == 0 {
                    state as u8
                } else {
                    {
                        let interesting = b"\"\\{}[]:, \t\n\r\x0c\x1a\x1f\x20a0_Zz\x7f\x80\xff@`/:;<=>?[^|~POpo9AaZ\x3a\x8a\xdd\xfb";
                        interesting[(state % interesting.len() as u64) as usize]
                    }
                };
            }
            classifications_agree(&chunk);
        }
        // And every byte value, each at every position of a chunk.
        for shift in 0..64 {
            for quarter in 0..4u8 {
                let mut chunk = [0u8; 64];
                for (i, b) in chunk.iter_mut().enumerate() {
                    *b = quarter * 64 + ((i + shift) % 64) as u8;
                }
                classifications_agree(&chunk);
            }
        }
    }

    /// Each vector classification the processor runs equals the portable one on `chunk`.
    #[cfg(target_arch = "x86_64")]
    fn classifications_agree(chunk: &[u8; 64]) {
        let want = classify_portable(chunk);
        // SAFETY: the caller has checked that the processor runs AVX2.
        assert_eq!(unsafe { classify_avx2(chunk) }, want, "avx2: {chunk:?}");
        if crate::simd::wide_vector_runs() {
            // SAFETY: the processor runs AVX-512F and AVX-512BW, checked just above.
            assert_eq!(unsafe { classify_avx512(chunk) }, want, "avx512: {chunk:?}");
        }
    }

    /// Stage 1's verdict on letters with `bytes` among them, at several offsets across the 16-,
    /// 32- and 64-byte boundaries (those of the vector lanes and chunks) and at the text's end,
    /// must be std's on their encoding, for every form of the check the processor runs.
    fn utf8_agrees(bytes: &[u8], scratch: &mut FastScratch) {
        for at in [0, 14, 15, 30, 31, 46, 47, 61, 62, 63] {
            for tail in [0, 40] {
                let mut text = vec![b'a'; at];
                text.extend_from_slice(bytes);
                text.resize(text.len() + tail, b'a');
                let want = std::str::from_utf8(&text).is_ok();
                for (name, ok, _) in index_each(&text) {
                    assert_eq!(ok, want, "{name}: {text:x?}");
                }
                assert_eq!(index(&text, scratch), want, "{text:x?}");
            }
        }
    }

    /// Second and later bytes to pair with every first one: the edges of the ranges that matter.
    const UTF8_EDGES: [u8; 23] = [
        0x00, 0x20, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90, 0x9F, 0xA0, 0xAF, 0xBF, 0xC0, 0xC1, 0xC2,
        0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
    ];

    #[test]
    fn stage_one_checks_utf8_as_std_does() {
        let mut scratch = FastScratch::default();
        // Bytes that stage 1 refuses for other reasons (control characters, a quote that opens
        // a string, a backslash that escapes nothing) stay out.
        let plain = |b: &u8| *b >= 0x20 && *b != b'"' && *b != b'\\';
        let edges: Vec<u8> = UTF8_EDGES.iter().copied().filter(plain).collect();
        for first in (0x20..=0xFFu8).filter(plain) {
            utf8_agrees(&[first], &mut scratch);
            for &second in &edges {
                utf8_agrees(&[first, second], &mut scratch);
            }
        }
        for first in [
            0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF4, 0xF5,
        ] {
            for &second in &edges {
                for &third in &edges {
                    utf8_agrees(&[first, second, third], &mut scratch);
                }
                if first >= 0xF0 {
                    for third in [0x7F, 0x80, 0xBF, 0xC0] {
                        for fourth in [0x7F, 0x80, 0xBF, 0xC0] {
                            utf8_agrees(&[first, second, third, fourth], &mut scratch);
                        }
                    }
                }
            }
        }
    }

    /// The positions of the set bits of `masks`, in order.
    pub(super) fn positions(masks: &[u64]) -> Vec<u32> {
        let mut out = Vec::new();
        for (w, &m) in masks.iter().enumerate() {
            let mut bits = m;
            while bits != 0 {
                out.push(w as u32 * 64 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        out
    }

    fn tokens(line: &str) -> Option<Vec<u32>> {
        let mut scratch = FastScratch::default();
        let indexed = index(line.as_bytes(), &mut scratch);
        let marks: Vec<u64> = scratch.chunks.iter().map(|c| c[MARKS]).collect();
        indexed.then(|| positions(&marks))
    }

    #[test]
    fn tokens_are_structure_quotes_and_scalar_starts() {
        assert_eq!(
            tokens(r#"{"a":[1, true],"b\"":"x,y"}"#).unwrap(),
            [0, 1, 3, 4, 5, 6, 7, 9, 13, 14, 15, 19, 20, 21, 25, 26]
        );
        assert!(tokens(r#"{"a":"b}"#).is_none(), "unterminated");
        assert!(tokens("{\"a\":\"b\tc\"}").is_none(), "tab in a string");
        assert!(tokens("{\"a\":\t1}").is_some(), "tab between tokens");
        assert!(tokens("{\"a\":\x0c1}").is_none(), "form feed");
        assert!(tokens(r#"{"a":"\q"}"#).is_none(), "invalid escape");
        assert!(tokens(r#"{"a":"\u00e9\n\/"}"#).is_some());
        assert!(
            tokens(r#"{"a":"\ud83c\udf89"}"#).is_some(),
            "a surrogate pair"
        );
        assert!(tokens(r#"{"a":"\ud83c"}"#).is_none(), "a lone surrogate");
        assert!(
            tokens(r#"{"a":"\udf89"}"#).is_none(),
            "a lone trailing surrogate"
        );
        assert!(tokens(r#"{"a":"\u12"}"#).is_none(), "short hex");
    }
}

/// The fast path against the full check: wherever the fast path calls a line clean, the full check
/// must find nothing and see the same list names.
#[cfg(test)]
mod agreement {
    use super::*;
    use crate::check::tests::run_with;
    use crate::check::{Format, Scratch};
    use proptest::prelude::*;

    /// The full check's findings (as codes) and list names for `line`, strict or not.
    fn full(line: &[u8], strict: bool) -> (Vec<&'static str>, Vec<Vec<u8>>) {
        let (findings, lists) = run_with(Format::Json, strict, line, &mut Scratch::full_only());
        let codes = findings.iter().map(|f| f.code.as_str()).collect();
        (
            codes,
            lists.order.into_iter().map(|(n, _)| n.into()).collect(),
        )
    }

    /// Whether the fast path calls `line` clean; panics where that contradicts the full check.
    fn agrees(line: &[u8]) -> bool {
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        let mut scratch = FastScratch::default();
        let fast = clean(content, &mut scratch);
        let text = String::from_utf8_lossy(line);
        if std::str::from_utf8(content).is_err() {
            assert!(!fast, "fast path accepted invalid UTF-8: {text}");
        }
        // Every form of stage 1 the processor runs must give the portable one's verdict, and
        // the same masks where it passes the text.
        let forms = index_each(content);
        let (_, portable_ok, portable_chunks) = &forms[0];
        for (name, ok, chunks) in &forms {
            assert_eq!(ok, portable_ok, "{name}: {text}");
            if *ok {
                assert_eq!(chunks, portable_chunks, "{name}: {text}");
            }
            // The walker reads token bytes unchecked: no token may lie past the text.
            let marks: Vec<u64> = chunks.iter().map(|c| c[MARKS]).collect();
            assert!(
                tests::positions(&marks)
                    .iter()
                    .all(|&t| (t as usize) < content.len()),
                "{name}: {text}"
            );
        }
        if fast {
            for strict in [false, true] {
                let (codes, names) = full(line, strict);
                assert!(
                    codes.is_empty(),
                    "fast path accepted a line with findings {codes:?}: {text}"
                );
                let fast_names: Vec<Vec<u8>> = scratch
                    .lists
                    .iter()
                    .map(|&(a, b)| content[a as usize..b as usize].to_vec())
                    .collect();
                assert_eq!(names, fast_names, "{text}");
            }
        }
        fast
    }

    /// Walks `lines`, joined by `\n` or `\r\n`, a window at a time, and holds each line's verdict
    /// to the one it gets on its own: a clean line there is clean on its own, with the same list
    /// names, and when every line is clean on its own, every line is clean there.
    fn lines_agree(lines: &[Vec<u8>], crlf: bool, final_newline: bool, window: usize) {
        let end = if crlf { &b"\r\n"[..] } else { b"\n" };
        let mut piece = lines.join(end);
        if final_newline && !lines.is_empty() {
            piece.extend_from_slice(end);
        }
        let mut seen = Vec::new();
        let mut scratch = FastScratch::default();
        clean_lines_in(&piece, &mut scratch, window, &mut |start, end, clean| {
            seen.push((start, end, clean.map(<[_]>::to_vec)));
        });
        let mut want = Vec::new();
        let mut start = 0;
        while start < piece.len() {
            let end = memchr::memchr(b'\n', &piece[start..]).map_or(piece.len(), |i| start + i);
            want.push((start, end));
            start = end + 1;
        }
        let got: Vec<_> = seen.iter().map(|&(s, e, _)| (s, e)).collect();
        let text = String::from_utf8_lossy(&piece);
        assert_eq!(got, want, "line ranges, window {window}: {text:?}");
        let mut alone = Vec::new();
        for (start, end, clean) in &seen {
            let line = &piece[*start..*end];
            // As `check_line` has it: a line's last `\r` belongs to its end.
            let content = line.strip_suffix(b"\r").unwrap_or(line);
            let on_its_own = agrees(line);
            alone.push(on_its_own);
            if let Some(lists) = clean {
                assert!(on_its_own, "clean only in a window {window}: {text:?}");
                let mut single = FastScratch::default();
                assert!(super::clean(content, &mut single));
                assert_eq!(*lists, single.lists, "{text:?}");
            }
        }
        if alone.iter().all(|&c| c) {
            assert!(
                seen.iter().all(|(_, _, c)| c.is_some()),
                "clean lines left to the full check, window {window}: {text:?}"
            );
        }
    }

    #[test]
    fn lines_walked_together_agree_with_each_alone() {
        let good: Vec<Vec<u8>> = crate::check::tests::VALID_LINES
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect();
        let bad = [
            &br#"{"email":"a@example.com","vars":{"n":"a\x"}}"#[..],
            b"{\"email\":\"a@example.com\",\"vars\":{\"n\":\"a\x01\"}}",
            br#"{"email":"a@example.com","vars":{"n":"unterminated}}"#,
            br#"{"email":"a@example.com"} {}"#,
            b"",
            b"   ",
            b"{\"email\":\"a@example.com\"}\r",
            br#"{"email":"a@example.com","vars":{"n":"\ud800"}}"#,
            // Escapes where the fast path wants plain text: each must be "not sure" wherever the
            // line stands, whatever backslashes come before it in the text.
            br#"{"email":"a@example.com","vars":{"a\u0062":1}}"#,
            br#"{"email":"a\u0040example.com"}"#,
            br#"{"email":"a@example.com","optout":"n\u006fne"}"#,
            br#"{"email":"a@example.com","vars":{"x":"a\\b"},"lists":{"a\"b":1}}"#,
            br#"{"id":"a\u0040example.com","key":"email"}"#,
            // Bytes that are not UTF-8, which stage 1 finds: a lone Latin-1 byte, a surrogate, an
            // overlong form, a code point past U+10FFFF, a sequence cut short in a string and at
            // the line's end.
            b"{\"email\":\"a@example.com\",\"vars\":{\"n\":\"\xe9\"}}",
            b"{\"email\":\"a@example.com\",\"vars\":{\"n\":\"\xed\xa0\x80\"}}",
            b"{\"email\":\"a@example.com\",\"vars\":{\"n\":\"\xc0\xaf\"}}",
            b"{\"email\":\"a@example.com\",\"lists\":{\"\xf4\x90\x80\x80\":1}}",
            b"{\"email\":\"a@example.com\",\"vars\":{\"n\":\"\xe2\x82\"}}",
            b"{\"email\":\"a@example.com\"}\xe2",
        ];
        for window in [1, 7, 64, 100, 1000, WINDOW] {
            for crlf in [false, true] {
                for final_newline in [false, true] {
                    lines_agree(&good, crlf, final_newline, window);
                    for b in bad {
                        for at in [0, 1, good.len() / 2, good.len()] {
                            let mut lines = good.clone();
                            lines.insert(at, b.to_vec());
                            lines_agree(&lines, crlf, final_newline, window);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn typical_valid_lines_take_the_fast_path() {
        let more = [
            r#"{"email":"a@example.com","lists":{"!! bar/foo":0,"Main":1}}"#,
            "{\"email\":\"a@example.com\",\t\"vars\":{\"n\":\"tab\\tbed \\\"q\\\" \\u00e9 \\ud83c\\udf89 \\\\\"}}",
            r#"{"email":"a@example.com","vars":{"deep":{"a":{"b":[[[],{}],-0.5,0,-12]}}}}"#,
            r#"{"email":"a@example.com","vars":{"abcdefgh1":1,"abcdefgh2":2,"abcdefg":3,"abcdefgh":4}}"#,
        ];
        for line in crate::check::tests::VALID_LINES.iter().chain(&more) {
            assert!(agrees(line.as_bytes()), "not fast: {line}");
        }
    }

    #[test]
    fn next_bit_finds_the_first_bit_at_or_after_a_position() {
        let masks = [1u64 << 3 | 1 << 63, 0, 0, 1 << 5];
        let set = [3u32, 63, 197];
        for from in 0..300 {
            let want = set.iter().copied().find(|&b| b >= from).unwrap_or(u32::MAX);
            assert_eq!(next_bit(&masks[..], from), want, "{from}");
            let chunks = masks.map(|m| [u64::MAX, u64::MAX, m]);
            assert_eq!(next_bit(&Field::<NONWORD>(&chunks), from), want, "{from}");
        }
        let none: &[u64] = &[];
        assert_eq!(next_bit(none, 0), u32::MAX);
    }

    #[test]
    fn a_walker_over_a_line_shorter_than_the_indexed_text_has_no_tokens() {
        let text = br#"{"email":"a@example.com"}"#;
        let mut scratch = FastScratch::default();
        assert!(index(text, &mut scratch));
        assert!(Walker::new(text, &mut scratch).update().is_some());
        let mut walker = Walker::new(&text[..10], &mut scratch);
        assert!(walker.chunks.is_empty() && walker.update().is_none());
    }

    #[test]
    fn a_repeated_key_leaves_the_fast_path_wherever_it_is() {
        // Up to the most keys the fast path takes, so that the per-object filter has collisions:
        // distinct keys stay clean, and a repeat of any earlier key (short or long, in vars, in
        // lists, in a nested object) never is.
        for n in 1..MAX_FAST_KEYS {
            let names: Vec<String> = (0..n)
                .map(|i| {
                    if i % 3 == 0 {
                        format!("k{i}")
                    } else {
                        format!("key_number_{i}")
                    }
                })
                .collect();
            let vars = |names: &[String]| {
                let members: Vec<String> = names.iter().map(|k| format!(r#""{k}":1"#)).collect();
                members.join(",")
            };
            for shape in [
                r#"{"email":"a@example.com","vars":{X}}"#,
                r#"{"email":"a@example.com","lists":{X}}"#,
                r#"{"email":"a@example.com","vars":{"o":{X}}}"#,
            ] {
                let line = shape.replace('X', &vars(&names));
                assert!(agrees(line.as_bytes()), "{line}");
                for repeat in 0..n {
                    let mut with = names.clone();
                    with.push(names[repeat].clone());
                    let line = shape.replace('X', &vars(&with));
                    assert!(!agrees(line.as_bytes()), "{line}");
                }
            }
        }
    }

    #[test]
    fn every_rule_leaves_the_fast_path() {
        let long = "x".repeat(141);
        let long_name = "v".repeat(33);
        let deep = format!(
            r#"{{"email":"a@example.com","vars":{}1{}}}"#,
            r#"{"a":"#.repeat(70),
            "}".repeat(71)
        );
        let lines = [
            // JSON
            r#"{"email":"a@example.com""#.to_string(),
            r#"{"email":"a@example.com"} {"email":"b@example.com"}"#.into(),
            r#"{"email":"a@example.com"} x"#.into(),
            "[1,2]".into(),
            r#"{"email":"a@example.com","vars":{"n":1e999}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":01}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":1.}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":-}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":tru}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":truex}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":[1,]}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":{"a":1,}}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":"\ud800"}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":"\x"}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":9007199254740993}}"#.into(),
            r#"{"email":"a@example.com","vars":{"n":{"a":1,"a":2}}}"#.into(),
            "{\"email\":\"a@example.com\",\"vars\":{\"n\":\"a\u{1}b\"}}".into(),
            "{\"email\":\"a@example.com\"}\r{}".into(),
            "\u{feff}{\"email\":\"a@example.com\"}".into(),
            deep,
            // rules
            r#"{"vars":{"a":1}}"#.into(),
            r#"{}"#.into(),
            r#"{"email":"a@example"}"#.into(),
            r#"{"email":" a@example.com"}"#.into(),
            r#"{"email":1}"#.into(),
            r#"{"email":"a@example.com","email":"b@example.com"}"#.into(),
            r#"{"id":"","key":"extid"}"#.into(),
            r#"{"id":"nope"}"#.into(),
            r#"{"id":"nope","key":"email"}"#.into(),
            r#"{"id":"1","key":"phone"}"#.into(),
            r#"{"email":"a@example.com","keys":{"phone":"1"}}"#.into(),
            r#"{"email":"a@example.com","keys":{"extid":1}}"#.into(),
            r#"{"email":"a@example.com","keys":[]}"#.into(),
            r#"{"email":"a@example.com","keysconflict":"maybe"}"#.into(),
            r#"{"email":"a@example.com","vars":{"1a":1}}"#.into(),
            r#"{"email":"a@example.com","vars":{"123":1}}"#.into(),
            r#"{"email":"a@example.com","vars":{"":1}}"#.into(),
            r#"{"email":"a@example.com","vars":{"a-b":1}}"#.into(),
            r#"{"email":"a@example.com","vars":{"é":1}}"#.into(),
            format!(r#"{{"email":"a@example.com","vars":{{"{long_name}":1}}}}"#),
            format!(r#"{{"email":"a@example.com","vars":{{"v":"{long}"}}}}"#),
            r#"{"email":"a@example.com","vars":[]}"#.into(),
            r#"{"email":"a@example.com","lists":{"Main":2}}"#.into(),
            r#"{"email":"a@example.com","lists":{"Main":"1"}}"#.into(),
            r#"{"email":"a@example.com","lists":{"Main":1.0}}"#.into(),
            r#"{"email":"a@example.com","lists":{"Main":10}}"#.into(),
            r#"{"email":"a@example.com","lists":{"a$b":1}}"#.into(),
            r#"{"email":"a@example.com","lists":{"!!":1}}"#.into(),
            r#"{"email":"a@example.com","lists":{"Main":1,"Main":0}}"#.into(),
            r#"{"email":"a@example.com","lists":1}"#.into(),
            r#"{"email":"a@example.com","optout":"ALL"}"#.into(),
            r#"{"email":"a@example.com","optout":1}"#.into(),
            r#"{"email":"a@example.com","signup_date":"2013-02-30"}"#.into(),
            r#"{"email":"a@example.com","signup_date":"soon"}"#.into(),
            r#"{"email":"a@example.com","signup_date":99999999999999}"#.into(),
            r#"{"email":"a@example.com","signup_date":true}"#.into(),
            r#"{"email":"a@example.com","delete_vars":"a"}"#.into(),
            r#"{"email":"a@example.com","delete_vars":[1]}"#.into(),
            r#"{"email":"a@example.com","colour":"red"}"#.into(),
            r#"{"email":"a@example.com","vars":{"a":1,"a":2}}"#.into(),
        ];
        for line in lines {
            assert!(!agrees(line.as_bytes()), "fast path took: {line}");
        }
    }

    #[test]
    fn fixture_lines_agree() {
        for line in crate::check::tests::fixture_lines() {
            agrees(&line);
            // The same text as a var value exercises the fast path's JSON grammar.
            let mut wrapped = br#"{"email":"a@example.com","vars":{"v":"#.to_vec();
            wrapped.extend_from_slice(&line);
            wrapped.extend_from_slice(b"}}");
            agrees(&wrapped);
        }
    }

    /// Pieces of update lines, right and wrong, for the random lines below.
    const PIECES: &[&str] = &[
        r#""email":"a@example.com""#,
        r#""email":"a.b+c@mail.example.co.uk""#,
        r#""email":"a@b""#,
        r#""id":"x@example.com""#,
        r#""id":"42""#,
        r#""key":"extid""#,
        r#""key":"email""#,
        r#""keys":{"extid":"1","sid":"2"}"#,
        r#""keysconflict":"merge""#,
        r#""optout":"none""#,
        r#""optout":"basic""#,
        r#""signup_date":"2014-09-24T16:47:50Z""#,
        r#""signup_date":1358467200"#,
        r#""signup_date":"18 Jan 2013""#,
        r#""delete_vars":["a","b"]"#,
        r#""fields":{"keys":1}"#,
        r#""lists":{"Main":1,"Daily Digest":0}"#,
        r#""lists":{"Main":1}"#,
        r#""lists":{"ß":1}"#,
        r#""vars":{"a":1,"b_2":"x","c":[1,2.5,{"d":null}],"e":{"f":true}}"#,
        r#""vars":{"note":"C:\\Users\\x \"q\" \u00e9 \ud83c\udf89"}"#,
        r#""vars":{"n":-0.0,"m":123456789012345}"#,
        r#""vars":{"Aa_9":"","z":false}"#,
        r#""unknown":1"#,
        r#""vars":{"big":1234567890123456}"#,
    ];

    fn line() -> impl Strategy<Value = Vec<u8>> {
        let members = prop::collection::vec(0..PIECES.len(), 0..6);
        let sep = prop::sample::select(vec![",", ", ", " ,", ",\t"]);
        let edits =
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 0..3);
        (members, sep, edits).prop_map(|(members, sep, edits)| {
            let body: Vec<&str> = members.iter().map(|&i| PIECES[i]).collect();
            let mut line = format!("{{{}}}", body.join(sep)).into_bytes();
            let bytes = b"\"\\{}[]:, \t0-.eE1axu\x01\x7f";
            for (at, byte, how) in edits {
                let i = at.index(line.len() + 1);
                let byte = bytes[usize::from(byte) % bytes.len()];
                match how {
                    0 => line.insert(i, byte),
                    1 if i < line.len() => {
                        line.remove(i);
                    }
                    2 if i < line.len() => line[i] = byte,
                    _ => {}
                }
            }
            line
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn random_lines_agree(line in line()) {
            agrees(&line);
        }

        #[test]
        fn random_lines_walked_together_agree(
            lines in prop::collection::vec(line(), 0..12),
            crlf in any::<bool>(),
            final_newline in any::<bool>(),
            window in prop::sample::select(vec![1usize, 16, 64, 150, 400, WINDOW]),
        ) {
            lines_agree(&lines, crlf, final_newline, window);
        }

        #[test]
        fn random_bytes_agree(line in prop::collection::vec(prop::sample::select(
            b"\"\\{}[]:,  \tabeu0129-.@$\x01".to_vec()), 0..200)) {
            let mut wrapped = br#"{"email":"a@example.com","vars":{"v":"#.to_vec();
            wrapped.extend_from_slice(&line);
            wrapped.extend_from_slice(b"}}");
            agrees(&line);
            agrees(&wrapped);
        }

        #[test]
        fn random_utf8_is_checked_as_std_does(parts in prop::collection::vec(prop::sample::select(
            vec![
                &b"a"[..], b" ", b"\xc3\xa9", b"\xe2\x82\xac", b"\xf0\x9f\x8e\x89",
                b"\xed\x9f\xbf", b"\xf4\x8f\xbf\xbf", b"\x80", b"\xbf", b"\xc3", b"\xe2", b"\xe2\x82",
                b"\xf0\x9f", b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\xff",
            ]), 0..120)) {
            let text = parts.concat();
            let want = std::str::from_utf8(&text).is_ok();
            for (name, ok, _) in index_each(&text) {
                prop_assert_eq!(ok, want, "{}", name);
            }
        }
    }
}
