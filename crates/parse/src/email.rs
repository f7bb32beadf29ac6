//! Email address syntax: the practical subset of RFC 5321 that mail platforms accept.

use sailbulk_spec::{
    DOMAIN_LABEL_MAX_LEN, EMAIL_ATEXT_SPECIALS, EMAIL_LOCAL_MAX_LEN, EMAIL_MAX_LEN,
};
use std::fmt;

/// Why a string is not an acceptable email address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmailProblem {
    /// The string is empty.
    Empty,
    /// Longer than [`EMAIL_MAX_LEN`] octets.
    TooLong,
    /// No `@`.
    NoAt,
    /// More than one `@` (quoted local parts are not accepted).
    ManyAt,
    /// Nothing before the `@`.
    EmptyLocal,
    /// Local part longer than [`EMAIL_LOCAL_MAX_LEN`] octets.
    LocalTooLong,
    /// A character a dot-atom may not hold, at this byte offset.
    LocalChar(char),
    /// A dot at the start or end of the local part, or two in a row.
    LocalDots,
    /// Nothing after the `@`.
    EmptyDomain,
    /// The domain has a single label (no dot).
    SingleLabel,
    /// An empty label (leading, trailing or double dot).
    EmptyLabel,
    /// A label longer than [`DOMAIN_LABEL_MAX_LEN`] octets.
    LabelTooLong,
    /// A label character other than a letter, digit or hyphen.
    DomainChar(char),
    /// A label that starts or ends with a hyphen.
    LabelHyphen,
    /// The last label is all digits.
    NumericTld,
}

impl fmt::Display for EmailProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EmailProblem::Empty => f.write_str("it is empty"),
            EmailProblem::TooLong => write!(f, "it is longer than {EMAIL_MAX_LEN} octets"),
            EmailProblem::NoAt => f.write_str("it has no `@`"),
            EmailProblem::ManyAt => f.write_str("it has more than one `@`"),
            EmailProblem::EmptyLocal => f.write_str("nothing comes before the `@`"),
            EmailProblem::LocalTooLong => write!(
                f,
                "the part before the `@` is longer than {EMAIL_LOCAL_MAX_LEN} octets"
            ),
            EmailProblem::LocalChar(c) => {
                write!(
                    f,
                    "the part before the `@` holds {c:?}, which an address may not"
                )
            }
            EmailProblem::LocalDots => f.write_str(
                "the part before the `@` starts or ends with a dot, or has two dots in a row",
            ),
            EmailProblem::EmptyDomain => f.write_str("nothing comes after the `@`"),
            EmailProblem::SingleLabel => f.write_str("the domain has no dot"),
            EmailProblem::EmptyLabel => {
                f.write_str("the domain starts or ends with a dot, or has two dots in a row")
            }
            EmailProblem::LabelTooLong => write!(
                f,
                "a domain label is longer than {DOMAIN_LABEL_MAX_LEN} octets"
            ),
            EmailProblem::DomainChar(c) => write!(
                f,
                "the domain holds {c:?}; labels hold only letters, digits and hyphens"
            ),
            EmailProblem::LabelHyphen => f.write_str("a domain label starts or ends with a hyphen"),
            EmailProblem::NumericTld => f.write_str("the top-level domain is all digits"),
        }
    }
}

/// Bytes an unquoted local part may hold besides the dot: letters, digits and `atext` specials.
static ATEXT: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let specials = EMAIL_ATEXT_SPECIALS.as_bytes();
    let mut i = 0;
    while i < specials.len() {
        t[specials[i] as usize] = true;
        i += 1;
    }
    t
};

fn is_atext(b: u8) -> bool {
    ATEXT[b as usize]
}

fn first_char(s: &str, byte: usize) -> char {
    // `byte` always indexes the first byte of a character here, or an ASCII byte.
    s.get(byte..)
        .and_then(|t| t.chars().next())
        .unwrap_or('\u{FFFD}')
}

