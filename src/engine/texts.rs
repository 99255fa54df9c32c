//! Compact storage for the strings the engine keeps for explanations (event
//! ids and titles): one growing buffer and 8-byte handles, instead of an
//! allocation per string.

use std::num::NonZeroU64;

/// Bits of a handle that hold the length; the rest hold the start offset.
const LEN_BITS: u32 = 24;
const MAX_LEN: usize = (1 << LEN_BITS) - 1;
const MAX_START: u64 = (1 << (64 - LEN_BITS)) - 2;

/// A handle to one stored string: start offset (40 bits, 1 TiB) and length
/// (24 bits, 16 MiB), plus one so that `Option<TextRef>` is also 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRef(NonZeroU64);

impl TextRef {
    fn new(start: u64, len: usize) -> Self {
        assert!(start <= MAX_START && len <= MAX_LEN, "text arena exhausted");
        let packed = (start << LEN_BITS | len as u64) + 1;
        Self(NonZeroU64::new(packed).expect("non-zero after adding one"))
    }

    fn start(self) -> usize {
        ((self.0.get() - 1) >> LEN_BITS) as usize
    }

    fn len(self) -> usize {
        ((self.0.get() - 1) & MAX_LEN as u64) as usize
    }
}

#[derive(Debug, Default)]
pub struct Texts {
    buf: String,
}

impl Texts {
    /// Stores a string (at most 16 MiB; event limits keep them far smaller).
    pub fn push(&mut self, s: &str) -> TextRef {
        let r = TextRef::new(self.buf.len() as u64, s.len());
        self.buf.push_str(s);
        r
    }

    pub fn get(&self, r: TextRef) -> &str {
        &self.buf[r.start()..r.start() + r.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_small_and_round_trip() {
        assert_eq!(size_of::<Option<TextRef>>(), 8);
        let mut t = Texts::default();
        let a = t.push("");
        let b = t.push("H20 licence");
        let c = t.push("华为");
        assert_eq!((t.get(a), t.get(b), t.get(c)), ("", "H20 licence", "华为"));
    }
}
