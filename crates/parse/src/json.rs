//! A validating JSON scanner that gives serde_json's verdict in one pass and without allocating.
//!
//! Parsing every line into a `serde_json::Value` is correct but allocates per string, map and
//! array; this scanner walks the same grammar (RFC 8259) over bytes that are already known to be
//! UTF-8 and accepts exactly what `serde_json::from_slice::<Value>` accepts: no lone surrogates in
//! `\u` escapes, no number that overflows a double (`1e999`), nesting at most 127 deep (serde_json's
//! recursion limit), no control characters in strings, nothing but whitespace after the value.
//! The tests compare its verdict with serde_json's on JSONTestSuite and on random input.
//!
//! Along the way it notes two things serde_json would hide: duplicate keys in an object, and
//! integers beyond 2^53.

use sailbulk_spec::MAX_SAFE_INTEGER;
use std::borrow::Cow;
use std::collections::HashSet;

/// serde_json's `remaining_depth` starts at 128 and fails when an opening bracket brings it to 0.
const MAX_DEPTH: u32 = 127;

/// A string as it appears in the line: the bytes between the quotes, escapes not yet applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Str<'a> {
    /// The bytes between the quotes.
    pub raw: &'a [u8],
    /// Byte offset of the opening quote in the line.
    pub pos: usize,
    /// Whether `raw` holds a backslash escape.
    pub escaped: bool,
}

impl<'a> Str<'a> {
    /// The decoded text. Only called on strings the scanner has accepted, so escapes are valid.
    #[inline]
    pub fn decode(&self) -> Cow<'a, str> {
        if !self.escaped {
            return Cow::Borrowed(self.text());
        }
        Cow::Owned(self.unescape())
    }

    #[cold]
    #[inline(never)]
    fn unescape(&self) -> String {
        let mut out = String::with_capacity(self.raw.len());
        let mut chars = Unescape {
            raw: self.raw,
            i: 0,
        };
        while let Some(c) = chars.next_char() {
            out.push(c);
        }
        out
    }

    /// The raw text between the quotes.
    fn text(&self) -> &'a str {
        debug_assert!(std::str::from_utf8(self.raw).is_ok());
        // SAFETY: `Scanner::new` requires a line that is valid UTF-8, and `raw` lies between two
        // ASCII quote bytes of it, so it starts and ends on character boundaries.
        unsafe { std::str::from_utf8_unchecked(self.raw) }
    }

    /// The length in characters of the decoded text.
    pub fn char_len(&self) -> usize {
        if !self.escaped {
            return self.raw.iter().filter(|&&b| (b as i8) >= -0x40).count();
        }
        let mut chars = Unescape {
            raw: self.raw,
            i: 0,
        };
        let mut n = 0;
        while chars.next_char().is_some() {
            n += 1;
        }
        n
    }

    /// Whether the decoded text equals `s`.
    pub fn is(&self, s: &str) -> bool {
        if self.escaped {
            self.decode() == s
        } else {
            self.raw == s.as_bytes()
        }
    }
}

/// Decodes an accepted string's escapes.
struct Unescape<'a> {
    raw: &'a [u8],
    i: usize,
}

impl Unescape<'_> {
    fn hex4(&self, at: usize) -> u32 {
        self.raw[at..at + 4].iter().fold(0, |acc, &b| {
            acc * 16 + (b as char).to_digit(16).unwrap_or(0)
        })
    }

    fn next_char(&mut self) -> Option<char> {
        let rest = self.raw.get(self.i..)?;
        let &b = rest.first()?;
        if b != b'\\' {
            let len = utf8_len(b);
            self.i += len;
            return std::str::from_utf8(&rest[..len.min(rest.len())])
                .ok()
                .and_then(|s| s.chars().next());
        }
        let e = *rest.get(1)?;
        self.i += 2;
        let c = match e {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4(self.i);
                self.i += 4;
                if (0xD800..0xDC00).contains(&hi) {
                    let lo = self.hex4(self.i + 2);
                    self.i += 6;
                    char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?
                } else {
                    char::from_u32(hi)?
                }
            }
            other => other as char,
        };
        Some(c)
    }
}

