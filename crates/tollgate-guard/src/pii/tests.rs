use super::*;

fn all() -> Recognisers {
    let kinds: Vec<Kind> = BUILT_IN.iter().map(|(_, k)| *k).collect();
    Recognisers::new(&kinds, &[]).unwrap()
}

/// The texts and kinds found in `text`.
fn found(r: &Recognisers, text: &str) -> Vec<(String, Kind)> {
    let mut out = Vec::new();
    r.find(text, &mut out);
    out.iter().map(|f| (text[f.start..f.end].to_string(), f.kind)).collect()
}

fn one(text: &str) -> Vec<(String, Kind)> {
    found(&all(), text)
}

#[test]
fn emails() {
    assert_eq!(one("mail john.doe+x@example.co.uk."), vec![("john.doe+x@example.co.uk".into(), Kind::Email)]);
    assert!(one("an @ sign, user@localhost, a@b.c").is_empty());
}

#[test]
fn credit_cards_must_pass_luhn() {
    assert_eq!(one("card 4111 1111 1111 1111 ok"), vec![("4111 1111 1111 1111".into(), Kind::CreditCard)]);
    assert_eq!(one("4111-1111-1111-1111"), vec![("4111-1111-1111-1111".into(), Kind::CreditCard)]);
    assert_eq!(one("5500005555555559"), vec![("5500005555555559".into(), Kind::CreditCard)]);
    assert!(one("order 4111111111111112 shipped").is_empty(), "fails Luhn");
    assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
}

#[test]
fn a_millisecond_timestamp_passing_luhn_is_not_a_card() {
    assert!(luhn(&[1, 7, 6, 4, 7, 8, 0, 0, 0, 0, 0, 0, 6]));
    assert_eq!(one("at 1764780000006 ms"), vec![]);
    assert!(one("a 16-digit Visa shape starting 1: 1111111111111117").is_empty());
    for card in ["378282246310005", "30569309025904", "6011111111111117", "4222222222222", "3530111333300000"] {
        assert_eq!(one(card), vec![(card.into(), Kind::CreditCard)], "{card}");
    }
}

#[test]
fn ibans_must_pass_mod_97() {
    assert_eq!(one("IBAN DE89370400440532013000."), vec![("DE89370400440532013000".into(), Kind::Iban)]);
    assert_eq!(
        one("pay to GB82 WEST 1234 5698 7654 32 today"),
        vec![("GB82 WEST 1234 5698 7654 32".into(), Kind::Iban)]
    );
    assert!(one("DE89370400440532013001").is_empty(), "wrong check digits");
    assert!(one("ISO 9001 certified").is_empty());
}

#[test]
fn ip_addresses() {
    assert_eq!(one("from 192.168.1.10, ok"), vec![("192.168.1.10".into(), Kind::Ip)]);
    assert_eq!(one("host 2001:db8::ff00:42:8329 up"), vec![("2001:db8::ff00:42:8329".into(), Kind::Ip)]);
    assert!(one("version 1.2.3.4.5 and 300.1.1.1 and 10:30:00").is_empty());
}

#[test]
fn phone_numbers_need_a_plus_or_separators() {
    assert_eq!(one("call +14155552671 now"), vec![("+14155552671".into(), Kind::Phone)]);
    assert_eq!(one("call (555) 123-4567."), vec![("(555) 123-4567".into(), Kind::Phone)]);
    assert_eq!(one("or +49 30 1234567"), vec![("+49 30 1234567".into(), Kind::Phone)]);
    assert!(one("in 2024 we sold 1234567890 units, pi is 3.14159").is_empty());
}

#[test]
fn secrets_by_prefix_and_by_randomness() {
    let key = "sk-proj-abcdefghijklmnopqrstuvwxyz012345";
    assert_eq!(one(&format!("key={key} done")), vec![(key.into(), Kind::Secret)]);
    assert_eq!(one("AKIAIOSFODNN7EXAMPLE"), vec![("AKIAIOSFODNN7EXAMPLE".into(), Kind::Secret)]);
    let gh = format!("ghp_{}", "aB3".repeat(12));
    assert_eq!(one(&gh), vec![(gh.clone(), Kind::Secret)]);
    let random = "Zx9Qw8Er7Ty6Ui5Op4As3Df2Gh1Jk0LmNbVc";
    assert_eq!(one(random), vec![(random.into(), Kind::Secret)]);
    // Hex digests, UUIDs and long ordinary words are not secrets.
    assert!(one("commit 3f786850e387550fdab836ed7e6dc881de23001b").is_empty());
    assert!(one("id 123e4567-e89b-12d3-a456-426614174000").is_empty());
    assert!(one("Pneumonoultramicroscopicsilicovolcanoconiosis is long").is_empty());
    assert!(one("sk-short").is_empty());
}