/// Checks an address; `None` means it is accepted.
///
/// The rules: exactly one `@`; a dot-atom local part (RFC 5322 `atext` and single inner dots) of at
/// most 64 octets; a domain of at least two labels, each 1 to 63 letters, digits or hyphens, not
/// starting or ending with a hyphen, the last not all digits; at most 254 octets in all. Quoted
/// local parts, comments, address literals and non-ASCII (SMTPUTF8) addresses are refused: bulk
/// platforms do not accept them.
///
/// ```
/// use sailbulk_parse::{email_problem, EmailProblem};
/// assert_eq!(email_problem("ian@sailthru.com"), None);
/// assert_eq!(email_problem("ian@localhost"), Some(EmailProblem::SingleLabel));
/// ```
pub fn email_problem(s: &str) -> Option<EmailProblem> {
    if is_plain_address(s.as_bytes()) {
        return None;
    }
    problem(s)
}

/// Whether `b` passes every rule of [`email_problem`], in one pass over the bytes. Most
/// addresses do; the ones that do not go through the rule-by-rule check, which names the first
/// problem. A test holds the two to the same verdict.
#[inline]
pub(crate) fn is_plain_address(b: &[u8]) -> bool {
    is_plain_address_in(b, 0, b.len())
}

/// [`is_plain_address`] for `text[start..end]`; the bytes after `end` are read but not used (so
/// that a short address is loaded in place, without a copy).
#[inline]
pub(crate) fn is_plain_address_in(text: &[u8], start: usize, end: usize) -> bool {
    let b = &text[start..end];
    #[cfg(target_arch = "x86_64")]
    if b.len() <= 64 && crate::simd::vector_runs() {
        let chunk = text.get(start..start + 64).and_then(|c| c.try_into().ok());
        let mut buf = [0u8; 64];
        let chunk = chunk.unwrap_or_else(|| {
            buf[..b.len()].copy_from_slice(b);
            &buf
        });
        if crate::simd::wide_vector_runs() {
            // SAFETY: the processor has the features `plain_address_avx512` is compiled for.
            return unsafe { plain_address_avx512(chunk, b.len()) };
        }
        // SAFETY: the processor has the features `plain_address_avx2` is compiled for.
        return unsafe { plain_address_avx2(chunk, b.len()) };
    }
    plain_address_scalar(b)
}

/// [`is_plain_address`] a byte at a time: for any length and processor, and the reference for
/// the vector one.
fn plain_address_scalar(b: &[u8]) -> bool {
    if b.len() > EMAIL_MAX_LEN {
        return false;
    }
    // The local part: atext and single inner dots, up to the `@`.
    let mut i = 0;
    let mut after_dot = true;
    loop {
        let Some(&c) = b.get(i) else {
            return false;
        };
        if CLASS[usize::from(c)] & C_ATEXT != 0 {
            after_dot = false;
        } else if c == b'.' && !after_dot {
            after_dot = true;
        } else if c == b'@' {
            break;
        } else {
            return false;
        }
        i += 1;
    }
    if after_dot || i > EMAIL_LOCAL_MAX_LEN {
        return false;
    }
    // The domain: labels of letters, digits and hyphens, no hyphen at either end.
    let mut start = i + 1;
    let mut labels = 0;
    let mut digits_only = true;
    let mut j = start;
    loop {
        let c = b.get(j).copied();
        let class = c.map_or(0, |c| CLASS[usize::from(c)]);
        if class & C_LABEL != 0 {
            digits_only &= class & C_DIGIT != 0;
        } else if c.is_none() || c == Some(b'.') {
            let len = j - start;
            if len == 0 || len > DOMAIN_LABEL_MAX_LEN || b[start] == b'-' || b[j - 1] == b'-' {
                return false;
            }
            labels += 1;
            if c.is_none() {
                break;
            }
            start = j + 1;
            digits_only = true;
        } else {
            return false;
        }
        j += 1;
    }
    labels >= 2 && !digits_only
}

/// The `atext` specials as two 16-byte tables for a nibble lookup: `HIGH[b >> 4] & LOW[b & 15]`
/// is non-zero exactly for the specials. Each high nibble that a special has gets a bit of its
/// own in `HIGH`; `LOW[l]` holds the bits of the high nibbles `h` for which `h l` is a special.
const SPECIAL_NIBBLES: ([u8; 16], [u8; 16]) = {
    let (mut high, mut low) = ([0u8; 16], [0u8; 16]);
    let specials = EMAIL_ATEXT_SPECIALS.as_bytes();
    let mut bits = 0;
    let mut i = 0;
    while i < specials.len() {
        let (h, l) = ((specials[i] >> 4) as usize, (specials[i] & 15) as usize);
        // The specials are ASCII (no high bit, which the lookup reads as zero), of at most eight
        // high nibbles.
        assert!(specials[i] < 0x80);
        if high[h] == 0 {
            assert!(bits < 8);
            high[h] = 1 << bits;
            bits += 1;
        }
        low[l] |= high[h];
        i += 1;
    }
    (high, low)
};

