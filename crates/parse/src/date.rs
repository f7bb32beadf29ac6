//! Validation of the `signup_date` field.
//!
//! The Sailthru platform hands `signup_date` to PHP's `strtotime`, which reads
//! almost anything (including relative phrases such as `"tomorrow"`). We accept
//! a documented, predictable subset instead, and validate every date against
//! the proleptic Gregorian calendar.
//!
//! The parser works on bytes, so arbitrary (including non-ASCII) input is safe:
//! any non-ASCII byte simply fails to match.

/// The date formats `signup_date` accepts.
///
/// Every format is matched against the whole string: surrounding whitespace is
/// rejected, and all dates are checked against the calendar (month 1-12, a day
/// that exists in that month, leap years by the Gregorian rule, years
/// 0001-9999). Times are checked too: hour 0-23, minute 0-59, second 0-60 (a
/// leap second is allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateFormat {
    /// `YYYY-MM-DD`, zero-padded, e.g. `2013-01-18`.
    IsoDate,
    /// `YYYY-MM-DDTHH:MM[:SS[.fff]][zone]`, e.g. `2013-01-18T10:00:00Z`.
    ///
    /// The separator is `T`, `t` or a single space; the fraction (any number
    /// of digits) is only allowed after seconds; the optional zone is `Z`,
    /// `z`, `±HH:MM` or `±HHMM`.
    IsoDateTime,
    /// RFC 2822, e.g. `Fri, 18 Jan 2013 10:00:00 -0500`.
    ///
    /// `[Day, ]D[D] Mon YYYY HH:MM[:SS] ZONE`, where the optional day of week
    /// (`Mon`..`Sun`) must be the real weekday of the date, the month is a
    /// three-letter abbreviation, and the zone is `±hhmm` or one of `UT`,
    /// `GMT`, `EST`, `EDT`, `CST`, `CDT`, `MST`, `MDT`, `PST`, `PDT`, `Z`.
    /// Names are case-insensitive; tokens may be separated by runs of spaces
    /// or tabs.
    Rfc2822,
    /// `Jan 18, 2013` or `January 18 2013`: month abbreviation or full
    /// English name (case-insensitive), 1-2 digit day, optional comma,
    /// 4-digit year.
    MonthDayYear,
    /// `18 Jan 2013` or `18 January 2013`: 1-2 digit day, month abbreviation
    /// or full English name (case-insensitive), 4-digit year, no time.
    DayMonthYear,
    /// Seconds since the Unix epoch as a string: an optional `@`, an optional
    /// `-`, then 1 to 12 ASCII digits, within the range of
    /// [`is_valid_unix_timestamp`].
    UnixTimestamp,
}

/// Human-readable list of accepted formats, for error messages.
pub const ACCEPTED_FORMATS: &str = "YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.fff]][Z|±HH:MM], \
RFC 2822 (Fri, 18 Jan 2013 10:00:00 -0500), Jan 18, 2013, 18 Jan 2013, or a Unix timestamp";

/// Smallest accepted timestamp: 0001-01-01T00:00:00Z.
const MIN_UNIX: i64 = -62_135_596_800;
/// Largest accepted timestamp: 9999-12-31T23:59:59Z.
const MAX_UNIX: i64 = 253_402_300_799;

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Weekday abbreviations, indexed so that 0 is Sunday.
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

const RFC_ZONES: [&str; 11] = [
    "ut", "gmt", "est", "edt", "cst", "cdt", "mst", "mdt", "pst", "pdt", "z",
];

/// Parses a `signup_date` string; returns which format matched, or `None` if
/// the string is not in one of the accepted formats (see [`DateFormat`]).
pub fn parse_signup_date(s: &str) -> Option<DateFormat> {
    let b = s.as_bytes();
    if let Some(format) = common_iso(b) {
        return Some(format);
    }
    if unix_timestamp(b) {
        return Some(DateFormat::UnixTimestamp);
    }
    general(b)
}

