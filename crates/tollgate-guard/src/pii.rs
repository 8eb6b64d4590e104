//! Built-in PII recognisers, in one pass over a text: at each word start the
//! recognisers that can begin there are tried, and a word nothing starts in
//! is skipped whole. Checksums keep them conservative: a credit card number
//! must pass Luhn, an IBAN mod-97; a phone number needs a `+` or separators;
//! an API key a known prefix (`sk-`, `AKIA`, `ghp_`...) or, for a bare token,
//! 32+ characters mixing cases and digits with high entropy. Custom patterns
//! run after, with the `regex` engine.

use memchr::memchr;
use regex::Regex;

use crate::patterns::{compile_one, PatternError};

/// What a recogniser found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Email,
    Phone,
    CreditCard,
    Iban,
    Ip,
    Secret,
    /// A custom pattern, by its index.
    Custom(usize),
}

/// The built-in kinds, by their names in Kong's `anonymize` list.
pub const BUILT_IN: &[(&str, Kind)] = &[
    ("email", Kind::Email),
    ("phone", Kind::Phone),
    ("creditcard", Kind::CreditCard),
    ("bank", Kind::Iban),
    ("ip", Kind::Ip),
    ("credentials", Kind::Secret),
];

/// One finding: bytes `start..end` of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub start: usize,
    pub end: usize,
    pub kind: Kind,
}

/// The recognisers a sanitizer uses.
#[derive(Debug, Clone, Default)]
pub struct Recognisers {
    email: bool,
    phone: bool,
    card: bool,
    iban: bool,
    ip: bool,
    secret: bool,
    /// Custom patterns: placeholder label and expression.
    custom: Vec<(String, Regex)>,
}

impl Recognisers {
    /// The built-in `kinds` and custom `(name, regex)` patterns.
    pub fn new(kinds: &[Kind], custom: &[(String, String)]) -> Result<Self, PatternError> {
        let mut r = Recognisers::default();
        for k in kinds {
            match k {
                Kind::Email => r.email = true,
                Kind::Phone => r.phone = true,
                Kind::CreditCard => r.card = true,
                Kind::Iban => r.iban = true,
                Kind::Ip => r.ip = true,
                Kind::Secret => r.secret = true,
                Kind::Custom(_) => {}
            }
        }
        for (index, (name, pattern)) in custom.iter().enumerate() {
            let re = compile_one(pattern).map_err(|message| PatternError { index, message })?;
            r.custom.push((label_of(name), re));
        }
        Ok(r)
    }

    /// The placeholder label of `kind` (`EMAIL`, a custom pattern's name upper-cased).
    pub fn label(&self, kind: Kind) -> &str {
        match kind {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::CreditCard => "CREDIT_CARD",
            Kind::Iban => "IBAN",
            Kind::Ip => "IP_ADDRESS",
            Kind::Secret => "SECRET",
            Kind::Custom(i) => self.custom.get(i).map(|(l, _)| l.as_str()).unwrap_or("CUSTOM"),
        }
    }

    /// Every finding in `text`, sorted and without overlaps, into `out` (cleared first).
    pub fn find(&self, text: &str, out: &mut Vec<Found>) {
        out.clear();
        self.scan(text.as_bytes(), out);
        for (i, (_, re)) in self.custom.iter().enumerate() {
            for m in re.find_iter(text).filter(|m| !m.is_empty()) {
                out.push(Found { start: m.start(), end: m.end(), kind: Kind::Custom(i) });
            }
        }
        if !self.custom.is_empty() {
            out.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
            let mut last_end = 0;
            out.retain(|f| {
                let keep = f.start >= last_end;
                if keep {
                    last_end = f.end;
                }
                keep
            });
        }
    }

