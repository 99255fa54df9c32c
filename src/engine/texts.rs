//! Compact storage for the strings the engine keeps for explanations (event
//! ids and titles): fixed-size chunks and 8-byte handles, instead of an
//! allocation per string. Chunks never move, so growing the store copies
//! nothing and never holds two copies at once.

use std::num::NonZeroU64;

/// Bits of a handle for the length, the offset within a chunk, and the chunk.
const LEN_BITS: u32 = 24;
const OFFSET_BITS: u32 = 20;
const MAX_LEN: usize = (1 << LEN_BITS) - 1;
const CHUNK_BYTES: usize = 1 << OFFSET_BITS;
const MAX_CHUNKS: usize = (1 << (64 - LEN_BITS - OFFSET_BITS)) - 1;

/// A handle to one stored string: chunk (20 bits), offset in the chunk (20
/// bits, chunks are 1 MiB) and length (24 bits, 16 MiB), plus one so that
/// `Option<TextRef>` is also 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextRef(NonZeroU64);

impl TextRef {
    fn new(chunk: usize, offset: usize, len: usize) -> Self {
        assert!(chunk < MAX_CHUNKS && offset < CHUNK_BYTES && len <= MAX_LEN, "text store exhausted");
        let packed = ((chunk as u64) << (OFFSET_BITS + LEN_BITS) | (offset as u64) << LEN_BITS | len as u64) + 1;
        Self(NonZeroU64::new(packed).expect("non-zero after adding one"))
    }

    fn parts(self) -> (usize, usize, usize) {
        let packed = self.0.get() - 1;
        let len = (packed & MAX_LEN as u64) as usize;
        let offset = ((packed >> LEN_BITS) as usize) & (CHUNK_BYTES - 1);
        let chunk = (packed >> (OFFSET_BITS + LEN_BITS)) as usize;
        (chunk, offset, len)
    }
}

#[derive(Debug, Default)]
pub struct Texts {
    /// Each chunk is allocated with [`CHUNK_BYTES`] and filled to less than
    /// that, so it never reallocates; a longer string gets a chunk of its own.
    chunks: Vec<String>,
}

impl Texts {
    /// Stores a string (at most 16 MiB; event limits keep them far smaller).
    pub fn push(&mut self, s: &str) -> TextRef {
        // Strictly below, so that even an empty string's offset fits its bits.
        let fits = self.chunks.last().is_some_and(|c| c.len() + s.len() < CHUNK_BYTES);
        if !fits {
            self.chunks.push(String::with_capacity(s.len().max(CHUNK_BYTES)));
        }
        let chunk = self.chunks.len() - 1;
        let buf = &mut self.chunks[chunk];
        let r = TextRef::new(chunk, buf.len(), s.len());
        buf.push_str(s);
        r
    }

    pub fn get(&self, r: TextRef) -> &str {
        let (chunk, offset, len) = r.parts();
        &self.chunks[chunk][offset..offset + len]
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

    #[test]
    fn strings_spill_into_new_chunks_and_long_ones_get_their_own() {
        let mut t = Texts::default();
        let filler = "x".repeat(CHUNK_BYTES - 4);
        let a = t.push(&filler);
        let b = t.push("four");
        let long = "y".repeat(CHUNK_BYTES + 5);
        let c = t.push(&long);
        let d = t.push("z");
        assert_eq!(t.chunks.len(), 4);
        assert_eq!((t.get(a), t.get(b), t.get(c), t.get(d)), (&*filler, "four", &*long, "z"));
    }
}
