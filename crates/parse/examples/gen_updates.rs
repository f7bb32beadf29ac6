//! Deterministic generator of realistic Sailthru bulk "update" files, for
//! benchmarks and tests.
//!
//! ```text
//! cargo run --release -p sailbulk-parse --example gen_updates -- \
//!     [--bytes N] [--seed S] [--format json|emails|csv] [--invalid-every K] > updates.json
//! ```
//!
//! * `--bytes N` — stop after the first line that brings the output to at
//!   least `N` bytes (default 1 GiB). Suffixes `K`, `M`, `G` (powers of 1024).
//! * `--seed S` — `u64` seed (default 42). The same arguments always produce
//!   byte-identical output: a private splitmix64 PRNG drives every choice.
//! * `--format json` (default) — one JSON object per line (~200 bytes on
//!   average): an identity (`email`, `id`+`key`, or an `id` holding an email)
//!   plus `vars`, `lists`, `optout`, `signup_date`, `keys` and `delete_vars`
//!   with realistic frequencies, including unicode and JSON escapes.
//! * `--format emails` — one email address per line.
//! * `--format csv` — an import CSV (`email,first_name,...,notes`, ~110 bytes a
//!   row) with quoted fields, doubled quotes, embedded newlines and unicode.
//! * `--invalid-every K` — (json only) every K-th line is made invalid, rotating
//!   through: bad email, var name starting with a digit, list value 2, unknown
//!   optout, impossible date, truncated JSON, and two objects on one line.
//!
//! Output goes to stdout in 1 MiB writes; a closed pipe (e.g. `| head`) ends the program quietly.

use std::io::{self, Write};
use std::process::exit;

/// splitmix64: tiny, fast and fully specified, so output is portable.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (multiply-shift; the bias is negligible for small `n`).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
    /// True with probability `per_mille / 1000`.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
    /// Uniform in `0..len`.
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        items[self.index(items.len())]
    }
    /// The first `k` entries of a random permutation of `0..n` (`n <= 32`).
    fn distinct(&mut self, n: usize, k: usize) -> [u8; 32] {
        let mut idx: [u8; 32] = std::array::from_fn(|i| i as u8);
        for i in 0..k.min(n) {
            idx.swap(i, i + self.below((n - i) as u64) as usize);
        }
        idx
    }
}

/// Chainable appenders for the line buffer: `b.s("x").n(12).q("y")`.
trait Out {
    /// Raw text.
    fn s(&mut self, x: &str) -> &mut Self;
    /// Text in double quotes (callers pass already JSON-escaped text).
    fn q(&mut self, x: &str) -> &mut Self;
    /// `v` in decimal, zero-padded to at least `width` (<= 20) digits.
    fn pad(&mut self, v: u64, width: usize) -> &mut Self;
    fn n(&mut self, v: u64) -> &mut Self {
        self.pad(v, 1)
    }
    /// A decimal number such as `12.5` or `49.99`.
    fn dec(&mut self, int: u64, frac: u64) -> &mut Self {
        self.n(int).s(".").n(frac)
    }
    /// `v` as `digits` lowercase hex digits.
    fn hex(&mut self, v: u64, digits: u32) -> &mut Self;
    /// An ISO date `YYYY-MM-DD`.
    fn date(&mut self, (y, m, d): (u64, u64, u64)) -> &mut Self {
        self.n(y).s("-").pad(m, 2).s("-").pad(d, 2)
    }
    /// An ISO UTC timestamp `YYYY-MM-DDThh:mm:ssZ`.
    fn datetime(&mut self, ymd: (u64, u64, u64), (h, m, s): (u64, u64, u64)) -> &mut Self {
        self.date(ymd)
            .s("T")
            .pad(h, 2)
            .s(":")
            .pad(m, 2)
            .s(":")
            .pad(s, 2)
            .s("Z")
    }
}