    /// The built-in recognisers. Every entity holds a digit, `+`, `@`, `:`,
    /// `-` or `_` within its first whitespace-delimited token, or starts with one of
    /// the digit-free key prefixes (`AKIA`, `ASIA`, `AIza`); so the text is
    /// searched 64 bytes at a time for those marks, and only the tokens that
    /// hold one are scanned word by word. Prose has a few such tokens per
    /// sentence; the rest costs a branch-free pass.
    fn scan(&self, b: &[u8], out: &mut Vec<Found>) {
        let text = Present { at: self.email && memchr(b'@', b).is_some(), colon: self.ip && memchr(b':', b).is_some() };
        if self.secret && has_letter_key_prefix(b) {
            self.scan_words(b, 0, b.len(), text, out);
            return;
        }
        let mut cursor = 0;
        for (n, chunk) in b.chunks(64).enumerate() {
            let base = n * 64;
            if base + chunk.len() <= cursor {
                continue;
            }
            let mut marks = marks_of(chunk);
            while marks != 0 {
                let p = base + marks.trailing_zeros() as usize;
                marks &= marks - 1;
                if p >= cursor {
                    let start = token_start(b, p, cursor);
                    cursor = self.scan_words(b, start, token_end(b, p), text, out);
                }
            }
        }
    }

    /// Word start by word start from `i` until `to` (an entity or a run of
    /// grouped digits may carry on past it): one table lookup per byte to find
    /// the next word, and only the recognisers its first byte (and what ends
    /// it) allow; an email needs an `@` in the text, an IPv6 address a `:`
    /// after its first word. Returns where it stopped.
    fn scan_words(&self, b: &[u8], mut i: usize, to: usize, text: Present, out: &mut Vec<Found>) -> usize {
        while i < to {
            let c = b[i];
            if CLASS[c as usize] & START == 0 || (i > 0 && is_word(b[i - 1])) {
                i += 1;
                continue;
            }
            let word_end = run(b, i, is_word);
            // The common case, a plain lower-case word: nothing can start in it.
            if c.is_ascii_lowercase() && !text.at && !self.may_start_lowercase(b, i, word_end, text) {
                i = word_end;
                continue;
            }
            if let Some((end, kind)) = self.at(b, i, word_end, text) {
                out.push(Found { start: i, end, kind });
                i = end;
                continue;
            }
            // Nothing starts here: skip the word, or a whole run of grouped
            // digits, so no later part of it is taken for a shorter entity.
            i = if c.is_ascii_alphabetic() { word_end } else { numeric_run(b, i) }.max(i + 1);
        }
        i
    }

    /// Whether an entity (a key with a lower-case prefix, an IPv6 address, a
    /// random token) may start at the lower-case word `i..word_end`.
    fn may_start_lowercase(&self, b: &[u8], i: usize, word_end: usize, text: Present) -> bool {
        let next = b.get(word_end).copied();
        let rest = &b[i..];
        let key_prefix =
            rest.starts_with(b"sk-") || rest.starts_with(b"gh") || rest.starts_with(b"gl") || rest.starts_with(b"xox");
        (self.secret && (key_prefix || word_end - i >= 32 || next == Some(b'-'))) || (text.colon && next == Some(b':'))
    }

    /// The entity starting at `i` (whose word ends at `word_end`), if one does.
    fn at(&self, b: &[u8], i: usize, word_end: usize, text: Present) -> Option<(usize, Kind)> {
        let c = b[i];
        let next = b.get(word_end).copied();
        if text.at && c.is_ascii_alphanumeric() {
            if let Some(end) = email_at(b, i) {
                return Some((end, Kind::Email));
            }
        }
        if self.secret && b"sAgxG".contains(&c) {
            if let Some(end) = prefixed_secret_at(b, i) {
                return Some((end, Kind::Secret));
            }
        }
        if self.ip && c.is_ascii_digit() {
            if let Some(end) = ipv4_at(b, i) {
                return Some((end, Kind::Ip));
            }
        }
        if text.colon && c.is_ascii_hexdigit() && next == Some(b':') {
            if let Some(end) = ipv6_at(b, i) {
                return Some((end, Kind::Ip));
            }
        }
        // A card has 13+ digits and a phone 8+: most numbers in prose have fewer.
        let long_number = c == b'+' || ((self.card || self.phone) && digits_ahead(b, i) >= 8);
        if self.card && long_number && c.is_ascii_digit() {
            if let Some(end) = card_at(b, i) {
                return Some((end, Kind::CreditCard));
            }
        }
        if self.phone && long_number && (c.is_ascii_digit() || c == b'+' || c == b'(') {
            if let Some(end) = phone_at(b, i) {
                return Some((end, Kind::Phone));
            }
        }
        if self.iban && c.is_ascii_uppercase() {
            if let Some(end) = iban_at(b, i) {
                return Some((end, Kind::Iban));
            }
        }
        if self.secret && (word_end - i >= 32 || next == Some(b'-')) {
            return random_token_at(b, i).map(|end| (end, Kind::Secret));
        }
        None
    }
}