/// The general parsers, for every format but the Unix timestamp, in the order they are tried.
fn general(b: &[u8]) -> Option<DateFormat> {
    let parsers: [fn(&mut Cursor<'_>) -> Option<DateFormat>; 4] =
        [iso, rfc2822, day_month_year, month_day_year];
    parsers
        .iter()
        .find_map(|parse| parse(&mut Cursor { b, i: 0 }))
}

/// The largest hour, minute and second a time may give (a leap second is allowed); the hour and
/// minute bounds hold for a zone's offset too.
const MAX_HOUR: u32 = 23;
const MAX_MINUTE: u32 = 59;
const MAX_SECOND: u32 = 60;

/// The two shapes that most files use, `YYYY-MM-DD` and `YYYY-MM-DDTHH:MM:SSZ`, recognised
/// without the general parsers' cursor (a file of a million records spends its date checks here).
/// `Some` only for a string that [`iso`] accepts with the same answer; anything else, an invalid
/// date of those shapes included, is left to the general parsers, which have the last word.
#[inline]
fn common_iso(b: &[u8]) -> Option<DateFormat> {
    // The value of the two digits at `i` and `i + 1`, or `None` if either is not a digit.
    let two = |i: usize| {
        let (t, u) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
        (t < 10 && u < 10).then(|| u32::from(t) * 10 + u32::from(u))
    };
    let format = match b.len() {
        10 => DateFormat::IsoDate,
        20 => DateFormat::IsoDateTime,
        _ => return None,
    };
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (two(0)? * 100 + two(2)?, two(5)?, two(8)?);
    if !valid_date(y, m, d) {
        return None;
    }
    if format == DateFormat::IsoDateTime {
        let separators = matches!(b[10], b'T' | b't' | b' ') && b[13] == b':' && b[16] == b':';
        if !separators
            || !matches!(b[19], b'Z' | b'z')
            || two(11)? > MAX_HOUR
            || two(14)? > MAX_MINUTE
            || two(17)? > MAX_SECOND
        {
            return None;
        }
    }
    Some(format)
}

/// A Unix timestamp given as a JSON integer: accepted when it falls within
/// years 1..=9999 (i.e. `-62135596800 ..= 253402300799`).
pub fn is_valid_unix_timestamp(secs: i64) -> bool {
    (MIN_UNIX..=MAX_UNIX).contains(&secs)
}

/// A forward-only cursor over the input bytes.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn done(&self) -> bool {
        self.i == self.b.len()
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.eat_any(&[c]).is_some()
    }

    /// Consumes the next byte if it is one of `set`.
    fn eat_any(&mut self, set: &[u8]) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        set.contains(&c).then(|| {
            self.i += 1;
            c
        })
    }

    /// Consumes a run of ASCII bytes matching `pred`, returning it.
    fn run(&mut self, pred: fn(&u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.b.get(self.i).is_some_and(pred) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    /// Consumes one or more spaces or tabs.
    fn ws(&mut self) -> Option<()> {
        (!self.run(|c| *c == b' ' || *c == b'\t').is_empty()).then_some(())
    }

    /// Consumes a run of ASCII letters.
    fn word(&mut self) -> &'a [u8] {
        self.run(u8::is_ascii_alphabetic)
    }

    /// Consumes between `min` and `max` (at most 9) digits, greedily.
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        let mut v = 0;
        while self.i - start < max {
            match self.b.get(self.i) {
                Some(c) if c.is_ascii_digit() => v = v * 10 + u32::from(c - b'0'),
                _ => break,
            }
            self.i += 1;
        }
        (self.i - start >= min).then_some(v)
    }

    /// Consumes a number of exactly `n` digits that is at most `max`.
    fn fixed(&mut self, n: usize, max: u32) -> Option<u32> {
        self.num(n, n).filter(|&v| v <= max)
    }
}

