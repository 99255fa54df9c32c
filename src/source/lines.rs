//! Splits a byte stream into JSON lines, whatever the chunk boundaries,
//! without ever holding more than the size limit of one line.

/// One line as delivered to the caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line, without its line ending.
    Text(&'a [u8]),
    /// A line longer than the limit; its bytes were dropped.
    TooLong(usize),
}

/// Push-based line splitter. Blank lines are counted but not delivered.
#[derive(Debug)]
pub struct LineSplitter {
    limit: usize,
    pending: Vec<u8>,
    /// Length of the current line once it passed the limit.
    overflow: Option<usize>,
    line_no: u64,
}

impl LineSplitter {
    pub fn new(limit: usize) -> Self {
        Self { limit, pending: Vec::new(), overflow: None, line_no: 0 }
    }

    /// Feeds bytes; calls `f(line_number, line)` for each complete line.
    pub fn push(&mut self, mut data: &[u8], f: &mut impl FnMut(u64, Line<'_>)) {
        while !data.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(i) if self.pending.is_empty() && self.overflow.is_none() => {
                    // The whole line is in this chunk: hand it over without copying.
                    self.line_no += 1;
                    deliver(self.line_no, &data[..i], self.limit, f);
                    data = &data[i + 1..];
                }
                Some(i) => {
                    self.extend(&data[..i]);
                    self.emit(f);
                    data = &data[i + 1..];
                }
                None => {
                    self.extend(data);
                    break;
                }
            }
        }
    }

    /// Delivers a last line that had no line ending.
    pub fn finish(&mut self, f: &mut impl FnMut(u64, Line<'_>)) {
        if !self.pending.is_empty() || self.overflow.is_some() {
            self.emit(f);
        }
    }

    /// Bytes held of an unfinished line.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn extend(&mut self, bytes: &[u8]) {
        match &mut self.overflow {
            Some(n) => *n += bytes.len(),
            None if self.pending.len() + bytes.len() > self.limit + 1 => {
                // +1 leaves room for a '\r' the limit does not count.
                self.overflow = Some(self.pending.len() + bytes.len());
                self.pending = Vec::new();
            }
            None => self.pending.extend_from_slice(bytes),
        }
    }

    fn emit(&mut self, f: &mut impl FnMut(u64, Line<'_>)) {
        self.line_no += 1;
        if let Some(n) = self.overflow.take() {
            f(self.line_no, Line::TooLong(n));
            return;
        }
        deliver(self.line_no, &self.pending, self.limit, f);
        self.pending.clear();
    }
}

/// Strips a trailing '\r', skips blank lines, and reports over-long ones.
fn deliver(line_no: u64, line: &[u8], limit: usize, f: &mut impl FnMut(u64, Line<'_>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > limit {
        f(line_no, Line::TooLong(line.len()));
    } else if !line.iter().all(u8::is_ascii_whitespace) {
        f(line_no, Line::Text(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], limit: usize) -> Vec<(u64, String)> {
        let mut s = LineSplitter::new(limit);
        let mut out = Vec::new();
        let mut f = |n, l: Line<'_>| {
            out.push((
                n,
                match l {
                    Line::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    Line::TooLong(len) => format!("<{len}>"),
                },
            ))
        };
        for c in chunks {
            s.push(c, &mut f);
        }
        s.finish(&mut f);
        out
    }

    #[test]
    fn lines_are_the_same_whatever_the_chunking() {
        let whole = split(&[b"a\nbb\r\n\n  \nccc"], 100);
        assert_eq!(whole, [(1, "a".into()), (2, "bb".into()), (5, "ccc".into())]);
        let bytewise: Vec<&[u8]> = b"a\nbb\r\n\n  \nccc".chunks(1).collect();
        assert_eq!(split(&bytewise, 100), whole);
    }

    #[test]
    fn over_long_lines_are_reported_with_their_length_and_not_kept() {
        let out = split(&[b"ok\n", &[b'x'; 50], &[b'x'; 50], b"\nnext\n"], 10);
        assert_eq!(out, [(1, "ok".into()), (2, "<100>".into()), (3, "next".into())]);
        assert_eq!(split(&[b"0123456789\r\n"], 10), [(1, "0123456789".into())]);
    }
}