fn utf8_len(b: u8) -> usize {
    match b {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

/// A syntax error: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// Byte offset in the line.
    pub pos: usize,
    /// What was wrong, as a phrase.
    pub what: &'static str,
}

/// The kind of value found, with what the rules need to look at.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Null,
    Bool,
    Num(Num<'a>),
    Str(Str<'a>),
    Array,
    Object,
}

impl Val<'_> {
    /// The JSON type's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool => "a boolean",
            Val::Num(_) => "a number",
            Val::Str(_) => "a string",
            Val::Array => "an array",
            Val::Object => "an object",
        }
    }
}

/// A number as written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Num<'a> {
    pub raw: &'a [u8],
    /// No fraction and no exponent.
    pub integer: bool,
}

impl Num<'_> {
    /// The value when it is an integer that fits an `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        if !self.integer {
            return None;
        }
        std::str::from_utf8(self.raw).ok()?.parse().ok()
    }
}

/// A place in the value, for field paths in findings: `vars.address.city`, `lists.Main`,
/// `delete_vars[2]`.
#[derive(Clone, Copy)]
pub(crate) enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p Str<'p>),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    /// Renders the path; `None` for the root.
    pub fn render(&self) -> Option<String> {
        let mut out = String::new();
        self.render_into(&mut out);
        (!out.is_empty()).then_some(out)
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.render_into(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key.decode());
            }
            Path::Index(parent, i) => {
                parent.render_into(out);
                out.push_str(&format!("[{i}]"));
            }
        }
    }
}

/// Something the scanner noticed in valid JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// A key seen before in the same object (byte offset of the second one's quote, path).
    DuplicateKey { pos: usize, field: String },
    /// An integer beyond 2^53 (byte offset, path).
    BigInteger { pos: usize, field: Option<String> },
}

/// The length of the run of bytes that need no attention inside a JSON string: up to the first
/// quote, backslash or control character (the bytes a JSON writer must escape), or the whole
/// slice. Eight bytes at a time (SWAR), then byte by byte.
///
/// ```
/// assert_eq!(sailbulk_parse::json_plain_run(b"Zo\xc3\xab said \"hi\""), 10);
/// assert_eq!(sailbulk_parse::json_plain_run(b"plain"), 5);
/// ```
#[inline]
pub fn plain_run(rest: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        // Sixteen bytes at a time with SSE2, which every x86-64 processor has.
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        while let Some(chunk) = rest.get(i..i + 16) {
            // SAFETY: the intrinsics need SSE2, which the `cfg` above guarantees; `chunk` is 16
            // readable bytes, and the load has no alignment requirement.
            let mask = unsafe {
                let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
                let quote = _mm_set1_epi8(b'"' as i8);
                let slash = _mm_set1_epi8(b'\\' as i8);
                let control = _mm_set1_epi8(0x1F);
                // A byte is below 0x20 when the unsigned maximum of it and 0x1F is 0x1F.
                let stop = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                    _mm_cmpeq_epi8(_mm_max_epu8(v, control), control),
                );
                _mm_movemask_epi8(stop)
            };
            if mask != 0 {
                return i + mask.trailing_zeros() as usize;
            }
            i += 16;
        }
    }
    while let Some(chunk) = rest.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let quote = x ^ (ONES * u64::from(b'"'));
        let slash = x ^ (ONES * u64::from(b'\\'));
        // A byte is flagged when it is zero after the xor (quote, backslash) or below 0x20; bytes
        // >= 0x80 are masked out by `!x`, so UTF-8 text passes.
        let flagged = (quote.wrapping_sub(ONES) & !quote
            | slash.wrapping_sub(ONES) & !slash
            | x.wrapping_sub(ONES * 0x20) & !x)
            & HIGHS;
        if flagged != 0 {
            return i + (flagged.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + rest[i..]
        .iter()
        .position(|&c| STRING_STOP[c as usize])
        .unwrap_or(rest.len() - i)
}

/// Bytes that end the fast run inside a string: the quote, a backslash, control characters.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Past this many keys, an object's duplicate check uses a set, so adversarial lines stay linear.
const LINEAR_KEYS: usize = 32;

/// A key of an object being scanned, kept as offsets into the line (so that the buffer holding
/// them outlives the line and is reused for the next one) with a fingerprint that settles most
/// comparisons without touching the bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRef {
    /// Byte offset of the opening quote.
    pos: usize,
    /// Length of the raw text between the quotes.
    len: usize,
    escaped: bool,
    /// The first eight raw bytes, zero-padded.
    head: u64,
}