/// [`is_plain_address`] for addresses of at most 64 bytes (almost all): every byte classified at
/// once with AVX2, then the rules as bit arithmetic over the byte masks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,bmi1,lzcnt,popcnt,pclmulqdq")]
unsafe fn plain_address_avx2(chunk: &[u8; 64], len: usize) -> bool {
    use std::arch::x86_64::*;
    if len == 0 || len > 64 {
        return false;
    }
    // SAFETY: `chunk` is 64 readable bytes and the loads have no alignment requirement; the rest
    // are register operations; the caller has checked that the processor has AVX2.
    #[allow(unused_unsafe)]
    let m = unsafe {
        crate::simd::avx2_chunk!(chunk, splat, bits, within);
        let (high_table, low_table) = SPECIAL_NIBBLES;
        let table = |t: [u8; 16]| {
            let t = _mm_loadu_si128(t.as_ptr().cast());
            _mm256_broadcastsi128_si256(t)
        };
        let (high_table, low_table) = (table(high_table), table(low_table));
        let nibble = splat(0x0F);
        [
            bits(&|v| within(_mm256_or_si256(v, splat(0x20)), b'a', 25)),
            bits(&|v| within(v, b'0', 9)),
            bits(&|v| {
                let h = _mm256_shuffle_epi8(
                    high_table,
                    _mm256_and_si256(_mm256_srli_epi16::<4>(v), nibble),
                );
                // Bytes with the high bit set look up zero in `low` (pshufb's rule).
                let l = _mm256_shuffle_epi8(low_table, v);
                let both = _mm256_and_si256(h, l);
                _mm256_xor_si256(_mm256_cmpeq_epi8(both, _mm256_setzero_si256()), splat(0xFF))
            }),
            bits(&|v| _mm256_cmpeq_epi8(v, splat(b'@'))),
            bits(&|v| _mm256_cmpeq_epi8(v, splat(b'.'))),
            bits(&|v| _mm256_cmpeq_epi8(v, splat(b'-'))),
        ]
        .map(crate::simd::opaque)
    };
    address_rules(m, len)
}

/// [`plain_address_avx2`] with AVX-512: the whole chunk in one register, each class compared
/// straight into its mask.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2,bmi1,lzcnt,popcnt,pclmulqdq")]
unsafe fn plain_address_avx512(chunk: &[u8; 64], len: usize) -> bool {
    use std::arch::x86_64::*;
    if len == 0 || len > 64 {
        return false;
    }
    // SAFETY: `chunk` is 64 readable bytes and the loads have no alignment requirement; the rest
    // are register operations; the caller has checked that the processor has AVX-512F and
    // AVX-512BW.
    #[allow(unused_unsafe)]
    let m = unsafe {
        let v = _mm512_loadu_si512(chunk.as_ptr().cast());
        let splat = |c: u8| _mm512_set1_epi8(c as i8);
        let (high_table, low_table) = SPECIAL_NIBBLES;
        let table = |t: [u8; 16]| _mm512_broadcast_i32x4(_mm_loadu_si128(t.as_ptr().cast()));
        // Bytes with the high bit set look up zero in `low` (pshufb's rule).
        let specials = _mm512_and_si512(
            _mm512_shuffle_epi8(
                table(high_table),
                _mm512_and_si512(_mm512_srli_epi16::<4>(v), splat(0x0F)),
            ),
            _mm512_shuffle_epi8(table(low_table), v),
        );
        let within = |x: __m512i, low: u8, span: u8| {
            _mm512_cmple_epu8_mask(_mm512_sub_epi8(x, splat(low)), splat(span))
        };
        [
            within(_mm512_or_si512(v, splat(0x20)), b'a', 25),
            within(v, b'0', 9),
            _mm512_test_epi8_mask(specials, specials),
            _mm512_cmpeq_epi8_mask(v, splat(b'@')),
            _mm512_cmpeq_epi8_mask(v, splat(b'.')),
            _mm512_cmpeq_epi8_mask(v, splat(b'-')),
        ]
    };
    address_rules(m, len)
}