/// `YYYY-MM-DD`, optionally followed by a time and zone.
fn iso(c: &mut Cursor<'_>) -> Option<DateFormat> {
    let y = c.num(4, 4)?;
    c.eat(b'-').then_some(())?;
    let m = c.num(2, 2)?;
    c.eat(b'-').then_some(())?;
    let d = c.num(2, 2)?;
    valid_date(y, m, d).then_some(())?;
    if c.done() {
        return Some(DateFormat::IsoDate);
    }
    c.eat_any(b"Tt ")?;
    time(c)?;
    if c.eat(b':') {
        c.fixed(2, MAX_SECOND)?;
        if c.eat(b'.') && c.run(u8::is_ascii_digit).is_empty() {
            return None;
        }
    }
    if c.eat_any(b"Zz").is_none() && c.eat_any(b"+-").is_some() {
        c.fixed(2, MAX_HOUR)?;
        c.eat(b':');
        c.fixed(2, MAX_MINUTE)?;
    }
    c.done().then_some(DateFormat::IsoDateTime)
}

/// `HH:MM` (seconds are handled by the caller).
fn time(c: &mut Cursor<'_>) -> Option<()> {
    c.fixed(2, MAX_HOUR)?;
    c.eat(b':').then_some(())?;
    c.fixed(2, MAX_MINUTE).map(drop)
}

/// `[Day, ]D[D] Mon YYYY HH:MM[:SS] ZONE`.
fn rfc2822(c: &mut Cursor<'_>) -> Option<DateFormat> {
    let day_name = c.word();
    let weekday = if day_name.is_empty() {
        None
    } else {
        let w = WEEKDAYS
            .iter()
            .position(|n| day_name.eq_ignore_ascii_case(n.as_bytes()))?;
        c.eat(b',').then_some(())?;
        let _ = c.ws(); // whitespace after the comma is optional
        Some(w)
    };
    let d = c.num(1, 2)?;
    c.ws()?;
    let m = month(c.word(), false)?;
    c.ws()?;
    let y = c.num(4, 4)?;
    valid_date(y, m, d).then_some(())?;
    if weekday.is_some_and(|w| w != weekday_of(y, m, d)) {
        return None;
    }
    c.ws()?;
    time(c)?;
    if c.eat(b':') {
        c.fixed(2, MAX_SECOND)?;
    }
    c.ws()?;
    if c.eat_any(b"+-").is_some() {
        let z = c.num(4, 4)?;
        (z / 100 <= MAX_HOUR && z % 100 <= MAX_MINUTE).then_some(())?;
    } else {
        let zone = c.word();
        RFC_ZONES
            .iter()
            .any(|z| zone.eq_ignore_ascii_case(z.as_bytes()))
            .then_some(())?;
    }
    c.done().then_some(DateFormat::Rfc2822)
}

/// `D[D] Month YYYY`.
fn day_month_year(c: &mut Cursor<'_>) -> Option<DateFormat> {
    let d = c.num(1, 2)?;
    c.ws()?;
    let m = month(c.word(), true)?;
    c.ws()?;
    let y = c.num(4, 4)?;
    (c.done() && valid_date(y, m, d)).then_some(DateFormat::DayMonthYear)
}

/// `Month D[D][,] YYYY`.
fn month_day_year(c: &mut Cursor<'_>) -> Option<DateFormat> {
    let m = month(c.word(), true)?;
    c.ws()?;
    let d = c.num(1, 2)?;
    c.eat(b',');
    c.ws()?;
    let y = c.num(4, 4)?;
    (c.done() && valid_date(y, m, d)).then_some(DateFormat::MonthDayYear)
}

/// Month number (1-12) of a three-letter abbreviation, or of a full English
/// name when `full` is allowed; case-insensitive.
fn month(word: &[u8], full: bool) -> Option<u32> {
    let i = MONTHS.iter().position(|name| {
        let name = name.as_bytes();
        word.eq_ignore_ascii_case(&name[..3]) || (full && word.eq_ignore_ascii_case(name))
    })?;
    u32::try_from(i + 1).ok()
}