impl KeyRef {
    /// The reference to a key the scanner has read from `line`.
    #[inline]
    pub fn of(key: &Str<'_>, line: &[u8]) -> KeyRef {
        let len = key.raw.len();
        let head = key_fingerprint(line, key.pos + 1, key.raw);
        KeyRef {
            pos: key.pos,
            len,
            escaped: key.escaped,
            head,
        }
    }

    /// The key again, from the line it was read from.
    pub fn str<'a>(&self, line: &'a [u8]) -> Str<'a> {
        Str {
            raw: &line[self.pos + 1..self.pos + 1 + self.len],
            pos: self.pos,
            escaped: self.escaped,
        }
    }
}

/// The first eight bytes of a key's raw text `raw`, which starts at byte `start` of `line`,
/// zero-padded: one load from the line, since a key is followed by at least its closing quote, so
/// short keys usually have eight bytes of line to read.
#[inline(always)]
pub(crate) fn key_fingerprint(line: &[u8], start: usize, raw: &[u8]) -> u64 {
    // The bytes to keep, by length: a load from a table rather than a branch on the length, which
    // varies from key to key and would be mispredicted often.
    const KEEP: [u64; 9] = {
        let mut keep = [u64::MAX; 9];
        let mut len = 0;
        while len < 8 {
            keep[len] = (1u64 << (len * 8)) - 1;
            len += 1;
        }
        keep
    };
    let len = raw.len();
    match line.get(start..).and_then(<[u8]>::first_chunk::<8>) {
        Some(w) => u64::from_le_bytes(*w) & KEEP[len.min(8)],
        None => raw
            .iter()
            .take(8)
            .rev()
            .fold(0, |acc, &b| acc << 8 | u64::from(b)),
    }
}

/// One of 64 slots for a key or a name, from its [`key_fingerprint`] and its length: the top six
/// bits of a multiplicative hash. For the small direct-mapped caches and filters that spare most
/// keys a comparison.
#[inline(always)]
pub(crate) fn fingerprint_slot(head: u64, len: usize) -> u32 {
    let key = head ^ (len as u64).rotate_left(56);
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as u32
}

/// Whether two keys name the same member. Raw bytes decide unless an escape is involved.
#[inline(always)]
fn same_key(line: &[u8], a: &KeyRef, b: &KeyRef) -> bool {
    if a.escaped || b.escaped {
        return same_decoded(line, a, b);
    }
    a.len == b.len && a.head == b.head && (a.len <= 8 || a.str(line).raw == b.str(line).raw)
}

#[cold]
#[inline(never)]
fn same_decoded(line: &[u8], a: &KeyRef, b: &KeyRef) -> bool {
    a.str(line).decode() == b.str(line).decode()
}

/// The scanner over one line.
pub(crate) struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    depth: u32,
    /// The keys of the objects being scanned, innermost last (reused: no allocation per object,
    /// and none per line for callers that hand the buffer from line to line).
    keys: Vec<KeyRef>,
    /// What was noticed so far.
    pub notes: Vec<Note>,
}

type Result<T> = std::result::Result<T, SyntaxError>;

