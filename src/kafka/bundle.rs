//! Bundles: many routed copies in one record of the repartition topic.
//!
//! Every record that crosses the broker costs the producer, the broker and
//! the consumer a fixed amount on top of its bytes; at high rates that cost,
//! paid twice per copy (produced, then read back), was most of chiprisk's
//! (BENCHMARKS.md §4). So one turn of the loop sends the copies it routes to
//! a partition as one record (or a few, each at most
//! `kafka.repartition_bundle_bytes`), keyed [`KEY`].
//!
//! Layout of the record's value: entries back to back, each
//! - the copy's key ([`CopyKey`](super::copy_key::CopyKey)): its length in
//!   one byte, then its bytes;
//! - the original message's timestamp: 8 bytes, big-endian milliseconds
//!   since the epoch, [`NO_TIMESTAMP`] if it had none;
//! - the event: its length in 4 bytes, big-endian, then its bytes unchanged.
//!
//! A record with any other key is one copy, as earlier versions wrote them.

use std::collections::BTreeMap;

/// The key of a bundle record.
pub const KEY: &[u8] = b"chiprisk.bundle.v1";

/// The timestamp field of an entry whose message had none.
const NO_TIMESTAMP: i64 = i64::MIN;

/// What a new bundle reserves, unless the limit or its first entry is larger.
const INITIAL_CAPACITY: usize = 16 * 1024;

/// Bytes an entry takes besides its key and event.
const FRAMING: usize = 1 + 8 + 4;

/// One routed copy inside a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    pub timestamp_ms: Option<i64>,
    pub payload: &'a [u8],
}

/// Bundles being filled for one turn of the loop, per partition.
#[derive(Debug)]
pub struct Bundler {
    max_bytes: usize,
    open: BTreeMap<i32, Vec<u8>>,
    full: Vec<(i32, Vec<u8>)>,
}

impl Bundler {
    /// Bundles of at most `max_bytes` each, unless one entry alone is larger
    /// (it then travels alone).
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes, open: BTreeMap::new(), full: Vec::new() }
    }

    pub fn push(&mut self, partition: i32, entry: Entry<'_>) {
        let key_len = u8::try_from(entry.key.len()).expect("copy keys are short");
        let payload_len = u32::try_from(entry.payload.len()).expect("events are far below 4 GiB");
        let size = FRAMING + entry.key.len() + entry.payload.len();
        let bundle = self.open.entry(partition).or_default();
        if !bundle.is_empty() && bundle.len() + size > self.max_bytes {
            self.full.push((partition, std::mem::take(bundle)));
        }
        // A new bundle starts with room for more: under load most are tens
        // of KiB, and this saves their regrowths.
        let room = if bundle.is_empty() { size.max(self.max_bytes.min(INITIAL_CAPACITY)) } else { size };
        bundle.reserve(room);
        bundle.push(key_len);
        bundle.extend_from_slice(entry.key);
        bundle.extend_from_slice(&entry.timestamp_ms.unwrap_or(NO_TIMESTAMP).to_be_bytes());
        bundle.extend_from_slice(&payload_len.to_be_bytes());
        bundle.extend_from_slice(entry.payload);
    }

    /// The bundles (partition, value), each partition's in the order its
    /// entries were pushed.
    pub fn finish(mut self) -> Vec<(i32, Vec<u8>)> {
        self.full.extend(self.open);
        self.full
    }
}

/// Where and why a bundle's framing broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bundle entry at byte {at} is cut short: {what} needs {needed} bytes, {left} are left")]
pub struct Broken {
    /// The offset within the value where the broken entry starts.
    pub at: usize,
    pub what: &'static str,
    pub needed: usize,
    pub left: usize,
}

/// The entries of a bundle's value, in order; after a [`Broken`] entry,
/// nothing more.
pub fn entries(value: &[u8]) -> Entries<'_> {
    Entries { value, at: 0 }
}