/// The rules of [`is_plain_address`] as bit arithmetic over the masks of an address of `len`
/// bytes (1 to 64; bit `i` for byte `i`): its letters, digits, `atext` specials, `@`s, dots and
/// hyphens, in that order.
#[inline(always)]
fn address_rules(m: [u64; 6], len: usize) -> bool {
    let [letter, digit, special, at, dot, hyphen] = m;
    let all = u64::MAX >> (64 - len);
    // Exactly one `@`, with a local part before it and a domain after it.
    let at = at & all;
    if at.count_ones() != 1 {
        return false;
    }
    let p = at.trailing_zeros() as usize;
    if p == 0 || p > EMAIL_LOCAL_MAX_LEN || p + 1 >= len {
        return false;
    }
    // The local part: atext and dots, no dot first, last or next to another.
    let local = u64::MAX >> (64 - p);
    let atext = letter | digit | special;
    if (atext | dot) & local != local
        || dot & 1 != 0
        || dot & (1 << (p - 1)) != 0
        || dot & (dot >> 1) & local != 0
    {
        return false;
    }
    // The domain: labels of letters, digits and hyphens between single dots, at least two, no
    // hyphen at either end of one, the last not all digits. (Labels are short enough here.)
    let domain = all & !(u64::MAX >> (63 - p));
    let (first, last) = (1u64 << (p + 1), 1u64 << (len - 1));
    let label = letter | digit | hyphen;
    let dots = dot & domain;
    let hyphens = hyphen & domain;
    if (label | dot) & domain != domain
        || dots == 0
        || dots & (first | last) != 0
        || dots & (dots >> 1) != 0
        || hyphens & (dots << 1 | first) != 0
        || hyphens & (dots >> 1 | last) != 0
    {
        return false;
    }
    let last_dot = 63 - dots.leading_zeros();
    let tld = domain & !(u64::MAX >> (63 - last_dot));
    label & !digit & tld != 0
}

/// Byte classes for [`is_plain_address`]: atext, a domain label's letters, digits and hyphen,
/// and digits.
const C_ATEXT: u8 = 1;
const C_LABEL: u8 = 2;
const C_DIGIT: u8 = 4;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if ATEXT[i] {
            t[i] |= C_ATEXT;
        }
        if c.is_ascii_alphanumeric() || c == b'-' {
            t[i] |= C_LABEL;
        }
        if c.is_ascii_digit() {
            t[i] |= C_DIGIT;
        }
        i += 1;
    }
    t
};