impl<'a> Scanner<'a> {
    /// A scanner over `line`, which must be valid UTF-8 (checked in debug builds; the scanner
    /// relies on it to borrow strings without checking them again).
    pub fn new(line: &'a [u8]) -> Self {
        Self::with_keys(line, Vec::new())
    }

    /// A scanner that keeps object keys in `keys` (emptied first), a buffer from an earlier line
    /// given back by [`Scanner::into_keys`], so that scanning a line allocates nothing.
    pub fn with_keys(line: &'a [u8], mut keys: Vec<KeyRef>) -> Self {
        debug_assert!(std::str::from_utf8(line).is_ok());
        keys.clear();
        Scanner {
            b: line,
            pos: 0,
            depth: 0,
            keys,
            notes: Vec::new(),
        }
    }

    /// The key buffer, for the next line's scanner.
    pub fn into_keys(self) -> Vec<KeyRef> {
        self.keys
    }

    /// The current byte offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The line being scanned.
    pub fn line(&self) -> &'a [u8] {
        self.b
    }

    /// The byte at the position after any whitespace, which is skipped. The common case, no
    /// whitespace between tokens, costs one comparison.
    #[inline(always)]
    fn next_token(&mut self) -> Option<u8> {
        match self.b.get(self.pos) {
            Some(&c) if !is_ws(c) => Some(c),
            _ => {
                self.skip_ws();
                self.peek()
            }
        }
    }

    fn err<T>(&self, what: &'static str) -> Result<T> {
        Err(SyntaxError {
            pos: self.pos.min(self.b.len()),
            what,
        })
    }

    #[inline]
    pub fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if is_ws(c) {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    pub fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.b.len()
    }

    #[inline(always)]
    fn expect(&mut self, c: u8, what: &'static str) -> Result<()> {
        if self.next_token() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }

    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.err("nesting deeper than 127 levels")
        } else {
            Ok(())
        }
    }

    /// Scans one value of any kind, returning what it is. Arrays and objects are checked through
    /// and reported only as `Array`/`Object`.
    pub fn value(&mut self, path: Path<'_>) -> Result<Val<'a>> {
        match self.next_token() {
            Some(b'{') => {
                self.object(path, |s, key, path| {
                    let path = Path::Key(&path, &key);
                    s.value(path).map(|_| ())
                })?;
                Ok(Val::Object)
            }
            Some(b'[') => {
                self.array(path, |s, path| s.value(path).map(|_| ()))?;
                Ok(Val::Array)
            }
            Some(b'"') => self.string().map(Val::Str),
            Some(b'-' | b'0'..=b'9') => self.number(path).map(Val::Num),
            Some(b't') => self.literal(b"true", Val::Bool),
            Some(b'f') => self.literal(b"false", Val::Bool),
            Some(b'n') => self.literal(b"null", Val::Null),
            Some(_) => self.err("expected a value"),
            None => self.err("unexpected end of line, expected a value"),
        }
    }

    fn literal(&mut self, word: &'static [u8], val: Val<'a>) -> Result<Val<'a>> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(val)
        } else {
            self.err("expected a value")
        }
    }

    /// Scans an object, calling `member(scanner, key, path)` with the scanner at each value; the
    /// callback must consume the value. `path` is the object's own path.
    pub fn object<F>(&mut self, path: Path<'_>, mut member: F) -> Result<()>
    where
        F: FnMut(&mut Self, Str<'a>, Path<'_>) -> Result<()>,
    {
        self.expect(b'{', "expected `{`")?;
        self.enter()?;
        if self.next_token() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let base = self.keys.len();
        let mut set: Option<HashSet<Cow<'a, str>>> = None;
        loop {
            if self.next_token() != Some(b'"') {
                return self.err("expected a string key");
            }
            let key = self.string()?;
            let duplicate = match &mut set {
                Some(set) => !set.insert(key.decode()),
                None => {
                    let this = KeyRef::of(&key, self.b);
                    let line = self.b;
                    let dup = self.keys[base..].iter().any(|k| same_key(line, k, &this));
                    if !dup {
                        self.keys.push(this);
                        if self.keys.len() - base > LINEAR_KEYS {
                            set = Some(
                                self.keys
                                    .drain(base..)
                                    .map(|k| k.str(line).decode())
                                    .collect(),
                            );
                        }
                    }
                    dup
                }
            };
            if duplicate {
                let field = Path::Key(&path, &key).render().unwrap_or_default();
                self.notes.push(Note::DuplicateKey {
                    pos: key.pos,
                    field,
                });
            }
            self.expect(b':', "expected `:` after a key")?;
            member(self, key, path)?;
            match self.next_token() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    self.depth -= 1;
                    self.keys.truncate(base);
                    return Ok(());
                }
                _ => return self.err("expected `,` or `}` after an object member"),
            }
        }
    }

    /// Scans an array, calling `item(scanner, path)` with the scanner at each element; the callback
    /// must consume it.
    pub fn array<F>(&mut self, path: Path<'_>, mut item: F) -> Result<()>
    where
        F: FnMut(&mut Self, Path<'_>) -> Result<()>,
    {
        self.expect(b'[', "expected `[`")?;
        self.enter()?;
        if self.next_token() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(());
        }
        let mut i = 0;
        loop {
            item(self, Path::Index(&path, i))?;
            i += 1;
            match self.next_token() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return self.err("expected `,` or `]` after an array element"),
            }
        }
    }

    /// Scans a string starting at the opening quote.
    #[inline(always)]
    pub fn string(&mut self) -> Result<Str<'a>> {
        // The caller has seen the opening quote at `pos`. (Not asserted: in a mapped file that
        // another process truncates meanwhile, the byte may read as zero by now, and the run then
        // ends with the change of size reported, whatever this scan makes of it.)
        let start = self.pos;
        self.pos += 1;
        let mut escaped = false;
        loop {
            self.pos += plain_run(&self.b[self.pos..]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Str {
                        raw: &self.b[start + 1..self.pos - 1],
                        pos: start,
                        escaped,
                    });
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                Some(_) => return self.err("control character in a string (escape it)"),
                None => return self.err("unterminated string"),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let Some(digits) = self.b.get(self.pos..self.pos + 4) else {
            self.pos = self.b.len();
            return self.err("unterminated `\\u` escape");
        };
        let mut v = 0;
        for (i, &d) in digits.iter().enumerate() {
            match (d as char).to_digit(16) {
                Some(x) => v = v * 16 + x,
                None => {
                    self.pos += i;
                    return self.err("invalid hex digit in a `\\u` escape");
                }
            }
        }
        self.pos += 4;
        Ok(v)
    }

    #[cold]
    #[inline(never)]
    fn escape(&mut self) -> Result<()> {
        // At the backslash.
        self.pos += 1;
        let Some(e) = self.peek() else {
            return self.err("unterminated string");
        };
        self.pos += 1;
        match e {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(()),
            b'u' => {
                let at = self.pos - 2;
                let cp = self.hex4()?;
                if (0xDC00..0xE000).contains(&cp) {
                    self.pos = at;
                    return self.err("lone trailing surrogate in a `\\u` escape");
                }
                if (0xD800..0xDC00).contains(&cp) {
                    if self.b[self.pos..].starts_with(b"\\u") {
                        self.pos += 2;
                        let lo = self.hex4()?;
                        if (0xDC00..0xE000).contains(&lo) {
                            return Ok(());
                        }
                    }
                    self.pos = at;
                    return self.err("lone leading surrogate in a `\\u` escape");
                }
                Ok(())
            }
            _ => {
                self.pos -= 1;
                self.err("invalid escape")
            }
        }
    }

    /// Scans a number, noting integers beyond 2^53.
    pub fn number(&mut self, path: Path<'_>) -> Result<Num<'a>> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.err("invalid number"),
        }
        let int_end = self.pos;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.err("invalid number: digits must follow `.`");
            }
            self.digits();
            integer = false;
        }
        let has_exponent = matches!(self.peek(), Some(b'e' | b'E'));
        if has_exponent {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.err("invalid number: digits must follow the exponent");
            }
            self.digits();
            integer = false;
        }
        let raw = &self.b[start..self.pos];
        let digits = int_end - start - usize::from(raw[0] == b'-');
        if integer {
            // 2^53 has 16 digits: shorter integers are exact, longer ones may not fit a double.
            if digits >= 16 {
                let magnitude = &raw[usize::from(raw[0] == b'-')..];
                let exact = std::str::from_utf8(magnitude)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok());
                if exact.is_none_or(|v| v > MAX_SAFE_INTEGER) {
                    if exact.is_none() && !finite(raw) {
                        self.pos = start;
                        return self.err("number out of range");
                    }
                    self.notes.push(Note::BigInteger {
                        pos: start,
                        field: path.render(),
                    });
                }
            }
        } else if (has_exponent || digits > 300) && !finite(raw) {
            // Only an exponent or a very long integer part can overflow a double.
            self.pos = start;
            return self.err("number out of range");
        }
        Ok(Num { raw, integer })
    }

    #[inline]
    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }
}