pub struct Entries<'a> {
    value: &'a [u8],
    at: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, Broken>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.value.len() {
            return None;
        }
        let start = self.at;
        let mut rest = &self.value[start..];
        let mut take = |what: &'static str, needed: usize| -> Result<&'a [u8], Broken> {
            if rest.len() < needed {
                return Err(Broken { at: start, what, needed, left: rest.len() });
            }
            let (head, tail) = rest.split_at(needed);
            rest = tail;
            Ok(head)
        };
        let entry = (|| {
            let key_len = usize::from(take("the key's length", 1)?[0]);
            let key = take("the key", key_len)?;
            let ts = i64::from_be_bytes(take("the timestamp", 8)?.try_into().expect("8 bytes"));
            let len = u32::from_be_bytes(take("the event's length", 4)?.try_into().expect("4 bytes"));
            let payload = take("the event", len as usize)?;
            Ok(Entry { key, timestamp_ms: (ts != NO_TIMESTAMP).then_some(ts), payload })
        })();
        self.at = match entry {
            Ok(_) => self.value.len() - rest.len(),
            Err(_) => self.value.len(),
        };
        Some(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Entries as owned (key, timestamp, payload), per partition.
    type ByPartition = BTreeMap<i32, Vec<(Vec<u8>, Option<i64>, Vec<u8>)>>;

    fn entry<'a>(key: &'a [u8], timestamp_ms: Option<i64>, payload: &'a [u8]) -> Entry<'a> {
        Entry { key, timestamp_ms, payload }
    }

    #[test]
    fn entries_come_back_per_partition_in_order() {
        let mut b = Bundler::new(1 << 20);
        b.push(3, entry(b"k1", Some(1_700_000_000_000), b"{\"a\":1}"));
        b.push(0, entry(b"", None, b""));
        b.push(3, entry(b"k2", Some(-5), b"{}"));
        let bundles = b.finish();
        assert_eq!(bundles.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [0, 3]);
        let three: Vec<_> = entries(&bundles[1].1).collect::<Result<_, _>>().unwrap();
        assert_eq!(three, [entry(b"k1", Some(1_700_000_000_000), b"{\"a\":1}"), entry(b"k2", Some(-5), b"{}")]);
        assert_eq!(entries(&bundles[0].1).collect::<Vec<_>>(), [Ok(entry(b"", None, b""))]);
    }

    #[test]
    fn a_full_bundle_is_closed_and_a_large_entry_travels_alone() {
        let mut b = Bundler::new(40);
        let small = [b'x'; 10]; // 13 + 2 + 10 = 25 bytes with its framing
        let large = [b'y'; 100];
        b.push(1, entry(b"k1", None, &small));
        b.push(1, entry(b"k2", None, &small)); // 50 > 40: a second bundle
        b.push(1, entry(b"k3", None, &large));
        let bundles = b.finish();
        let sizes: Vec<usize> = bundles.iter().map(|(_, v)| entries(v).count()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        let keys: Vec<&[u8]> = bundles.iter().flat_map(|(_, v)| entries(v).map(|e| e.unwrap().key)).collect();
        assert_eq!(keys, [b"k1", b"k2", b"k3"], "order kept across bundles");
    }

    #[test]
    fn a_cut_bundle_yields_its_whole_entries_then_says_where_it_broke() {
        let mut b = Bundler::new(1 << 20);
        b.push(0, entry(b"k1", None, b"first"));
        b.push(0, entry(b"k2", None, b"second"));
        let value = b.finish().remove(0).1;
        let first_len = FRAMING + 2 + 5;
        let cut = &value[..value.len() - 2];
        let got: Vec<_> = entries(cut).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0], Ok(entry(b"k1", None, b"first")));
        let broken = got[1].clone().unwrap_err();
        assert_eq!((broken.at, broken.what, broken.needed, broken.left), (first_len, "the event", 6, 4));
        assert!(broken.to_string().contains(&format!("byte {first_len}")), "{broken}");
    }

    proptest! {
        #[test]
        fn whatever_is_pushed_comes_back(
            pushed in prop::collection::vec(
                (0..4i32, prop::collection::vec(any::<u8>(), 0..60), prop::option::of(any::<i64>().prop_filter("reserved", |t| *t != NO_TIMESTAMP)), prop::collection::vec(any::<u8>(), 0..300)),
                0..50,
            ),
            max_bytes in 1usize..2000,
        ) {
            let mut b = Bundler::new(max_bytes);
            for (p, key, ts, payload) in &pushed {
                b.push(*p, entry(key, *ts, payload));
            }
            let mut got: ByPartition = BTreeMap::new();
            for (p, value) in b.finish() {
                prop_assert!(!value.is_empty());
                let n = entries(&value).count();
                prop_assert!(value.len() <= max_bytes || n == 1, "only a lone entry may exceed the limit");
                for e in entries(&value) {
                    let e = e.unwrap();
                    got.entry(p).or_default().push((e.key.to_vec(), e.timestamp_ms, e.payload.to_vec()));
                }
            }
            let mut want: ByPartition = BTreeMap::new();
            for (p, key, ts, payload) in pushed {
                want.entry(p).or_default().push((key, ts, payload));
            }
            prop_assert_eq!(got, want);
        }

        #[test]
        fn any_bytes_read_as_entries_never_panic_and_end(value in prop::collection::vec(any::<u8>(), 0..400)) {
            let got: Vec<_> = entries(&value).take(value.len() + 1).collect();
            prop_assert!(got.len() <= value.len(), "each entry takes at least one byte");
            let broken = got.iter().position(Result::is_err);
            prop_assert!(broken.is_none_or(|i| i + 1 == got.len()), "nothing after a broken entry");
        }
    }
}
