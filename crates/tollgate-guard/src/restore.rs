//! Restoring placeholders in a stream, whose text arrives in pieces: a
//! placeholder may be split between two events (`<EMA` then `IL_1>`). The
//! restorer holds back only the tail of a piece that could still grow into
//! one of the request's placeholders, and releases it with the next piece
//! (or at the end, as it was).

use crate::mask::Vault;

#[derive(Debug, Default)]
pub struct StreamRestorer {
    carry: String,
}

impl StreamRestorer {
    /// The text to send now for `piece`, placeholders restored.
    pub fn push(&mut self, vault: &Vault, piece: &str) -> String {
        let mut text = std::mem::take(&mut self.carry);
        text.push_str(piece);
        let hold = held_tail(vault, &text);
        self.carry = text[hold..].to_string();
        text.truncate(hold);
        vault.restore(&text).into_owned()
    }

    /// What is still held back (the stream ends, or a non-text event comes).
    pub fn flush(&mut self) -> String {
        std::mem::take(&mut self.carry)
    }

    pub fn holds(&self) -> bool {
        !self.carry.is_empty()
    }
}

/// Where the held-back tail of `text` starts (`text.len()`: nothing held).
fn held_tail(vault: &Vault, text: &str) -> usize {
    match text.rfind('<') {
        Some(at) if vault.could_start(&text[at..]) => at,
        _ => text.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault() -> Vault {
        let mut v = Vault::default();
        v.placeholder("EMAIL", "a@x.io");
        v.placeholder("PHONE", "+14155552671");
        v
    }

    /// The stream of `pieces` as the client reads it.
    fn relay(pieces: &[&str]) -> (Vec<String>, String) {
        let (v, mut r) = (vault(), StreamRestorer::default());
        let out: Vec<String> = pieces.iter().map(|p| r.push(&v, p)).collect();
        let tail = r.flush();
        (out, tail)
    }

    #[test]
    fn a_placeholder_split_across_pieces_is_restored_whole() {
        let (out, tail) = relay(&["mail <EMA", "IL_1", "> now"]);
        assert_eq!(out, vec!["mail ", "", "a@x.io now"]);
        assert_eq!(tail, "");
    }

    #[test]
    fn every_split_point_gives_the_same_text() {
        let text = "call <PHONE_1> or <EMAIL_1>, not <EMAIL_7> or a < b";
        let want = "call +14155552671 or a@x.io, not <EMAIL_7> or a < b";
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let (out, tail) = relay(&[&text[..i], &text[i..j], &text[j..]]);
                assert_eq!(out.concat() + &tail, want, "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn only_a_possible_placeholder_prefix_is_held() {
        let (v, mut r) = (vault(), StreamRestorer::default());
        assert_eq!(r.push(&v, "a <b"), "a <b");
        assert_eq!(r.push(&v, "x <PH"), "x ");
        assert!(r.holds());
        assert_eq!(r.flush(), "<PH");
    }
}