impl Out for Vec<u8> {
    fn s(&mut self, x: &str) -> &mut Self {
        self.extend_from_slice(x.as_bytes());
        self
    }
    fn q(&mut self, x: &str) -> &mut Self {
        self.push(b'"');
        self.extend_from_slice(x.as_bytes());
        self.push(b'"');
        self
    }
    fn pad(&mut self, mut v: u64, width: usize) -> &mut Self {
        let mut tmp = [b'0'; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.extend_from_slice(&tmp[i.min(tmp.len() - width)..]);
        self
    }
    fn hex(&mut self, v: u64, digits: u32) -> &mut Self {
        for i in (0..digits).rev() {
            self.push(b"0123456789abcdef"[(v >> (4 * i) & 15) as usize]);
        }
        self
    }
}

/// A valid calendar date `(year, month, day)` with the year in `y0..y0 + span`.
fn date(r: &mut Rng, y0: u64, span: u64) -> (u64, u64, u64) {
    let (y, m) = (y0 + r.below(span), 1 + r.below(12));
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        2 => 28 + u64::from(leap),
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    (y, m, 1 + r.below(days))
}

/// A time of day `(hour, minute, second)`.
fn hms(r: &mut Rng) -> (u64, u64, u64) {
    (r.below(24), r.below(60), r.below(60))
}

/// A JSON array of 1..=max distinct strings from `items`.
fn array<'b>(r: &mut Rng, b: &'b mut Vec<u8>, items: &[&str], max: usize) -> &'b mut Vec<u8> {
    let k = 1 + r.below(max as u64) as usize;
    for (i, &j) in r.distinct(items.len(), k)[..k].iter().enumerate() {
        b.s(if i == 0 { "[" } else { "," }).q(items[usize::from(j)]);
    }
    b.s("]")
}

/// Appends a CSV field, quoting it (RFC 4180) only when needed.
fn csv_field(b: &mut Vec<u8>, field: &str) {
    if !field.bytes().any(|c| matches!(c, b',' | b'"' | b'\n')) {
        b.s(field);
        return;
    }
    b.s("\"");
    for (i, part) in field.split('"').enumerate() {
        b.s(if i == 0 { "" } else { "\"\"" }).s(part);
    }
    b.s("\"");
}

