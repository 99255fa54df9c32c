//! The key of a routed copy: which event it carries and, when the local
//! shortcut applied that event already, what applying it did.
//!
//! Layout (ASCII): the 128-bit hash of the event's id ([`id_key`]) in 32
//! hex digits; for a copy the shortcut applied, then `.`, the applying
//! shard instance in 16 hex digits, `.`, the event type's index and the
//! outcome flags, one hex digit each (52 bytes in all).
//!
//! [`id_key`]: crate::engine::id_key

use crate::engine::Applied;
use crate::event::EventType;

/// What the local shortcut did with a copy's event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedAhead {
    /// The shard instance that applied it: a number drawn anew whenever a
    /// partition is assigned, so a copy names the very state it is in.
    pub shard: u64,
    pub kind: EventType,
    pub applied: Applied,
    /// Whether the partition counts the event (it owns the first vendor).
    pub counted: bool,
}

/// A routed copy's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyKey {
    /// The hash of the event's id.
    pub event: u128,
    pub ahead: Option<AppliedAhead>,
}

const ID_DIGITS: usize = 32;
const LONGEST: usize = ID_DIGITS + 1 + 16 + 1 + 2;
const COUNTED: u8 = 1;
const DUPLICATE: u8 = 2;

impl CopyKey {
    /// The key's bytes: a buffer and how much of it is used.
    pub fn encode(&self) -> ([u8; LONGEST], usize) {
        let mut key = [0; LONGEST];
        write_hex(&mut key[..ID_DIGITS], self.event);
        let Some(a) = self.ahead else { return (key, ID_DIGITS) };
        key[ID_DIGITS] = b'.';
        write_hex(&mut key[ID_DIGITS + 1..ID_DIGITS + 17], u128::from(a.shard));
        key[ID_DIGITS + 17] = b'.';
        let flags = if a.counted { COUNTED } else { 0 } | if a.applied == Applied::Duplicate { DUPLICATE } else { 0 };
        write_hex(&mut key[ID_DIGITS + 18..], (a.kind as u128) << 4 | u128::from(flags));
        (key, LONGEST)
    }

    /// Reads a key [`CopyKey::encode`] wrote; `None` for any other key
    /// (copies of earlier versions were keyed by vendor id).
    pub fn parse(key: &[u8]) -> Option<CopyKey> {
        let event = read_hex(key.get(..ID_DIGITS)?)?;
        match key.len() {
            ID_DIGITS => Some(CopyKey { event, ahead: None }),
            LONGEST if key[ID_DIGITS] == b'.' && key[ID_DIGITS + 17] == b'.' => {
                let shard = read_hex(&key[ID_DIGITS + 1..ID_DIGITS + 17])? as u64;
                let tail = read_hex(&key[ID_DIGITS + 18..])? as u8;
                let kind = *EventType::ALL.get(usize::from(tail >> 4))?;
                let flags = tail & 0xf;
                if flags > COUNTED | DUPLICATE {
                    return None;
                }
                let applied = if flags & DUPLICATE != 0 { Applied::Duplicate } else { Applied::Accepted };
                Some(CopyKey {
                    event,
                    ahead: Some(AppliedAhead { shard, kind, applied, counted: flags & COUNTED != 0 }),
                })
            }
            _ => None,
        }
    }
}

/// Writes `value`'s low `out.len()` hex digits, most significant first.
fn write_hex(out: &mut [u8], value: u128) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = out.len();
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = HEX[((value >> (4 * (n - 1 - i))) & 0xf) as usize];
    }
}

/// Reads lower-case hex digits (at most 32).
fn read_hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &b| {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u128::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::id_key;

    #[test]
    fn keys_read_back_as_written() {
        let mut keys = vec![CopyKey { event: id_key("x"), ahead: None }, CopyKey { event: u128::MAX, ahead: None }];
        for kind in EventType::ALL {
            for applied in [Applied::Accepted, Applied::Duplicate] {
                for counted in [true, false] {
                    for shard in [0, 1, u64::MAX, 0x0123_4567_89ab_cdef] {
                        let ahead = Some(AppliedAhead { shard, kind, applied, counted });
                        keys.push(CopyKey { event: id_key("an event"), ahead });
                    }
                }
            }
        }
        for key in keys {
            let (bytes, len) = key.encode();
            assert_eq!(CopyKey::parse(&bytes[..len]), Some(key), "{:?}", std::str::from_utf8(&bytes[..len]));
        }
    }

    #[test]
    fn the_layout_is_readable_hex() {
        let hash = id_key("x");
        let ahead =
            AppliedAhead { shard: 0xab, kind: EventType::SupplyConstraint, applied: Applied::Duplicate, counted: true };
        let (bytes, len) = CopyKey { event: hash, ahead: Some(ahead) }.encode();
        assert_eq!(std::str::from_utf8(&bytes[..len]).unwrap(), format!("{hash:032x}.00000000000000ab.93"));
    }

    #[test]
    fn other_keys_are_not_copy_keys() {
        let (good, len) = CopyKey {
            event: 7,
            ahead: Some(AppliedAhead {
                shard: 1,
                kind: EventType::ExportBan,
                applied: Applied::Accepted,
                counted: false,
            }),
        }
        .encode();
        let good = &good[..len];
        let mut bad: Vec<Vec<u8>> =
            vec![b"nvidia".to_vec(), Vec::new(), vec![b'0'; 31], vec![b'0'; 33], vec![b'G'; 32]];
        bad.push(good[..good.len() - 1].to_vec());
        let mut upper = good.to_vec();
        upper[0] = b'A';
        bad.push(upper);
        for (i, b) in [(32, b'-'), (49, b'-'), (50, b'f'), (51, b'4')] {
            let mut k = good.to_vec();
            k[i] = b; // a separator, a kind out of range, flags out of range
            bad.push(k);
        }
        for key in bad {
            assert_eq!(CopyKey::parse(&key), None, "{:?}", String::from_utf8_lossy(&key));
        }
    }
}
