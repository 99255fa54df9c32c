//! Follows a JSON-lines file: reads it from the start, then picks up lines
//! appended later. A file that shrinks (truncated or replaced) is read again
//! from the start; event-id idempotency makes the re-read harmless.

use super::lines::{Line, LineSplitter};
use anyhow::Context;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub struct FileFollower {
    path: PathBuf,
    limit: usize,
    splitter: LineSplitter,
    /// Bytes consumed so far.
    offset: u64,
    buf: Vec<u8>,
}

impl FileFollower {
    /// Checks that the file can be read; reading starts at its beginning.
    pub fn open(path: &Path, limit: usize) -> anyhow::Result<Self> {
        File::open(path).with_context(|| format!("Failed to open the event file {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            limit,
            splitter: LineSplitter::new(limit),
            offset: 0,
            buf: vec![0; 256 * 1024],
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads up to `max_bytes` of what was appended since the last call and
    /// calls `f` for each complete line. Returns the bytes read (0 at the end).
    pub fn poll(&mut self, max_bytes: usize, f: &mut impl FnMut(u64, Line<'_>)) -> anyhow::Result<usize> {
        let mut file = File::open(&self.path).with_context(|| format!("Failed to open {}", self.path.display()))?;
        let len = file.metadata().context("Failed to read the event file's size")?.len();
        if len < self.offset {
            tracing::warn!(path = %self.path.display(), size = len, offset = self.offset, "event file shrank; reading it again from the start");
            self.offset = 0;
            self.splitter = LineSplitter::new(self.limit);
        }
        file.seek(SeekFrom::Start(self.offset)).context("Failed to seek in the event file")?;
        let mut total = 0;
        while total < max_bytes {
            let n = file.read(&mut self.buf).context("Failed to read the event file")?;
            if n == 0 {
                break;
            }
            self.splitter.push(&self.buf[..n], f);
            self.offset += n as u64;
            total += n;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(f: &mut FileFollower) -> Vec<String> {
        let mut out = Vec::new();
        f.poll(usize::MAX, &mut |_, l| {
            if let Line::Text(t) = l {
                out.push(String::from_utf8(t.to_vec()).unwrap())
            }
        })
        .unwrap();
        out
    }

    #[test]
    fn appended_lines_are_picked_up_and_partial_lines_wait_for_their_end() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "a\nb").unwrap();
        let mut f = FileFollower::open(file.path(), 1024).unwrap();
        assert_eq!(collect(&mut f), ["a"]);
        write!(file, "c\nd\n").unwrap();
        assert_eq!(collect(&mut f), ["bc", "d"]);
        assert!(collect(&mut f).is_empty());
    }

    #[test]
    fn a_truncated_file_is_read_again_from_the_start() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "first\nsecond\n").unwrap();
        let mut f = FileFollower::open(file.path(), 1024).unwrap();
        assert_eq!(collect(&mut f).len(), 2);
        file.as_file().set_len(0).unwrap();
        file.as_file_mut().seek(SeekFrom::Start(0)).unwrap();
        writeln!(file, "new").unwrap();
        assert_eq!(collect(&mut f), ["new"]);
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let e = FileFollower::open(Path::new("/no/such/events.jsonl"), 10).err().unwrap();
        assert!(format!("{e:#}").contains("/no/such/events.jsonl"));
    }
}
