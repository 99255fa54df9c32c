//! A fast path for the common shape of an event: a flat JSON object whose
//! strings have no escapes and whose unknown fields hold scalars.
//!
//! [`scan`] either returns exactly what the general serde path would
//! produce, or `None` when the input is anything else (escapes, nesting in
//! an unknown field, any syntax error, a number it does not handle); the
//! caller then takes the general path, which also words every error. It
//! never rejects anything by itself, so it cannot change what is accepted
//! or what a rejection says. A property test and the `decode` fuzz target
//! compare the two paths.

use super::{field_index, RawEvent, MAX_UNKNOWN_FIELDS};
use std::borrow::Cow;
use std::collections::HashSet;

/// The raw fields of `text`, or `None` to say "take the general path".
pub(super) fn scan(text: &str) -> Option<RawEvent<'_>> {
    let mut p = Cursor { text, at: 0 };
    let mut raw = RawEvent { free_of_controls: true, ..RawEvent::default() };
    let mut seen = 0u16;
    // Unknown keys, for duplicate detection: a set made at the first one
    // (most events have none), so that thousands of them cost linear time.
    // std's hasher: the keys come from producers, and SipHash with random
    // keys resists crafted collisions.
    let mut unknown: Option<HashSet<&str>> = None;
    p.skip_ws();
    p.expect(b'{')?;
    p.skip_ws();
    if p.peek()? == b'}' {
        p.at += 1;
    } else {
        loop {
            let key = p.string()?;
            p.skip_ws();
            p.expect(b':')?;
            p.skip_ws();
            match field_index(key) {
                None => {
                    let seen_unknown = unknown.get_or_insert_with(HashSet::new);
                    // A duplicate, or too many: the general path says which.
                    if !seen_unknown.insert(key) || seen_unknown.len() > MAX_UNKNOWN_FIELDS {
                        return None;
                    }
                    p.scalar()?;
                }
                Some(index) => {
                    if seen & (1 << index) != 0 {
                        return None;
                    }
                    seen |= 1 << index;
                    match index {
                        0 => raw.id = Some(p.text()?),
                        1 => raw.kind = Some(p.text()?),
                        2 => raw.occurred_at = Some(p.text()?),
                        3 => raw.vendors = Some(p.strings()?),
                        4 => raw.products = p.nullable(Cursor::strings)?,
                        5 => raw.severity = p.nullable(Cursor::number)?,
                        6 => raw.confidence = p.nullable(Cursor::number)?,
                        7 => raw.value = p.nullable(Cursor::number)?,
                        8 => raw.actor = p.nullable(Cursor::text)?,
                        9 => raw.title = p.nullable(Cursor::text)?,
                        10 => raw.source_url = p.nullable(Cursor::text)?,
                        _ => raw.schema_version = p.nullable(Cursor::unsigned)?,
                    }
                }
            }
            p.skip_ws();
            match p.next()? {
                b',' => p.skip_ws(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    p.skip_ws();
    (p.at == text.len()).then_some(raw)
}

/// The position of the first byte that ends a plain string: `"`, `\\`, a
/// byte below 0x20 (JSON forbids those raw), DEL, or 0xC2 (which starts the
/// C1 control characters U+0080..U+009F, and a few printable ones that the
/// general path then handles). Eight bytes at a time: a byte is flagged when
/// it equals one of the bytes (its XOR with that byte is below 1) or is
/// below 0x20. The lowest flag is exact.
fn special_byte(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let equal = |b: u8| below(x ^ (ONES * u64::from(b)), 1);
        let flags = equal(b'"') | equal(b'\\') | equal(0x7F) | equal(0xC2) | below(x, 0x20);
        if flags != 0 {
            return Some(offset + flags.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| matches!(b, b'"' | b'\\' | 0x7F | 0xC2) || b < 0x20).map(|i| offset + i)
}

/// A number without exponent and with at most 15 digits, such as `0.73`:
/// its digits make an integer below 2^53 and its scale a power of ten up
/// to 10^15, both exact in `f64`, so one division rounds it correctly
/// (Clinger's fast path). `None` for anything else.
fn short_decimal(text: &str) -> Option<f64> {
    const POWERS: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text),
    };
    let (mut digits, mut scale, mut fraction) = (0u64, 0usize, false);
    let mut count = 0;
    for b in body.bytes() {
        match b {
            b'0'..=b'9' => {
                digits = digits * 10 + u64::from(b - b'0');
                count += 1;
                scale += usize::from(fraction);
            }
            b'.' => fraction = true,
            _ => return None,
        }
        if count > 15 {
            return None;
        }
    }
    let value = digits as f64 / POWERS[scale];
    Some(if negative { -value } else { value })
}

struct Cursor<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// `null` (then `None`), or what `value` reads.
    fn nullable<T>(&mut self, value: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        if self.bytes()[self.at..].starts_with(b"null") {
            self.at += 4;
            Some(None)
        } else {
            value(self).map(Some)
        }
    }

    /// A string without escapes or raw control characters.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.at;
        let end = start + special_byte(&self.bytes()[start..])?;
        // Escapes, raw control bytes, DEL and 0xC2 go to the general path.
        if self.bytes()[end] != b'"' {
            return None;
        }
        self.at = end + 1;
        // Both ends are next to an ASCII quote, so they are character boundaries.
        self.text.get(start..end)
    }

    fn text(&mut self) -> Option<Cow<'a, str>> {
        self.string().map(Cow::Borrowed)
    }

    /// An array of strings (possibly empty).
    fn strings(&mut self) -> Option<Vec<Cow<'a, str>>> {
        self.expect(b'[')?;
        self.skip_ws();
        let mut out = Vec::new();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(out);
        }
        loop {
            out.push(Cow::Borrowed(self.string()?));
            self.skip_ws();
            match self.next()? {
                b',' => self.skip_ws(),
                b']' => return Some(out),
                _ => return None,
            }
        }
    }

    /// The text of a JSON number, checked against the grammar
    /// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`, and whether it is
    /// an integer (no fraction, no exponent).
    fn number_text(&mut self) -> Option<(&'a str, bool)> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.one_or_more_digits()?;
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.one_or_more_digits()?;
            integer = false;
        }
        Some((&self.text[start..self.at], integer))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.at += 1;
        }
    }

    fn one_or_more_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// A number as `f64`, correctly rounded as serde_json reads it with
    /// `float_roundtrip` (integers too: `-0` is `-0.0`); anything out of
    /// range goes to the general path.
    fn number(&mut self) -> Option<f64> {
        let (text, _) = self.number_text()?;
        short_decimal(text).or_else(|| text.parse::<f64>().ok().filter(|v| v.is_finite()))
    }

    /// A non-negative integer that fits `u64` in at most 19 digits.
    fn unsigned(&mut self) -> Option<u64> {
        let (text, integer) = self.number_text()?;
        if !integer || text.starts_with('-') || text.len() > 19 {
            return None;
        }
        text.parse().ok()
    }

    /// Any scalar (the value of an unknown field): a string, a number,
    /// `true`, `false` or `null`. Arrays and objects go to the general path.
    fn scalar(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            // Numbers too large for a double are refused by the general path.
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => {
                let rest = &self.bytes()[self.at..];
                let len = [&b"true"[..], b"false", b"null"].into_iter().find(|w| rest.starts_with(w))?.len();
                self.at += len;
                Some(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_general;
    use super::*;
    use proptest::prelude::*;

    /// The fast path's answer, when it gives one, is the general path's to
    /// the bit (compared through `Debug`, which tells `-0.0` from `0.0`).
    fn agrees(text: &str) -> Result<bool, TestCaseError> {
        match scan(text) {
            None => Ok(false),
            Some(raw) => {
                let general = parse_general(text).map(|g| RawEvent { free_of_controls: true, ..g });
                prop_assert!(general.is_ok(), "fast path accepted what serde_json refuses: {text:?} {general:?}");
                prop_assert_eq!(format!("{raw:?}"), format!("{:?}", general.unwrap()), "input {:?}", text);
                Ok(true)
            }
        }
    }

    #[test]
    fn special_bytes_are_found_at_every_offset() {
        for len in 0..20 {
            for at in 0..len {
                for special in [b'"', b'\\', 0, 0x1F, 0x7F, 0xC2] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(special_byte(&bytes), Some(at), "{bytes:?}");
                }
                // Bytes near the special ones are not flagged.
                let bytes: Vec<u8> =
                    (0..len).map(|i| [b' ', b'#', b'!', b'[', b']', 0x7E, 0xFF, 0xC3][i % 8]).collect();
                assert_eq!(special_byte(&bytes), None);
            }
        }
    }

    #[test]
    fn short_decimals_are_correctly_rounded() {
        for text in ["0", "-0", "-0.0", "0.1", "0.3", "0.73", "-0.999", "1", "123456789012345", "0.00000000000001"] {
            let want: f64 = text.parse().unwrap();
            assert_eq!(short_decimal(text).map(f64::to_bits), Some(want.to_bits()), "{text}");
        }
        assert_eq!(short_decimal("1234567890123456"), None);
        assert_eq!(short_decimal("0.000000000000001"), None);
        assert_eq!(short_decimal("1e3"), None);
    }

    #[test]
    fn synthetic_events_take_the_fast_path() {
        let mut g = crate::synthetic::Generator::new(7);
        for _ in 0..1000 {
            let e = g.event();
            assert!(agrees(&e).unwrap(), "{e}");
        }
    }

    #[test]
    fn odd_numbers_and_escapes_agree_or_defer() {
        for value in [
            "0",
            "-0",
            "-0.0",
            "1",
            "1.0",
            "0.5",
            "1e0",
            "1E+2",
            "5e-1",
            "-1",
            "01",
            "1.",
            ".5",
            "-",
            "+1",
            "1e",
            "1e400",
            "123456789012345678",
            "1234567890123456789",
            "99999999999999999999",
            "0.1000000000000000055511151231257827",
            "null",
            "true",
            "\"0.5\"",
            "[1]",
            "NaN",
        ] {
            for key in ["severity", "schema_version", "x"] {
                agrees(&format!(r#"{{"id":"a","{key}":{value}}}"#)).unwrap();
            }
        }
        for s in [r#""a\"b""#, r#""\u0041""#, "\"a\tb\"", r#""é✓""#, r#""""#, "\"a\u{7f}\"", "\"\u{85}\"", "\"£\""]
        {
            let text = format!(r#"{{"id":{s},"vendors":[{s}],"title":{s},{s}:{s}}}"#);
            agrees(&text).unwrap();
        }
        assert!(scan(r#"{"id":"a","vendors":["x"]}"#).is_some());
        assert!(scan(r#"{"id":"a\"b"}"#).is_none());
    }

    /// Pieces of events: real field names and values of every JSON kind,
    /// right and wrong.
    fn piece() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("id"),
            Just("type"),
            Just("occurred_at"),
            Just("vendors"),
            Just("products"),
            Just("severity"),
            Just("confidence"),
            Just("value"),
            Just("title"),
            Just("schema_version"),
            Just("extra"),
            Just("x"),
        ];
        let value = prop_oneof![
            "\"[a-z0-9 \\\\\"\\t\u{e9}-]{0,6}\"",
            "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?",
            "[-+.0-9eE]{1,5}",
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("[\"nvidia\",\"amd\"]".to_owned()),
            Just("[ ]".to_owned()),
            Just("[\"a\",]".to_owned()),
            Just("{\"k\":[1]}".to_owned()),
        ];
        (key, "[ \t\r\n]{0,2}", value).prop_map(|(k, ws, v)| format!("\"{k}\"{ws}:{ws}{v}"))
    }

    proptest! {
        #[test]
        fn short_decimals_match_the_standard_parser(text in "-?(0|[1-9][0-9]{0,9})(\\.[0-9]{1,9})?") {
            let want: f64 = text.parse().unwrap();
            if let Some(v) = short_decimal(&text) {
                prop_assert_eq!(v.to_bits(), want.to_bits());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn the_fast_path_agrees_with_serde_json(
            pieces in prop::collection::vec(piece(), 0..8),
            sep in prop_oneof![Just(","), Just(" , "), Just(",,"), Just("")],
            tail in prop_oneof![Just(""), Just(" "), Just("x"), Just("}"), Just("\n")],
        ) {
            let text = format!("{{{}}}{tail}", pieces.join(sep));
            agrees(&text)?;
        }
    }
}
