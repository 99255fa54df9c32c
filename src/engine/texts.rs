//! Compact storage for the strings the engine keeps for explanations (event
//! ids and titles): one growing buffer and small handles, instead of an
//! allocation per string.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextRef {
    start: u64,
    len: u32,
}

#[derive(Debug, Default)]
pub struct Texts {
    buf: String,
}

impl Texts {
    pub fn push(&mut self, s: &str) -> TextRef {
        let start = self.buf.len() as u64;
        self.buf.push_str(s);
        TextRef {
            start,
            len: s.len() as u32,
        }
    }

    pub fn get(&self, r: TextRef) -> &str {
        &self.buf[r.start as usize..r.start as usize + r.len as usize]
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }
}