/// Declares the word tables: each is a `|`-separated string, split once at start-up.
macro_rules! tables {
    ($($field:ident = $text:expr;)*) => {
        struct Words {
            $($field: Vec<&'static str>,)*
        }
        impl Words {
            fn new() -> Self {
                Words { $($field: $text.split('|').collect(),)* }
            }
        }
    };
}

// `notes` are JSON-escaped (written verbatim); `csv_notes` are raw text (quoted on output).
tables! {
    first = "james|mary|john|patricia|robert|jennifer|michael|linda|william|\
        elizabeth|david|susan|richard|jessica|joseph|sarah|thomas|karen|chris|nancy|\
        daniel|lisa|matt|emma|liam|olivia|noah|ava|zoe|lucas|mia|hiro|aiko|raj|priya|\
        wei|mei|omar|fatima|sven";
    last = "smith|johnson|williams|brown|jones|garcia|miller|davis|rodriguez|\
        martinez|hernandez|lopez|gonzalez|wilson|anderson|thomas|taylor|moore|jackson|\
        martin|lee|perez|thompson|white|harris|clark|tanaka|suzuki|patel|sharma|chen|\
        wang|nguyen|kim|muller|schmidt|dubois|rossi|silva|obrien";
    domains = "gmail.com|gmail.com|gmail.com|yahoo.com|hotmail.com|outlook.com|\
        aol.com|icloud.com|mail.example.co.uk|example.com|example.org|proton.me|gmx.de|\
        web.de|orange.fr|yahoo.co.jp|qq.com|comcast.net|btinternet.com|company-mail.io|\
        student.uni-example.edu|mx.example.com.au";
    tags = "news|shop|promo|2024|deals|sailthru";
    names = "Emma|Liam|Olivia|Noah|Zoë|José|Chloé|Søren|Björn|Ana María|Siobhán|\
        Łukasz|美咲|Ólafur|François|Mary-Kate|Jean-Luc|Ngozi|Raj|Anaïs|Dmitri|Yūki|Renée|\
        O\\\"Neil";
    surnames = "Smith|García|Müller|O'Brien|Nguyễn|Tanaka|Kowalski|Dubois|Rossi|\
        Ñandú|Øster|van der Berg|Patel|Χατζής|Иванов|Lee";
    cities = "Paris|東京|São Paulo|Zürich|Kraków|New York|Reykjavík|Montréal|\
        London|Berlin|Chicago|Ñuñoa|Köln|Austin|Mumbai|Seoul";
    streets = "Rue de Rivoli|Main Street|Baker St|Avenida Paulista|Bahnhofstraße|\
        Calle de Alcalá|Elm Court, Apt 4B|Queen\\u2019s Road|銀座通り";
    interests = "running|cooking|travel|jazz|東京 food|board games|yoga 🧘|wine|\
        sci-fi|gardening|photography|fútbol";
    notes = "He said \\\"hi\\\" twice at the store|line one\\nline two\\nline three|\
        caf\\u00e9 au lait, extra hot|Party time 🎉 see you on Friday|\
        tab\\tseparated\\tvalues|C:\\\\Users\\\\shared\\\\exports|\
        Ñandú sighting near the lake||prefers weekends|\
        \\u00bfQu\\u00e9 tal? Llamar por la tarde|東京 → 大阪 trip in May|\
        quote: \\\"best deal ever\\\" 🎉 (via survey)";
    campaigns = "spring_sale_2024_email_b|welcome-series-step-3|\
        black_friday_early_access|reactivation_90d|Holiday Gift Guide 🎁|\
        newsletter_weekly_2024_06_14";
    lists = "Newsletter|Weekly Deals|Breaking News|VIP|Product Updates|\
        Daily Digest|Events NYC|Recipes|Sports & Outdoors|Café Club";
    bad_emails = "no-at-sign.example.com|two@@example.com|john..doe@example.com|\
        .lead@example.com|user@localhost|user@example.123";
    csv_first = "Emma|Liam|Zoë|José|Chloé|Søren|美咲|Mary-Kate|Christopher|\
        Alexandra|Jean-Baptiste|Siobhán|Maximilian|Anaïs";
    csv_cities = "Paris|東京|São Paulo|Cambridge|Washington, D.C.|Zürich|Boston|\
        Austin|San Francisco|Philadelphia|Saint-Étienne|Minneapolis";
    csv_notes = "|call after 5pm|prefers email, not sms|said \"great service\", will return|\
        left a 5-star review, asked about the \"Gold\" tier|\
        customer since 2014; two accounts merged|\
        VIP 🎉, renewal due|allergic to spam|referred by \"Ñandú\" club, gift sent|\
        met at the Paris expo; follow up in Q3|imported from legacy CRM (batch 7)|\
        bounced twice in 2022, re-confirmed by phone|\
        asked for the \"Weekly Deals\" list only|unsubscribed from SMS; email OK|\
        loyalty upgrade pending review|prefers French-language content, résumé attached|\
        store credit: $25, expires Dec 31|wants catalog by post|duplicate of another row?|\
        likes hiking, cooking and jazz";
    tiers = "bronze|silver|gold|platinum";
    colors = "red|blue|green|teal|black|mauve|rosé";
    referrers = "friend|google|facebook|Ñandú Travel 🎉|newsletter";
    languages = "en-US|en-GB|fr-FR|de-DE|ja-JP|es-MX|pt-BR";
    old_vars = "old_var|legacy_score|tmp_flag|promo2019";
    optouts = "none|none|basic|blast|all";
    months = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec";
    vars = "first_name|last_name|city|lastPurchase|score2|loyalty_tier|vip|referrer|interests|\
        address|note|birthday|cart_total|visits|favorite_color|last_login|utm_campaign|last_order|\
        preferred_language|tags";
}

const LETTERS: &str = "abcdefghijklmnopqrstuvwxyz";
/// Kinds of deliberate invalidity, in rotation order (see the module docs).
const INVALID_KINDS: u64 = 7;

struct Gen {
    r: Rng,
    w: Words,
    /// `csv_first`, `surnames`, `csv_cities` and `csv_notes`, CSV-encoded up front.
    csv: [Vec<Vec<u8>>; 4],
}

impl Gen {
    fn new(seed: u64) -> Self {
        let w = Words::new();
        let tables = [&w.csv_first, &w.surnames, &w.csv_cities, &w.csv_notes];
        let csv = tables.map(|t| {
            let encode = |f: &&str| {
                let mut b = Vec::new();
                csv_field(&mut b, f);
                b
            };
            t.iter().map(encode).collect()
        });
        Gen {
            r: Rng(seed),
            w,
            csv,
        }
    }

    /// A syntactically valid, realistic email address.
    fn email(&mut self, b: &mut Vec<u8>) {
        let (r, w) = (&mut self.r, &self.w);
        let (first, last, num) = (r.pick(&w.first), r.pick(&w.last), r.below(100_000));
        let (initial, mid) = (&first[..1], r.below(26) as usize);
        match r.below(8) {
            0 => b.s(first).s(".").s(last),
            1 => b.s(first).s(".").s(last).n(num % 1000),
            2 => b.s(first).s("_").s(last),
            3 => b.s(initial).s(".").s(last).s("-").pad(num % 100, 2),
            4 => b.s(first).s(".").s(last).s("+").s(r.pick(&w.tags)),
            5 => b.s(first).n(num),
            6 => b.s(initial).s(".").s(&LETTERS[mid..=mid]).s(".").s(last),
            _ => b.s(first).s("-").s(last).n(1950 + num % 60),
        };
        b.s("@").s(r.pick(&w.domains));
    }

    /// Appends `"name":value` for var number `which` (an index into `vars`).
    fn var(&mut self, b: &mut Vec<u8>, which: usize) {
        let (r, w) = (&mut self.r, &self.w);
        b.q(w.vars[which]).s(":");
        match which {
            0 => b.q(r.pick(&w.names)),
            1 => b.q(r.pick(&w.surnames)),
            2 => b.q(r.pick(&w.cities)),
            3 | 12 => b.dec(r.below(500), 1 + r.below(99)),
            4 | 13 => b.n(r.below(1000)),
            5 => b.q(r.pick(&w.tiers)),
            6 => b.s(if r.chance(300) { "true" } else { "false" }),
            7 if r.chance(400) => b.s("null"),
            7 => b.q(r.pick(&w.referrers)),
            8 => array(r, b, &w.interests, 5),
            9 => {
                let (num, street) = (1 + r.below(400), r.pick(&w.streets));
                b.s("{\"street\":\"")
                    .n(num)
                    .s(" ")
                    .s(street)
                    .s("\",\"city\":");
                b.q(r.pick(&w.cities))
                    .s(",\"zip\":\"")
                    .pad(r.below(100_000), 5)
                    .s("\"}")
            }
            10 => b.q(r.pick(&w.notes)),
            11 => b.s("\"").date(date(r, 1940, 66)).s("\""),
            14 => b.q(r.pick(&w.colors)),
            15 => b.s("\"").datetime(date(r, 2015, 10), hms(r)).s("\""),
            16 => b.q(r.pick(&w.campaigns)),
            17 => {
                let (sku, qty) = (r.below(100_000), 1 + r.below(4));
                b.s("{\"sku\":\"SKU-").pad(sku, 5).s("\",\"qty\":").n(qty);
                b.s(",\"price\":").dec(r.below(200), 1 + r.below(99));
                b.s(if r.chance(100) {
                    ",\"gift\":true}"
                } else {
                    ",\"gift\":false}"
                })
            }
            18 => b.q(r.pick(&w.languages)),
            _ => array(r, b, &w.tags, 3),
        };
    }

    /// One update object (no newline). `bad` selects an invalidity kind `0..5`.
    fn object(&mut self, b: &mut Vec<u8>, bad: Option<u64>) {
        let roll = self.r.below(1000);
        if bad == Some(0) {
            b.s("{\"email\":").q(self.r.pick(&self.w.bad_emails));
        } else if roll < 870 {
            b.s("{\"email\":\"");
            self.email(b);
            b.s("\"");
        } else if roll >= 970 {
            // An `id` holding an email, with no `key`.
            b.s("{\"id\":\"");
            self.email(b);
            b.s("\"");
        } else {
            let r = &mut self.r;
            b.s("{\"id\":\"");
            match r.below(10) {
                0..=2 => b
                    .s("CUST-")
                    .pad(r.below(1_000_000), 6)
                    .s("\",\"key\":\"extid"),
                3..=5 => b.n(1 + r.below(10_000_000)).s("\",\"key\":\"extid"),
                6 | 7 => b
                    .hex(r.next_u64(), 16)
                    .hex(r.next_u64(), 8)
                    .s("\",\"key\":\"sid"),
                _ => b
                    .s("1")
                    .pad(r.below(10_000_000_000), 10)
                    .s("\",\"key\":\"sms"),
            };
            b.s("\"");
        }
        let r = &mut self.r;
        if bad == Some(1) || r.chance(900) {
            let k = [1, 2, 3, 4, 5, 5, 6, 6, 6, 6, 6, 4][r.below(12) as usize];
            let idx = r.distinct(self.w.vars.len(), k);
            for (i, &which) in idx[..k].iter().enumerate() {
                b.s(if i == 0 { ",\"vars\":{" } else { "," });
                self.var(b, usize::from(which));
            }
            b.s(if bad == Some(1) {
                ",\"1color\":\"red\"}"
            } else {
                "}"
            });
        }
        let (r, w) = (&mut self.r, &self.w);
        if bad == Some(2) || r.chance(500) {
            let k = 1 + r.below(4) as usize;
            for (i, &which) in r.distinct(w.lists.len(), k)[..k].iter().enumerate() {
                b.s(if i == 0 { ",\"lists\":{" } else { "," });
                let v = if bad == Some(2) && i == 0 {
                    2
                } else {
                    u64::from(r.chance(750))
                };
                b.q(w.lists[usize::from(which)]).s(":").n(v);
            }
            b.s("}");
        }
        if bad == Some(3) {
            b.s(",\"optout\":\"sometimes\"");
        } else if r.chance(100) {
            b.s(",\"optout\":").q(r.pick(&w.optouts));
        }
        if bad == Some(4) {
            b.s(",\"signup_date\":\"2013-02-30\"");
        } else if r.chance(150) {
            b.s(",\"signup_date\":");
            let ymd = date(r, 2010, 15);
            match r.below(3) {
                0 => b.s("\"").date(ymd).s("\""),
                1 => b
                    .s("\"")
                    .s(w.months[ymd.1 as usize - 1])
                    .s(" ")
                    .n(ymd.2)
                    .s(", ")
                    .n(ymd.0)
                    .s("\""),
                _ => b.s("\"").datetime(ymd, hms(r)).s("\""),
            };
        }
        if roll < 870 && r.chance(40) {
            b.s(",\"keys\":{\"extid\":\"")
                .n(1 + r.below(1_000_000))
                .s("\"}");
        }
        if r.chance(30) {
            b.s(",\"delete_vars\":[").q(r.pick(&w.old_vars)).s("]");
        }
        b.s("}");
    }

    /// One JSON line (no newline); `bad` is an invalidity kind `0..INVALID_KINDS`.
    fn json_line(&mut self, b: &mut Vec<u8>, bad: Option<u64>) {
        match bad {
            Some(5) => {
                // Truncated object: cut a real line in half, on a char boundary.
                let start = b.len();
                self.object(b, None);
                let mut cut = start + (b.len() - start) / 2;
                while b[cut] & 0xC0 == 0x80 {
                    cut -= 1;
                }
                b.truncate(cut);
            }
            Some(6) => {
                self.object(b, None);
                self.object(b, None);
            }
            _ => self.object(b, bad),
        }
    }

    fn csv_row(&mut self, b: &mut Vec<u8>) {
        self.email(b);
        let (r, csv) = (&mut self.r, &self.csv);
        for table in &csv[..3] {
            b.push(b',');
            b.extend_from_slice(&table[r.index(table.len())]);
        }
        // Zip codes: small ones keep their leading zeros ("02139").
        let zip = if r.chance(100) {
            r.below(10_000)
        } else {
            r.below(100_000)
        };
        b.s(",").pad(zip, 5).s(",");
        if r.chance(500) {
            b.n(r.below(1000));
        } else {
            b.dec(r.below(100), 1 + r.below(99));
        }
        b.s(if r.chance(200) { ",true," } else { ",false," });
        b.date(date(r, 2010, 15)).s(",");
        if r.chance(15) {
            // Occasionally a note spans two physical lines.
            csv_field(
                b,
                "moved from 東京\nnew address pending, \"confirm\" by phone",
            );
        } else {
            b.extend_from_slice(&csv[3][r.index(csv[3].len())]);
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Json,
    Emails,
    Csv,
}

struct Opts {
    bytes: u64,
    seed: u64,
    format: Format,
    invalid_every: u64,
}

const USAGE: &str = "usage: gen_updates [--bytes N[K|M|G]] [--seed S] \
    [--format json|emails|csv] [--invalid-every K]";

fn die(msg: &str) -> ! {
    eprintln!("gen_updates: {msg}\n{USAGE}");
    exit(2)
}

/// `N`, `NK`, `NM` or `NG` (powers of 1024).
fn parse_bytes(s: &str) -> Option<u64> {
    let shift = match s.as_bytes().last()?.to_ascii_uppercase() {
        b'K' => 10,
        b'M' => 20,
        b'G' => 30,
        _ => 0,
    };
    let digits = if shift == 0 { s } else { &s[..s.len() - 1] };
    digits.parse::<u64>().ok()?.checked_mul(1 << shift)
}

fn parse_args() -> Opts {
    let mut o = Opts {
        bytes: 1 << 30,
        seed: 42,
        format: Format::Json,
        invalid_every: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            exit(0);
        }
        let val = args
            .next()
            .unwrap_or_else(|| die(&format!("{flag} needs a value")));
        let num = || val.parse().ok();
        let parsed = match flag.as_str() {
            "--bytes" => parse_bytes(&val).map(|n| o.bytes = n),
            "--seed" => num().map(|n| o.seed = n),
            "--invalid-every" => num().map(|n| o.invalid_every = n),
            "--format" => match val.as_str() {
                "json" => Some(Format::Json),
                "emails" => Some(Format::Emails),
                "csv" => Some(Format::Csv),
                _ => None,
            }
            .map(|f| o.format = f),
            _ => die(&format!("unknown argument {flag}")),
        };
        if parsed.is_none() {
            die(&format!("bad value for {flag}: {val}"));
        }
    }
    o
}

/// Size of the output buffer; records are generated straight into it.
const BUF: usize = 1 << 20;

fn run(o: &Opts) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let mut buf = Vec::with_capacity(BUF + 64 * 1024);
    let mut g = Gen::new(o.seed);
    let (mut total, mut n, mut invalid) = (0u64, 0u64, 0u64);
    if o.format == Format::Csv && o.bytes > 0 {
        buf.s("email,first_name,last_name,city,zip,score,vip,signup_date,notes\n");
        total = buf.len() as u64;
    }
    while total < o.bytes {
        let start = buf.len();
        n += 1;
        match o.format {
            Format::Json if o.invalid_every > 0 && n % o.invalid_every == 0 => {
                g.json_line(&mut buf, Some(invalid % INVALID_KINDS));
                invalid += 1;
            }
            Format::Json => g.json_line(&mut buf, None),
            Format::Emails => g.email(&mut buf),
            Format::Csv => g.csv_row(&mut buf),
        }
        buf.push(b'\n');
        total += (buf.len() - start) as u64;
        if buf.len() >= BUF {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    out.flush()
}

fn main() {
    let opts = parse_args();
    match run(&opts) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit(0),
        Err(e) => {
            eprintln!("gen_updates: {e}");
            exit(1);
        }
    }
}