#[test]
fn only_the_kinds_asked_for() {
    let r = Recognisers::new(&[Kind::Email], &[]).unwrap();
    assert_eq!(found(&r, "a@b.io 4111111111111111").len(), 1);
}

#[test]
fn custom_patterns_with_their_labels() {
    let custom = vec![("employee id".to_string(), r"EMP-\d{6}".to_string())];
    let r = Recognisers::new(&[Kind::Email], &custom).unwrap();
    let f = found(&r, "EMP-123456 wrote to x@y.io");
    assert_eq!(f, vec![("EMP-123456".into(), Kind::Custom(0)), ("x@y.io".into(), Kind::Email)]);
    assert_eq!(r.label(Kind::Custom(0)), "EMPLOYEE_ID");
    let bad = Recognisers::new(&[], &[("ok".into(), "a".into()), ("bad".into(), "(".into())]).unwrap_err();
    assert_eq!(bad.index, 1);
}

#[test]
fn nothing_in_plain_prose_or_placeholders() {
    let text = "The quick brown fox jumps over the lazy dog. <EMAIL_1> met <PHONE_2> in 2024-01-15 at 10:30.";
    assert!(one(text).is_empty(), "{:?}", one(text));
}

#[test]
fn a_card_number_failing_luhn_is_nothing_else_either() {
    assert_eq!(one("order 4111 1111 1111 1112"), vec![]);
}

#[test]
fn digit_free_keys_are_still_found_past_the_prefilter() {
    assert_eq!(one("use AKIAABCDEFGHIJKLMNOP please"), vec![("AKIAABCDEFGHIJKLMNOP".into(), Kind::Secret)]);
    assert_eq!(
        one("an AIzaSyA-abcdefghijklmnopqrstuvwxyz_ABCD key"),
        vec![("AIzaSyA-abcdefghijklmnopqrstuvwxyz_ABCD".into(), Kind::Secret)]
    );
    assert_eq!(marks_of(b"plain prose, nothing else."), 0);
    assert_eq!(marks_of(b"version 2, a@b: x-y_z"), 1 << 8 | 1 << 12 | 1 << 14 | 1 << 17 | 1 << 19);
}

/// Fragments that make entities, near-misses and prose when joined.
const FRAGMENTS: &[&str] = &[
    "the",
    "Report",
    "top-3",
    "4.2%",
    "(up",
    "2025",
    "jane.doe@example.com",
    "a@b",
    "+1 415 555 2671",
    "(555) 123-4567",
    "4111 1111 1111 1111",
    "4111-1111-1111-1112",
    "DE89 3704 0044 0532 0130 00",
    "GB82 WEST 1234 5698 7654 32",
    "10.0.0.12",
    "1.2.3.4.5",
    "2001:db8::ff00:42:8329",
    "10:30",
    "sk-proj-abcdefghijklmnopqrstuvwxyz0123",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    "aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ",
    "x_y",
    "é",
    ",",
    ".",
    "\n",
    "  ",
    "-",
    "(",
    "+",
    "@",
    ":",
];

/// The marks-first scan finds exactly what scanning every word finds.
#[test]
fn scanning_marked_tokens_only_finds_what_scanning_every_word_finds() {
    let r = all();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..20_000 {
        let mut text = String::new();
        for _ in 0..(seed % 24) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(FRAGMENTS[(seed % FRAGMENTS.len() as u64) as usize]);
            if seed & 0x300 != 0 {
                text.push(' ');
            }
        }
        let b = text.as_bytes();
        let present = Present { at: memchr(b'@', b).is_some(), colon: memchr(b':', b).is_some() };
        let (mut fast, mut full) = (Vec::new(), Vec::new());
        r.scan(b, &mut fast);
        r.scan_words(b, 0, b.len(), present, &mut full);
        assert_eq!(fast, full, "{text:?}");
    }
}