/// `[@][-]D{1,12}` within the accepted timestamp range.
fn unix_timestamp(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"@").unwrap_or(b);
    let (neg, digits) = match b.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let v = digits
        .iter()
        .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    is_valid_unix_timestamp(if neg { -v } else { v })
}

fn is_leap(y: u32) -> bool {
    y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400))
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn valid_date(y: u32, m: u32, d: u32) -> bool {
    (1..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

/// Day of week of a valid date, 0 = Sunday (proleptic Gregorian calendar).
fn weekday_of(y: u32, m: u32, d: u32) -> usize {
    // Days since 1970-01-01 (a Thursday), after Howard Hinnant's
    // `days_from_civil`; the date is already validated, so all values are
    // small and non-negative until the final subtraction.
    let y = i64::from(y) - i64::from(m <= 2);
    let (m, d) = (i64::from(m), i64::from(d));
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    // rem_euclid(7) is in 0..7, so the cast is lossless.
    (days + 4).rem_euclid(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use DateFormat::*;

    fn p(s: &str) -> Option<DateFormat> {
        parse_signup_date(s)
    }

    fn accepts(f: DateFormat, inputs: &[&str]) {
        for s in inputs {
            assert_eq!(p(s), Some(f), "expected {s:?} to parse as {f:?}");
        }
    }

    fn rejects(inputs: &[&str]) {
        for s in inputs {
            assert_eq!(p(s), None, "expected {s:?} to be rejected");
        }
    }

    /// The shortcut for the common shapes answers as the general parsers do, on both sides of
    /// every boundary it checks.
    #[test]
    fn the_common_shapes_shortcut_agrees_with_the_general_parsers() {
        let general = |s: &str| super::general(s.as_bytes());
        let mut tried = 0;
        let mut taken = 0;
        for y in [
            "0000", "0001", "1999", "2000", "2100", "2024", "9999", "2O24", "-024",
        ] {
            for m in ["00", "01", "02", "09", "12", "13", "1-", "+1"] {
                for d in ["00", "01", "28", "29", "30", "31", "32", "3a"] {
                    for (sep1, sep2) in [("-", "-"), ("/", "-"), ("-", "/")] {
                        let date = format!("{y}{sep1}{m}{sep2}{d}");
                        let mut cases = vec![date.clone()];
                        for t in ["T", "t", " ", "_"] {
                            for (h, mi, s) in [
                                ("00", "00", "00"),
                                ("23", "59", "60"),
                                ("24", "00", "00"),
                                ("12", "60", "00"),
                                ("12", "30", "61"),
                                ("1:", "00", "00"),
                            ] {
                                for z in ["Z", "z", "X", "0"] {
                                    cases.push(format!("{date}{t}{h}:{mi}:{s}{z}"));
                                }
                            }
                            cases.push(format!("{date}{t}12-30:00Z"));
                            cases.push(format!("{date}{t}12:30-00Z"));
                        }
                        for case in cases {
                            tried += 1;
                            let fast = common_iso(case.as_bytes());
                            taken += usize::from(fast.is_some());
                            if let Some(format) = fast {
                                assert_eq!(Some(format), general(&case), "{case:?}");
                            }
                            assert_eq!(p(&case), general(&case), "{case:?}");
                        }
                    }
                }
            }
        }
        // The shortcut took a good share of the cases, and left the rest alone.
        assert!(taken > 1000 && taken < tried / 2, "{taken} of {tried}");
    }

    #[test]
    fn iso_date() {
        accepts(
            IsoDate,
            &[
                "2013-01-18",
                "0001-01-01",
                "9999-12-31",
                "2013-12-31",
                "2013-04-30",
            ],
        );
        rejects(&[
            "0000-01-01",
            "2013-1-8",
            "2013-01-8",
            "2013-1-18",
            "13-01-18",
            "20130-01-18",
            "2013-01-180",
            "2013-13-01",
            "2013-00-10",
            "2013-01-00",
            "2013-01-32",
            "2013-04-31",
            "2013-02-30",
            "2013/01/18",
            "2013-01-18T",
            "2013-01-18 ",
        ]);
    }

    #[test]
    fn leap_years() {
        accepts(
            IsoDate,
            &["2000-02-29", "2012-02-29", "2400-02-29", "0004-02-29"],
        );
        rejects(&[
            "1900-02-29",
            "2013-02-29",
            "2100-02-29",
            "2012-02-30",
            "2000-02-30",
        ]);
        accepts(DayMonthYear, &["29 Feb 2012"]);
        rejects(&["29 Feb 2013", "Feb 29, 1900"]);
        accepts(MonthDayYear, &["Feb 29, 2000"]);
    }

    #[test]
    fn iso_date_time() {
        accepts(
            IsoDateTime,
            &[
                "2013-01-18T10:00",
                "2013-01-18T10:00:00",
                "2013-01-18t10:00:00",
                "2013-01-18 10:00:00",
                "2013-01-18T10:00:00.5",
                "2013-01-18T10:00:00.123456789012",
                "2013-01-18T10:00:00Z",
                "2013-01-18T10:00z",
                "2013-01-18T10:00:00+05:30",
                "2013-01-18T10:00:00-0500",
                "2013-01-18T10:00-23:59",
                "2013-01-18T00:00:00.000Z",
                "2013-01-18T23:59:59",
                "2013-12-31T23:59:60Z",
            ],
        );
        rejects(&[
            "2013-01-18T24:00",
            "2013-01-18T10:60",
            "2013-01-18T10:00:61",
            "2013-01-18T1:00",
            "2013-01-18T10",
            "2013-01-18T10:",
            "2013-01-18T10:0",
            "2013-01-18T10:00.5",
            "2013-01-18T10:00:00.",
            "2013-01-18T10:00:00.5.5",
            "2013-01-18  10:00",
            "2013-01-18X10:00",
            "2013-01-18T10:00:00+24:00",
            "2013-01-18T10:00:00+05:60",
            "2013-01-18T10:00:00+5:00",
            "2013-01-18T10:00:00+05",
            "2013-01-18T10:00:00+05:0",
            "2013-01-18T10:00:00ZZ",
            "2013-01-18T10:00:00 Z",
            "2013-01-18T10:00:00GMT",
            "2013-02-30T10:00:00",
        ]);
    }

    #[test]
    fn rfc2822() {
        accepts(
            Rfc2822,
            &[
                "Fri, 18 Jan 2013 10:00:00 -0500",
                "18 Jan 2013 10:00:00 -0500",
                "Fri, 18 Jan 2013 10:00 +0000",
                "fri, 18 jan 2013 10:00:00 GMT",
                "FRI, 18 JAN 2013 10:00:00 gmt",
                "Fri,18 Jan 2013 10:00:00 UT",
                "Fri,  18\tJan  2013 \t10:00:00   Z",
                "Tue, 1 Jan 2013 00:00:00 EST",
                "Tue, 01 Jan 2013 23:59:60 PDT",
                "Sat, 1 Jan 2000 00:00:00 +2359",
                "Wed, 29 Feb 2012 12:00:00 CST",
                "Thu, 01 Jan 1970 00:00:00 +0000",
                "Mon, 01 Jan 0001 00:00:00 +0000",
                "Fri, 31 Dec 9999 23:59:59 -0000",
            ],
        );
        for zone in [
            "UT", "GMT", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "Z",
        ] {
            accepts(Rfc2822, &[&format!("18 Jan 2013 10:00 {zone}")]);
        }
        rejects(&[
            "Thu, 18 Jan 2013 10:00:00 -0500", // wrong weekday
            "Sat, 18 Jan 2013 10:00:00 -0500",
            "Friday, 18 Jan 2013 10:00:00 -0500",
            "Fri 18 Jan 2013 10:00:00 -0500",
            "Fri , 18 Jan 2013 10:00:00 -0500",
            "Fri, 18 January 2013 10:00:00 -0500",
            "Fri, 18 Jan 2013",
            "Fri, 18 Jan 2013 10:00:00",
            "Fri, 18 Jan 2013 24:00:00 -0500",
            "Fri, 18 Jan 2013 10:60:00 -0500",
            "Fri, 18 Jan 2013 10:00:61 -0500",
            "Fri, 18 Jan 2013 10:00:00 -2400",
            "Fri, 18 Jan 2013 10:00:00 -0560",
            "Fri, 18 Jan 2013 10:00:00 -050",
            "Fri, 18 Jan 2013 10:00:00 -05:00",
            "Fri, 18 Jan 2013 10:00:00 CET",
            "Fri, 18 Jan 2013 10:00:00 A",
            "Fri, 18 Jan 2013 10:00:00 -0500 ",
            "Fri, 18 Jan 2013 10:00:00.5 -0500",
            "Fri, 18 Jan 2013 10:00:00-0500",
            "Fri, 32 Jan 2013 10:00:00 -0500",
            "Fri, 18 Jan 13 10:00:00 -0500",
            "Fri, 18 Jan 2013 1:00:00 -0500",
            "Sat, 30 Feb 2013 10:00:00 -0500",
            "Fri, 29 Feb 2013 10:00:00 GMT",
        ]);
    }

    #[test]
    fn month_day_year() {
        accepts(
            MonthDayYear,
            &[
                "Jan 18, 2013",
                "Jan 18 2013",
                "jan 1, 2013",
                "JANUARY 18, 2013",
                "September 30, 2013",
                "Sep 30 2013",
                "May 5, 2013",
                "Dec 31, 9999",
                "Jan\t18,  2013",
            ],
        );
        rejects(&[
            "Jan 32, 2013",
            "Jan 0, 2013",
            "Sept 30, 2013",
            "Janu 18, 2013",
            "Jan 18,2013",
            "Jan 18 , 2013",
            "Jan 18, 13",
            "Jan 18, 20130",
            "Jan 118, 2013",
            "Apr 31, 2013",
            "Jan18, 2013",
            "Jan 18, 2013 10:00",
            "Jan. 18, 2013",
            "Fri, Jan 18, 2013",
        ]);
    }

    #[test]
    fn day_month_year() {
        accepts(
            DayMonthYear,
            &[
                "18 Jan 2013",
                "1 jan 2013",
                "01 Jan 2013",
                "18 January 2013",
                "30 SEPTEMBER 2013",
            ],
        );
        rejects(&[
            "32 Jan 2013",
            "0 Jan 2013",
            "18 Jan, 2013",
            "18 Jan 13",
            "118 Jan 2013",
            "18-Jan-2013",
            "18 Foo 2013",
            "18 Jan 2013 10:00", // with a time it must be RFC 2822, which needs a zone
            "31 Jun 2013",
        ]);
    }

    #[test]
    fn unix_timestamp_strings() {
        accepts(
            UnixTimestamp,
            &[
                "0",
                "-0",
                "1358467200",
                "@1358467200",
                "@-1",
                "-62135596800",
                "253402300799",
                "000000000001",
                "2013",
                "20130118",
            ],
        );
        rejects(&[
            "-62135596801",
            "253402300800",
            "999999999999",
            "0000000000001",
            "-",
            "@",
            "@@1",
            "-@1",
            "+1358467200",
            "1358467200.5",
            "1e9",
            "--1",
            " 1358467200",
        ]);
    }

    #[test]
    fn unix_timestamp_ints() {
        assert!(is_valid_unix_timestamp(0));
        assert!(is_valid_unix_timestamp(-62_135_596_800));
        assert!(!is_valid_unix_timestamp(-62_135_596_801));
        assert!(is_valid_unix_timestamp(253_402_300_799));
        assert!(!is_valid_unix_timestamp(253_402_300_800));
        assert!(!is_valid_unix_timestamp(i64::MIN));
        assert!(!is_valid_unix_timestamp(i64::MAX));
    }

    #[test]
    fn rejects_other_inputs() {
        rejects(&[
            "",
            " ",
            "tomorrow",
            "now",
            "2013/01/18",
            "01/18/2013",
            "18.01.2013",
            "2013-01-18 10:00:00 PST",
            "next monday",
        ]);
    }

    #[test]
    fn whitespace_padding_rejected() {
        rejects(&[
            " 2013-01-18",
            "2013-01-18 ",
            "\t2013-01-18",
            "2013-01-18\n",
            " Jan 18, 2013",
            "18 Jan 2013 ",
            " Fri, 18 Jan 2013 10:00:00 -0500",
            "1358467200 ",
        ]);
    }

    #[test]
    fn non_ascii_rejected() {
        rejects(&[
            "2013-01-18\u{a0}",
            "2013\u{2011}01\u{2011}18",
            "２０１３-01-18",
            "18 Jän 2013",
            "Jän 18, 2013",
            "é",
            "日本",
            "Fri, 18 Jan 2013 10:00:00 −0500",
            "2013-01-18T10:00:00\u{2212}05:00",
            "2013-01-18T10:00:00Z\u{0}",
        ]);
    }

    #[test]
    fn weekday_computation() {
        assert_eq!(weekday_of(1970, 1, 1), 4); // Thursday
        assert_eq!(weekday_of(2013, 1, 18), 5); // Friday
        assert_eq!(weekday_of(2000, 2, 29), 2); // Tuesday
        assert_eq!(weekday_of(2000, 3, 1), 3); // Wednesday
        assert_eq!(weekday_of(1, 1, 1), 1); // Monday
        assert_eq!(weekday_of(9999, 12, 31), 5); // Friday
        assert_eq!(weekday_of(1900, 3, 1), 4); // Thursday
    }

    #[test]
    fn accepted_formats_mentions_each_format() {
        for needle in [
            "YYYY-MM-DD",
            "RFC 2822",
            "Jan 18, 2013",
            "18 Jan 2013",
            "Unix timestamp",
        ] {
            assert!(ACCEPTED_FORMATS.contains(needle), "{needle}");
        }
    }

    #[test]
    fn never_panics_on_short_strings() {
        let alphabet = [
            '0', '1', '2', '9', '-', '+', ':', '.', ',', '@', ' ', '\t', 'T', 'Z', 'J', 'a', 'n',
            'é', '日', '\u{0}',
        ];
        let mut buf = String::new();
        let mut count = 0;
        fn go(buf: &mut String, alphabet: &[char], depth: usize, count: &mut usize) {
            let _ = parse_signup_date(buf);
            *count += 1;
            if depth == 0 {
                return;
            }
            for &ch in alphabet {
                buf.push(ch);
                go(buf, alphabet, depth - 1, count);
                buf.pop();
            }
        }
        go(&mut buf, &alphabet, 3, &mut count);
        assert_eq!(count, 1 + 20 + 400 + 8000);
    }

    #[test]
    fn never_panics_on_prefixes_and_edits_of_valid_inputs() {
        let valid = [
            "2013-01-18T10:00:00.123+05:30",
            "Fri, 18 Jan 2013 10:00:00 -0500",
            "September 18, 2013",
            "18 January 2013",
            "@-62135596800",
        ];
        for s in valid {
            assert!(p(s).is_some(), "{s}");
            let chars: Vec<char> = s.chars().collect();
            for i in 0..=chars.len() {
                let prefix: String = chars[..i].iter().collect();
                let _ = p(&prefix);
                for sub in ['9', 'x', ' ', 'é'] {
                    let mut edited = chars.clone();
                    if i < edited.len() {
                        edited[i] = sub;
                    } else {
                        edited.push(sub);
                    }
                    let _ = p(&edited.iter().collect::<String>());
                }
            }
        }
    }
}