/// The rules one by one, in the order that decides which problem is named.
fn problem(s: &str) -> Option<EmailProblem> {
    if s.is_empty() {
        return Some(EmailProblem::Empty);
    }
    let at = match memchr::memchr(b'@', s.as_bytes()) {
        None => return Some(EmailProblem::NoAt),
        Some(at) => at,
    };
    let (local, domain) = (&s[..at], &s[at + 1..]);
    if domain.contains('@') {
        return Some(EmailProblem::ManyAt);
    }
    if s.len() > EMAIL_MAX_LEN {
        return Some(EmailProblem::TooLong);
    }
    if local.is_empty() {
        return Some(EmailProblem::EmptyLocal);
    }
    if local.len() > EMAIL_LOCAL_MAX_LEN {
        return Some(EmailProblem::LocalTooLong);
    }
    let lb = local.as_bytes();
    for (i, &b) in lb.iter().enumerate() {
        if b == b'.' {
            if i == 0 || i + 1 == lb.len() || lb[i - 1] == b'.' {
                return Some(EmailProblem::LocalDots);
            }
        } else if !is_atext(b) {
            return Some(EmailProblem::LocalChar(first_char(local, i)));
        }
    }
    if domain.is_empty() {
        return Some(EmailProblem::EmptyDomain);
    }
    let mut labels = 0;
    let mut last = "";
    for label in domain.split('.') {
        if label.is_empty() {
            return Some(EmailProblem::EmptyLabel);
        }
        if let Some(i) = label
            .bytes()
            .position(|b| !(b.is_ascii_alphanumeric() || b == b'-'))
        {
            return Some(EmailProblem::DomainChar(first_char(label, i)));
        }
        if label.len() > DOMAIN_LABEL_MAX_LEN {
            return Some(EmailProblem::LabelTooLong);
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(EmailProblem::LabelHyphen);
        }
        labels += 1;
        last = label;
    }
    if labels < 2 {
        return Some(EmailProblem::SingleLabel);
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Some(EmailProblem::NumericTld);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use EmailProblem::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in [
            "a@b.co",
            "ian@sailthru.com",
            "first.last+tag@mail.example.co.uk",
            "x_y-z@a-b.example",
            "o'brien@example.ie",
            "!#$%&'*+-/=?^_`{|}~@example.com",
            "1@2.x3",
            "user@xn--bcher-kva.example",
        ] {
            assert_eq!(email_problem(ok), None, "{ok}");
        }
    }

    #[test]
    fn rejects_structure() {
        assert_eq!(email_problem(""), Some(Empty));
        assert_eq!(email_problem("no-at.example.com"), Some(NoAt));
        assert_eq!(email_problem("a@b@c.com"), Some(ManyAt));
        assert_eq!(email_problem("@example.com"), Some(EmptyLocal));
        assert_eq!(email_problem("a@"), Some(EmptyDomain));
        assert_eq!(email_problem("a@localhost"), Some(SingleLabel));
        assert_eq!(email_problem("a@.example.com"), Some(EmptyLabel));
        assert_eq!(email_problem("a@example.com."), Some(EmptyLabel));
        assert_eq!(email_problem("a@example..com"), Some(EmptyLabel));
        assert_eq!(email_problem("a@-example.com"), Some(LabelHyphen));
        assert_eq!(email_problem("a@example-.com"), Some(LabelHyphen));
        assert_eq!(email_problem("a@1.2.3.4"), Some(NumericTld));
        assert_eq!(email_problem("a@[1.2.3.4]"), Some(DomainChar('[')));
        assert_eq!(email_problem("a@exa mple.com"), Some(DomainChar(' ')));
        assert_eq!(email_problem("a@exämple.com"), Some(DomainChar('ä')));
    }

    #[test]
    fn rejects_bad_local_parts() {
        assert_eq!(email_problem(".a@example.com"), Some(LocalDots));
        assert_eq!(email_problem("a.@example.com"), Some(LocalDots));
        assert_eq!(email_problem("a..b@example.com"), Some(LocalDots));
        assert_eq!(email_problem("a b@example.com"), Some(LocalChar(' ')));
        assert_eq!(email_problem("\"a\"@example.com"), Some(LocalChar('"')));
        assert_eq!(email_problem("zoë@example.com"), Some(LocalChar('ë')));
        assert_eq!(email_problem("a,b@example.com"), Some(LocalChar(',')));
    }

    #[test]
    fn length_boundaries() {
        let local64 = "a".repeat(64);
        assert_eq!(email_problem(&format!("{local64}@example.com")), None);
        assert_eq!(
            email_problem(&format!("{local64}a@example.com")),
            Some(LocalTooLong)
        );
        let label63 = "b".repeat(63);
        assert_eq!(email_problem(&format!("a@{label63}.com")), None);
        assert_eq!(
            email_problem(&format!("a@{label63}b.com")),
            Some(LabelTooLong)
        );
        // 254 octets in all is accepted, 255 is not.
        let domain = format!(
            "{l}.{l}.{l}.{m}.com",
            l = "c".repeat(63),
            m = "d".repeat(44)
        );
        let at254 = format!("{}@{domain}", "e".repeat(254 - 1 - domain.len()));
        assert_eq!(at254.len(), 254);
        assert_eq!(email_problem(&at254), None);
        let at255 = format!("f{at254}");
        assert_eq!(email_problem(&at255), Some(TooLong));
    }

    proptest::proptest! {
        #[test]
        fn the_one_pass_check_agrees_with_the_rules(
            s in "[a-z0-9.@\\-_+ \"\\[\\]é]{0,12}(@[a-z0-9.\\-]{0,70})?(\\.[a-z0-9\\-]{0,5})?"
        ) {
            proptest::prop_assert_eq!(is_plain_address(s.as_bytes()), problem(&s).is_none(), "{:?}", s);
        }
    }

    #[test]
    fn the_one_pass_check_agrees_at_the_boundaries() {
        let label63 = "b".repeat(63);
        let local64 = "a".repeat(64);
        for s in [
            "",
            "@",
            "a@",
            "@b.c",
            "a@b",
            "a@b.",
            "a@.b",
            "a@b..c",
            ".a@b.c",
            "a.@b.c",
            "a..b@c.d",
            "a@b.c",
            "a@b.1",
            "a@b.1a",
            "a@1.2",
            "a@-b.c",
            "a@b-.c",
            "a@b.-c",
            "a@b.c-",
            "a@b@c.d",
            "a-b@c-d.e-f",
            "a@b.c.d.e",
            &format!("a@{label63}.com"),
            &format!("a@{label63}b.com"),
            &format!("{local64}@b.cd"),
            &format!("{local64}x@b.cd"),
            &format!("a@{}.com", "c.".repeat(124)),
            &format!("a@{}.com", "c.".repeat(125)),
        ] {
            assert_eq!(
                is_plain_address(s.as_bytes()),
                problem(s).is_none(),
                "{s:?}"
            );
        }
    }

    /// The vector check against the scalar one and the rules, for `s` and for `s` with each byte
    /// in turn replaced by every byte value.
    #[cfg(target_arch = "x86_64")]
    fn vector_agrees_with_every_byte_in_every_place(s: &str) {
        if !crate::simd::vector_runs() {
            return;
        }
        let mut bytes = s.as_bytes().to_vec();
        for at in 0..bytes.len() {
            let keep = bytes[at];
            for byte in 0..=255u8 {
                bytes[at] = byte;
                let vector = is_plain_address(&bytes);
                let mut chunk = [0u8; 64];
                chunk[..bytes.len()].copy_from_slice(&bytes);
                // SAFETY: AVX2 was detected above.
                let avx2 = unsafe { plain_address_avx2(&chunk, bytes.len()) };
                assert_eq!(vector, avx2, "avx2: {:?}", String::from_utf8_lossy(&bytes));
                // In place, with bytes after the address that must not count.
                let mut padded = bytes.clone();
                padded.extend_from_slice(&[b'@'; 64]);
                assert_eq!(vector, is_plain_address_in(&padded, 0, bytes.len()));
                let scalar = plain_address_scalar(&bytes);
                assert_eq!(vector, scalar, "{:?}", String::from_utf8_lossy(&bytes));
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    assert_eq!(scalar, problem(text).is_none(), "{text:?}");
                }
            }
            bytes[at] = keep;
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_vector_check_agrees_byte_by_byte() {
        let local = "a".repeat(56);
        for s in [
            "a@b.co",
            "a.b-c+d_e!#$%&'*/=?^`{|}~@x-y.example.com",
            "first.last@sub-domain.example.co.uk",
            "x@1.2.a3",
            &format!("{local}@bb.com"),
            &format!("{local}@b.cde"),
            &"a@b.c".repeat(13)[..64],
        ] {
            assert!(s.len() <= 64);
            vector_agrees_with_every_byte_in_every_place(s);
        }
    }

    proptest::proptest! {
        #[test]
        #[cfg(target_arch = "x86_64")]
        fn the_vector_check_agrees_with_the_scalar_one(
            s in "[a-c0-9.@\\-_+!#~`{}|/=?^$%&'* é\x00\x7f]{0,40}(@[a-c0-9.\\-]{0,30})?"
        ) {
            if crate::simd::vector_runs() && s.len() <= 64 {
                let vector = is_plain_address(s.as_bytes());
                proptest::prop_assert_eq!(vector, plain_address_scalar(s.as_bytes()), "{:?}", s);
                let padded = format!("{s}.-@{s}");
                let vector = is_plain_address_in(padded.as_bytes(), 0, s.len());
                proptest::prop_assert_eq!(vector, plain_address_scalar(s.as_bytes()), "{:?}", s);
            }
        }
    }

    #[test]
    fn messages_read_as_sentences() {
        assert_eq!(NoAt.to_string(), "it has no `@`");
        assert!(LocalChar(' ').to_string().contains("' '"));
    }
}
