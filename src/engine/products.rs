//! Product names, interned once each: an event's products are a list of
//! 4-byte ids, shared by the event's vendors, and the names themselves are
//! stored once, in a compact text store, whatever the number of events that
//! name them.
//!
//! Matching ignores case: the key of a name is its lower case, and ids are
//! ordered by key (the order every query walks products in, so that no
//! answer depends on the order events arrived in). A product is shown by
//! the smallest spelling seen. Keys are not stored: they are the display
//! names in lower case, compared byte by byte for ASCII names (most) and
//! through `str::to_lowercase` otherwise.

use super::texts::{TextRef, Texts};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::OnceLock;

/// An interned product name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProductId(pub(crate) u32);

/// Every product name seen.
#[derive(Default)]
pub(crate) struct Products {
    /// Ids, by the hash of their key.
    table: hashbrown::HashTable<ProductId>,
    /// Per id (its index): the display name.
    names: Vec<TextRef>,
    texts: Texts,
    /// Bytes of `texts` in use (for [`Products::held_bytes`]).
    text_bytes: u64,
    /// Each id's position in key order, computed by the first query after
    /// a new product (queries compare integers, not names, while they walk
    /// products); cleared when one is interned.
    ranks: OnceLock<Box<[u32]>>,
}

/// Bytes per product besides its text: its name's handle, a table slot
/// (with its control byte, at the table's 7/8 load) and its rank.
pub(crate) const BYTES_PER_PRODUCT: u64 =
    size_of::<TextRef>() as u64 + (size_of::<ProductId>() as u64 + 1) * 8 / 7 + size_of::<u32>() as u64;

/// A name's key: its lower case (`str::to_lowercase`), computed without
/// allocating for ASCII names.
fn key(name: &str) -> Cow<'_, str> {
    if name.is_ascii() && !name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(name.to_lowercase())
    }
}

/// Two names' keys, compared.
pub(crate) fn key_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        // ASCII's lower case is byte by byte, and keeps it ASCII.
        a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    } else {
        key(a).cmp(&key(b))
    }
}

fn hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key(name).as_bytes())
}

impl Products {
    /// The product's id, interning it if it is new.
    pub fn intern(&mut self, product: &str) -> ProductId {
        let h = hash(product);
        let Self { table, names, texts, text_bytes, ranks } = self;
        let same = |id: &ProductId| key_cmp(texts.get(names[id.0 as usize]), product) == Ordering::Equal;
        if let Some(&id) = table.find(h, same) {
            // Show the smallest spelling seen, whatever the arrival order.
            let name = &mut names[id.0 as usize];
            if product < texts.get(*name) {
                *name = texts.push(product);
                *text_bytes += product.len() as u64;
            }
            return id;
        }
        *text_bytes += product.len() as u64;
        ranks.take();
        let id = ProductId(u32::try_from(names.len()).expect("fewer than 2^32 products"));
        names.push(texts.push(product));
        table.insert_unique(h, id, |id| hash(texts.get(names[id.0 as usize])));
        id
    }

    /// The product's key: its name in lower case.
    #[cfg(test)]
    pub fn key(&self, id: ProductId) -> Cow<'_, str> {
        key(self.name(id))
    }

    /// The product's name as shown: the smallest spelling seen.
    pub fn name(&self, id: ProductId) -> &str {
        self.texts.get(self.names[id.0 as usize])
    }

    /// The product's position in key order (see [`Products::cmp`]), for
    /// queries: the first after a new product was interned sorts them all.
    pub fn rank(&self, id: ProductId) -> u32 {
        let ranks = self.ranks.get_or_init(|| {
            let mut ids: Vec<u32> = (0..self.names.len() as u32).collect();
            ids.sort_unstable_by(|&a, &b| self.cmp(ProductId(a), ProductId(b)));
            let mut ranks = vec![0; ids.len()].into_boxed_slice();
            ids.iter().enumerate().for_each(|(rank, &id)| ranks[id as usize] = rank as u32);
            ranks
        });
        ranks[id.0 as usize]
    }

    /// The order of products: by key (distinct products never tie). It
    /// compares names, so that applying events never sorts every product.
    pub fn cmp(&self, a: ProductId, b: ProductId) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        key_cmp(self.name(a), self.name(b))
    }

    /// The order of scopes: the vendor as a whole first, then products by key.
    pub fn scope_cmp(&self, a: Option<ProductId>, b: Option<ProductId>) -> Ordering {
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => self.cmp(a, b),
        }
    }

    /// An estimate of the heap bytes held: names, texts, and the table.
    pub fn held_bytes(&self) -> u64 {
        self.names.len() as u64 * BYTES_PER_PRODUCT + self.text_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_name_share_an_id_and_show_the_smallest() {
        let mut p = Products::default();
        let a = p.intern("h20");
        let b = p.intern("H20");
        let c = p.intern("B30A");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((p.name(a), &*p.key(a)), ("H20", "h20"));
        assert_eq!(p.cmp(c, a), Ordering::Less);
        // Outside ASCII, through `str::to_lowercase` (a final sigma too).
        assert_eq!(p.intern("ΟΔΟΣ"), p.intern("οδος"));
        assert_ne!(p.intern("ΟΔΟΣ"), p.intern("οδοσ"));
        assert_eq!(p.intern("ÉCLAIR"), p.intern("éclair"));
        let (zeta, eclair) = (p.intern("Zeta"), p.intern("éclair"));
        assert_eq!(p.cmp(zeta, eclair), "zeta".cmp("éclair"));
        let (kelvin, k8) = (p.intern("\u{212A}9"), p.intern("K8"));
        assert_eq!(p.cmp(kelvin, k8), "k9".cmp("k8"));
        assert_eq!(p.intern("k9"), kelvin);
        // Ranks follow keys, and are recomputed for new products.
        let all = [a, c, zeta, eclair, kelvin, k8];
        for x in all {
            for y in all {
                assert_eq!(p.rank(x).cmp(&p.rank(y)), p.cmp(x, y));
            }
        }
        let first = p.intern("0");
        assert_eq!(p.rank(first), 0);
    }

    #[test]
    fn held_bytes_grow_with_new_names_only() {
        let mut p = Products::default();
        p.intern("H20");
        let one = p.held_bytes();
        assert_eq!(one, BYTES_PER_PRODUCT + 3);
        p.intern("h20");
        assert_eq!(p.held_bytes(), one, "a larger spelling is not kept");
        p.intern("MI308");
        assert_eq!(p.held_bytes(), one + BYTES_PER_PRODUCT + 5);
    }
}