/// Bit k set when `chunk[k]` (of at most 64 bytes) is a mark some entity's
/// first token holds: a digit (phone, card, IBAN, IPv4, every random token),
/// `+` (a phone may go on `+ (555) ...`), `@` (email), `:` (IPv6), `-` or `_`
/// (prefixed keys such as `sk-`, `ghp_`). The flags are computed a byte each,
/// which the compiler vectorises, then packed eight at a time by one
/// multiplication (each 0/1 byte lands on its own bit of the top byte).
fn marks_of(chunk: &[u8]) -> u64 {
    let mut flags = [0u8; 64];
    for (f, &c) in flags.iter_mut().zip(chunk) {
        let mark = (c.wrapping_sub(b'0') < 10) | (c == b'@') | (c == b':') | (c == b'-') | (c == b'_') | (c == b'+');
        *f = u8::from(mark);
    }
    flags.chunks_exact(8).enumerate().fold(0u64, |m, (k, eight)| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(eight);
        let packed = u64::from_le_bytes(bytes).wrapping_mul(0x0102_0408_1020_4080) >> 56;
        m | (packed << (8 * k))
    })
}

/// Whether `b` holds a key prefix without a mark (`AKIA`, `ASIA`, `AIza`):
/// then the whole text is scanned word by word.
fn has_letter_key_prefix(b: &[u8]) -> bool {
    memchr::memchr_iter(b'A', b).any(|i| {
        let rest = &b[i + 1..];
        rest.starts_with(b"KIA") || rest.starts_with(b"SIA") || rest.starts_with(b"Iza")
    })
}

/// Tokens are delimited by ASCII whitespace, which no entity's first token holds.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\n' | b'\t' | b'\r')
}

/// The start of the token holding `p`, not before `floor` (what was scanned).
fn token_start(b: &[u8], mut p: usize, floor: usize) -> usize {
    while p > floor && !is_space(b[p - 1]) {
        p -= 1;
    }
    p
}

fn token_end(b: &[u8], p: usize) -> usize {
    run(b, p, |c| !is_space(c))
}

/// What a text holds that some recognisers need.
#[derive(Clone, Copy)]
struct Present {
    at: bool,
    colon: bool,
}

/// Byte classes: word bytes, bytes an entity may start with, bytes of an
/// email's local part.
const WORD: u8 = 1;
const START: u8 = 2;
const LOCAL: u8 = 4;
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        if alnum || b == b'_' {
            t[c] |= WORD;
        }
        if alnum || b == b'+' || b == b'(' {
            t[c] |= START;
        }
        if alnum || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-') {
            t[c] |= LOCAL;
        }
        c += 1;
    }
    t
}

/// A custom pattern's name as a placeholder label: `[A-Z0-9_]`.
fn label_of(name: &str) -> String {
    let l: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if l.is_empty() {
        "CUSTOM".into()
    } else {
        l
    }
}

fn is_word(c: u8) -> bool {
    CLASS[c as usize] & WORD != 0
}

/// Whether the entity ending at `end` ends a word.
fn ends_word(b: &[u8], end: usize) -> bool {
    b.get(end).is_none_or(|&c| !is_word(c))
}

/// The digits from `i` on, through any separators a card or a phone number
/// may hold (` -.()`), up to 8: enough to tell that neither can start at `i`.
fn digits_ahead(b: &[u8], i: usize) -> usize {
    let mut digits = 0;
    for &c in &b[i..] {
        if c.is_ascii_digit() {
            digits += 1;
            if digits == 8 {
                break;
            }
        } else if !b" -.()".contains(&c) {
            break;
        }
    }
    digits
}

/// The end of a run of digits and the separators between them (`+1 (555) 123-4567`).
fn numeric_run(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        let c = b[i];
        let sep_then_digit = b"+ -.()".contains(&c) && b.get(i + 1).is_some_and(|d| d.is_ascii_digit() || *d == b'(');
        if !(c.is_ascii_digit() || sep_then_digit || (c == b')' && b.get(i + 1) == Some(&b' '))) {
            break;
        }
        i += 1;
    }
    i
}

fn run(b: &[u8], mut i: usize, ok: impl Fn(u8) -> bool) -> usize {
    while i < b.len() && ok(b[i]) {
        i += 1;
    }
    i
}