/// JSON's whitespace: space, tab, line feed, carriage return.
#[inline(always)]
pub(crate) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether a number literal is a finite double as serde_json reads it (it fails on overflow to
/// infinity). Its own parser decides, not the standard library's: without serde_json's
/// `float_roundtrip` feature the two round differently next to the largest double, and a line
/// near it would pass here and fail where the uploader parses it.
fn finite(raw: &[u8]) -> bool {
    serde_json::from_slice::<f64>(raw).is_ok_and(f64::is_finite)
}

/// The verdict on a whole line: `Ok` with what was noticed, or the first syntax error.
#[cfg(test)]
pub(crate) fn check_document(line: &[u8]) -> Result<Vec<Note>> {
    let mut s = Scanner::new(line);
    s.value(Path::Root)?;
    if !s.at_end() {
        return s.err("trailing characters after the value");
    }
    Ok(s.notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> bool {
        check_document(s.as_bytes()).is_ok()
    }

    fn serde_ok(s: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(s).is_ok()
    }

    #[test]
    fn agrees_with_serde_json_on_hand_picked_cases() {
        let cases: &[&str] = &[
            "{}",
            "[]",
            "{\"a\":1}",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "-0",
            "-",
            "1.",
            ".1",
            "1e",
            "1e+",
            "1E-2",
            "1e999",
            "-1e999",
            "1e-999",
            "0e99999999999999999999",
            "123456789012345678901234567890",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "-1.7976931348623158e308",
            "1797693134862.31586e296",
            "179769313486231580000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\ud800x\"",
            "\"\\u00e9\"",
            "\"\\x\"",
            "\"a\tb\"",
            "\"\\u12\"",
            "\"abc",
            "tru",
            "true",
            "nul",
            "{\"a\" 1}",
            "{1:2}",
            "[1 2]",
            " {} ",
            "{} {}",
            "{}x",
            "",
            "   ",
            "\"\u{7f}\"",
        ];
        for case in cases {
            assert_eq!(ok(case), serde_ok(case.as_bytes()), "{case:?}");
        }
    }

    #[test]
    fn depth_limit_matches_serde_json() {
        for n in [126, 127, 128, 129] {
            let arrays = format!("{}{}", "[".repeat(n), "]".repeat(n));
            assert_eq!(ok(&arrays), serde_ok(arrays.as_bytes()), "arrays {n}");
            let objects = format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
            assert_eq!(ok(&objects), serde_ok(objects.as_bytes()), "objects {n}");
        }
    }

    #[test]
    fn notes_duplicates_and_big_integers() {
        let notes = check_document(br#"{"a":1,"b":{"x":1,"x":2},"a":9007199254740993}"#).unwrap();
        assert_eq!(
            notes,
            vec![
                Note::DuplicateKey {
                    pos: 18,
                    field: "b.x".into()
                },
                Note::DuplicateKey {
                    pos: 25,
                    field: "a".into()
                },
                Note::BigInteger {
                    pos: 29,
                    field: Some("a".into())
                },
            ]
        );
        assert!(check_document(b"9007199254740992").unwrap().is_empty());
        assert_eq!(check_document(b"-9007199254740993").unwrap().len(), 1);
        assert!(check_document(br#"{"\u0061":1,"a":2}"#).unwrap().len() == 1);
    }

    #[test]
    fn plain_run_stops_at_every_position_and_every_stop_byte() {
        // Lengths around the 16- and 8-byte steps, the stop byte at every offset.
        for len in 0..40 {
            for stop in [b'"', b'\\', 0x00, 0x1F, b'\n'] {
                for at in 0..len {
                    let mut text = vec![b'a'; len];
                    text[at] = stop;
                    assert_eq!(plain_run(&text), at, "len {len}, byte {stop:#x} at {at}");
                }
                assert_eq!(plain_run(&vec![b'a'; len]), len);
            }
            // Bytes at and above 0x20 and UTF-8 never stop the run.
            let text: Vec<u8> = (0..len)
                .map(|i| [0x20, 0x7F, 0x80, 0xC3, 0xFF][i % 5])
                .collect();
            assert_eq!(plain_run(&text), len, "len {len}");
        }
    }

    #[test]
    fn duplicate_keys_are_found_past_the_fingerprint() {
        let dup = |line: &str| check_document(line.as_bytes()).unwrap().len();
        // Same first eight bytes, different after them.
        assert_eq!(dup(r#"{"abcdefgh_1":1,"abcdefgh_2":2}"#), 0);
        assert_eq!(dup(r#"{"abcdefgh_1":1,"abcdefgh_1":2}"#), 1);
        // Short keys, one a prefix of the other, and the empty key.
        assert_eq!(dup(r#"{"ab":1,"abc":2,"":3,"a":4}"#), 0);
        assert_eq!(dup(r#"{"":1,"":2}"#), 1);
        // An escaped spelling of the same key, long and short.
        assert_eq!(dup(r#"{"abcdefghij":1,"abcdefgh\u0069j":2}"#), 1);
        assert_eq!(dup(r#"{"\u0061":1,"a":2}"#), 1);
        // Keys are compared per object, not across nesting levels.
        assert_eq!(dup(r#"{"a":{"a":1},"b":{"a":2}}"#), 0);
        // Short keys whose fingerprint is one load from the line, against the same key too near
        // the line's end for a load (fewer than eight bytes after its quote), and different keys
        // in the same positions.
        for len in 1..8 {
            let key = &"abcdefg"[..len];
            assert_eq!(dup(&format!(r#"{{"{key}":1,"{key}":2}}"#)), 1, "{key}");
            assert_eq!(dup(&format!(r#"{{"{key}":1,"{key}x":2}}"#)), 0, "{key}");
            assert_eq!(dup(&format!(r#"{{"{key}x":1,"{key}":2}}"#)), 0, "{key}");
        }
    }

    #[test]
    fn many_keys_switch_to_a_set() {
        let mut line = String::from("{");
        for i in 0..100 {
            line.push_str(&format!("\"k{i}\":1,"));
        }
        line.push_str("\"k5\":2}");
        let notes = check_document(line.as_bytes()).unwrap();
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn decodes_strings() {
        let mut s = Scanner::new(br#""a\n\u00e9\ud83c\udf89\"""#);
        let st = s.string().unwrap();
        assert_eq!(st.decode(), "a\né🎉\"");
        assert_eq!(st.char_len(), 5);
        let mut s = Scanner::new("\"Zoë\"".as_bytes());
        let st = s.string().unwrap();
        assert_eq!(st.char_len(), 3);
        assert!(st.is("Zoë"));
    }
}
