//! Masking: each distinct entity of a request gets a placeholder,
//! `<EMAIL_1>`, `<EMAIL_2>`, `<CREDIT_CARD_1>`, the same one wherever it
//! recurs; the vault remembers them so an answer's placeholders can be
//! turned back into the originals (`recover_redacted`).

use std::borrow::Cow;
use std::collections::HashMap;

use memchr::memchr;

use crate::pii::{Found, Recognisers};

/// The placeholders of one request and what they stand for.
#[derive(Debug, Clone, Default)]
pub struct Vault {
    /// Placeholder to original.
    originals: HashMap<String, String>,
    /// (label, original) to placeholder.
    placeholders: HashMap<(String, String), String>,
    /// Placeholders issued per label.
    counts: HashMap<String, usize>,
    longest: usize,
}

/// What masking a text did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Masked {
    /// Entities replaced.
    pub entities: usize,
}

impl Vault {
    pub fn is_empty(&self) -> bool {
        self.originals.is_empty()
    }

    /// Placeholders issued.
    pub fn len(&self) -> usize {
        self.originals.len()
    }

    /// The placeholder for `original` of `label`, issued on first sight.
    pub fn placeholder(&mut self, label: &str, original: &str) -> &str {
        let key = (label.to_string(), original.to_string());
        if !self.placeholders.contains_key(&key) {
            let n = self.counts.entry(label.to_string()).or_insert(0);
            *n += 1;
            let p = format!("<{label}_{n}>");
            self.longest = self.longest.max(p.len());
            self.originals.insert(p.clone(), original.to_string());
            self.placeholders.insert(key.clone(), p);
        }
        self.placeholders.get(&key).map(String::as_str).unwrap_or_default()
    }

    /// The original a placeholder stands for.
    pub fn original(&self, placeholder: &str) -> Option<&str> {
        self.originals.get(placeholder).map(String::as_str)
    }

    /// Whether `tail` (starting with `<`) could still grow into a placeholder.
    pub fn could_start(&self, tail: &str) -> bool {
        tail.len() < self.longest && self.originals.keys().any(|p| p.starts_with(tail))
    }

    /// `text` with every placeholder of this vault replaced by its original.
    pub fn restore<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.replace(text, |o, out| out.push_str(o))
    }

    /// The same inside JSON: originals are JSON-escaped, as they land inside strings.
    pub fn restore_json<'t>(&self, json: &'t str) -> Cow<'t, str> {
        self.replace(json, |o, out| {
            let quoted = serde_json::Value::String(o.to_string()).to_string();
            out.push_str(&quoted[1..quoted.len() - 1]);
        })
    }

    fn replace<'t>(&self, text: &'t str, put: impl Fn(&str, &mut String)) -> Cow<'t, str> {
        if self.is_empty() {
            return Cow::Borrowed(text);
        }
        let b = text.as_bytes();
        let mut out: Option<String> = None;
        let (mut copied, mut i) = (0, 0);
        while let Some(k) = memchr(b'<', &b[i..]) {
            let start = i + k;
            let end = match memchr(b'>', &b[start..]) {
                Some(e) if e < self.longest => start + e + 1,
                _ => {
                    i = start + 1;
                    continue;
                }
            };
            if let Some(original) = self.original(&text[start..end]) {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len() + 64));
                o.push_str(&text[copied..start]);
                put(original, o);
                copied = end;
                i = end;
            } else {
                i = start + 1;
            }
        }
        match out {
            Some(mut o) => {
                o.push_str(&text[copied..]);
                Cow::Owned(o)
            }
            None => Cow::Borrowed(text),
        }
    }
}

/// Replaces every entity `recognisers` find in `text` by its placeholder;
/// `scratch` is reused between calls.
pub fn mask(recognisers: &Recognisers, text: &mut String, vault: &mut Vault, scratch: &mut Vec<Found>) -> Masked {
    recognisers.find(text, scratch);
    if scratch.is_empty() {
        return Masked::default();
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for f in scratch.iter() {
        out.push_str(&text[copied..f.start]);
        out.push_str(vault.placeholder(recognisers.label(f.kind), &text[f.start..f.end]));
        copied = f.end;
    }
    out.push_str(&text[copied..]);
    *text = out;
    Masked { entities: scratch.len() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::Kind;

    fn recognisers() -> Recognisers {
        Recognisers::new(&[Kind::Email, Kind::CreditCard], &[]).unwrap()
    }

    #[test]
    fn one_placeholder_per_distinct_entity() {
        let (mut vault, mut scratch) = (Vault::default(), Vec::new());
        let mut a = "a@x.io wrote to b@y.io, cc a@x.io".to_string();
        let m = mask(&recognisers(), &mut a, &mut vault, &mut scratch);
        assert_eq!(a, "<EMAIL_1> wrote to <EMAIL_2>, cc <EMAIL_1>");
        assert_eq!((m.entities, vault.len()), (3, 2));
        // Another text of the same request shares the vault.
        let mut b = "card 4111111111111111 of b@y.io".to_string();
        mask(&recognisers(), &mut b, &mut vault, &mut scratch);
        assert_eq!(b, "card <CREDIT_CARD_1> of <EMAIL_2>");
    }

    #[test]
    fn restores_text_and_json() {
        let mut vault = Vault::default();
        vault.placeholder("EMAIL", "a@x.io");
        vault.placeholder("NAME", "Jo \"the\" Doe");
        assert_eq!(vault.restore("hi <EMAIL_1>, <EMAIL_9> <b>"), "hi a@x.io, <EMAIL_9> <b>");
        let json = r#"{"content":"<NAME_1> at <EMAIL_1>"}"#;
        let restored = vault.restore_json(json);
        assert_eq!(restored, r#"{"content":"Jo \"the\" Doe at a@x.io"}"#);
        let v: serde_json::Value = serde_json::from_str(&restored).unwrap();
        assert_eq!(v["content"], "Jo \"the\" Doe at a@x.io");
        assert!(matches!(vault.restore("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_prefix_is_known_while_it_could_grow_into_a_placeholder() {
        let mut vault = Vault::default();
        vault.placeholder("EMAIL", "a@x.io");
        assert!(vault.could_start("<"));
        assert!(vault.could_start("<EMA"));
        assert!(!vault.could_start("<EMX"));
        assert!(!vault.could_start("<EMAIL_1>"));
    }
}