/// `local@domain.tld`: the local part from `i`, a dotted domain, a TLD of 2+ letters.
fn email_at(b: &[u8], i: usize) -> Option<usize> {
    let at = run(b, i, |c| CLASS[c as usize] & LOCAL != 0);
    if at == i || b.get(at) != Some(&b'@') || at - i > 64 {
        return None;
    }
    let mut end = None;
    let mut j = at + 1;
    loop {
        let label_end = run(b, j, |c| c.is_ascii_alphanumeric() || c == b'-');
        if label_end == j {
            break;
        }
        let label = &b[j..label_end];
        if j > at + 1 && label.len() >= 2 && label.iter().all(u8::is_ascii_alphabetic) {
            end = Some(label_end);
        }
        if b.get(label_end) != Some(&b'.') {
            break;
        }
        j = label_end + 1;
    }
    end.filter(|&e| ends_word(b, e))
}

/// Keys with a well-known prefix and enough characters after it.
fn prefixed_secret_at(b: &[u8], i: usize) -> Option<usize> {
    const PREFIXES: &[(&[u8], usize)] = &[
        (b"sk-", 20),
        (b"AKIA", 16),
        (b"ASIA", 16),
        (b"ghp_", 30),
        (b"gho_", 30),
        (b"ghu_", 30),
        (b"ghs_", 30),
        (b"ghr_", 30),
        (b"github_pat_", 30),
        (b"xoxb-", 10),
        (b"xoxp-", 10),
        (b"AIza", 30),
        (b"glpat-", 20),
    ];
    let rest = &b[i..];
    let (prefix, min) = PREFIXES.iter().find(|(p, _)| rest.starts_with(p))?;
    let end = run(b, i + prefix.len(), |c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    (end - i - prefix.len() >= *min && ends_word(b, end)).then_some(end)
}

/// A bare token that looks random: 32 to 256 characters of `[A-Za-z0-9_-]`
/// with upper and lower case letters and digits, and at least 4 bits of
/// entropy per character (hex digests and UUIDs do not qualify).
fn random_token_at(b: &[u8], i: usize) -> Option<usize> {
    let end = run(b, i, |c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    let t = &b[i..end];
    if !(32..=256).contains(&t.len()) || !ends_word(b, end) {
        return None;
    }
    let has = |f: fn(&u8) -> bool| t.iter().any(f);
    if !(has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit)) {
        return None;
    }
    (entropy(t) >= 4.0).then_some(end)
}

/// Shannon entropy in bits per byte.
fn entropy(t: &[u8]) -> f64 {
    let mut counts = [0u32; 128];
    for &c in t {
        counts[(c & 0x7f) as usize] += 1;
    }
    let n = t.len() as f64;
    counts.iter().filter(|&&k| k > 0).map(|&k| -(k as f64 / n) * (k as f64 / n).log2()).sum()
}

/// `a.b.c.d`, each 0-255, not inside a longer dotted run (`1.2.3.4.5`).
fn ipv4_at(b: &[u8], i: usize) -> Option<usize> {
    if i > 0 && b[i - 1] == b'.' {
        return None;
    }
    let mut j = i;
    for part in 0..4 {
        let end = run(b, j, |c| c.is_ascii_digit());
        if end == j || end - j > 3 {
            return None;
        }
        let v: u32 = b[j..end].iter().fold(0, |a, &c| a * 10 + u32::from(c - b'0'));
        if v > 255 {
            return None;
        }
        j = end;
        if part < 3 {
            if b.get(j) != Some(&b'.') {
                return None;
            }
            j += 1;
        }
    }
    let more = b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit);
    (!more && ends_word(b, j)).then_some(j)
}

/// An IPv6 address (at least two colons; parsed by the standard library).
fn ipv6_at(b: &[u8], i: usize) -> Option<usize> {
    let end = run(b, i, |c| c.is_ascii_hexdigit() || c == b':' || c == b'.');
    let t = &b[i..end];
    if t.len() < 3 || t.len() > 45 || t.iter().filter(|&&c| c == b':').count() < 2 || !ends_word(b, end) {
        return None;
    }
    let s = std::str::from_utf8(t).ok()?;
    s.parse::<std::net::Ipv6Addr>().ok().map(|_| end)
}

/// 13 to 19 digits, optionally grouped by single spaces or dashes, with a
/// card brand's leading digit and length, passing Luhn.
fn card_at(b: &[u8], i: usize) -> Option<usize> {
    let mut digits = [0u8; 19];
    let (mut n, mut j, mut end) = (0, i, i);
    while j < b.len() {
        let c = b[j];
        if c.is_ascii_digit() {
            if n == 19 {
                return None;
            }
            digits[n] = c - b'0';
            n += 1;
            j += 1;
            end = j;
        } else if (c == b' ' || c == b'-') && b.get(j + 1).is_some_and(u8::is_ascii_digit) && j > i {
            j += 1;
        } else {
            break;
        }
    }
    (brand_length(digits[0], n) && ends_word(b, end) && luhn(&digits[..n])).then_some(end)
}

/// Whether a number starting with `first` may be a card of `n` digits: Visa
/// (4: 13, 16, 19), Mastercard (2, 5: 16), Amex, Diners and JCB (3: 14-16, 19),
/// Discover and UnionPay (6: 16-19). Without it, one in ten 13-digit
/// millisecond timestamps (they start with 1) would pass Luhn and be masked.
fn brand_length(first: u8, n: usize) -> bool {
    match first {
        4 => matches!(n, 13 | 16 | 19),
        2 | 5 => n == 16,
        3 => matches!(n, 14..=16 | 19),
        6 => (16..=19).contains(&n),
        _ => false,
    }
}

/// The Luhn checksum of a card number.
pub fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if !k.is_multiple_of(2) {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A phone number: `+` and 8-15 digits, or 10-15 digits with at least two
/// separators (space, dash, dot, parentheses), e.g. `(555) 123-4567`.
fn phone_at(b: &[u8], i: usize) -> Option<usize> {
    let plus = b[i] == b'+';
    let (mut digits, mut seps, mut j, mut end) = (0, 0, i + usize::from(plus), i);
    let mut last_sep = 0;
    while j < b.len() {
        let c = b[j];
        if c.is_ascii_digit() {
            digits += 1;
            last_sep = 0;
            end = j + 1;
        } else if b" -.()".contains(&c) && last_sep < 2 {
            seps += 1;
            last_sep += 1;
        } else {
            break;
        }
        j += 1;
    }
    let enough = if plus { (8..=15).contains(&digits) } else { (10..=15).contains(&digits) && seps >= 2 };
    let opens_right = b[i].is_ascii_digit() || plus || b.get(i + 1).is_some_and(u8::is_ascii_digit);
    (enough && opens_right && end > i && ends_word(b, end)).then_some(end)
}

/// An IBAN: country letters, check digits, then up to 30 letters or digits,
/// optionally in space-separated groups; the longest prefix of 15-34
/// characters that passes mod-97.
fn iban_at(b: &[u8], i: usize) -> Option<usize> {
    let head = b.get(i..i + 4)?;
    if !(head[0].is_ascii_uppercase() && head[1].is_ascii_uppercase() && head[2..].iter().all(u8::is_ascii_digit)) {
        return None;
    }
    let mut chars = [0u8; 34];
    let mut ends = [0usize; 34];
    let (mut n, mut j) = (0, i);
    while j < b.len() && n < 34 {
        let c = b[j];
        if c.is_ascii_uppercase() || c.is_ascii_digit() {
            chars[n] = c;
            ends[n] = j + 1;
            n += 1;
        } else if !(c == b' ' && b.get(j + 1).is_some_and(|d| d.is_ascii_uppercase() || d.is_ascii_digit())) {
            break;
        }
        j += 1;
    }
    (15..=n).rev().find(|&len| ends_word(b, ends[len - 1]) && mod97(&chars[..len])).map(|len| ends[len - 1])
}

/// ISO 13616's check: the first four characters moved to the end, letters
/// as 10-35, the number mod 97 is 1.
pub fn mod97(iban: &[u8]) -> bool {
    let (head, tail) = iban.split_at(4);
    let mut r: u32 = 0;
    for &c in tail.iter().chain(head) {
        let v = if c.is_ascii_digit() { u32::from(c - b'0') } else { u32::from(c - b'A') + 10 };
        r = if v >= 10 { (r * 100 + v) % 97 } else { (r * 10 + v) % 97 };
    }
    r == 1
}

#[cfg(test)]
mod tests;
