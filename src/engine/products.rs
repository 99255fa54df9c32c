//! Product names, interned once each: an event's products are a list of
//! 4-byte ids, shared by the event's vendors, and the names themselves are
//! stored once, in a compact text store, whatever the number of events that
//! name them.
//!
//! Matching ignores case: the key of a name is its lower case, and ids are
//! ordered by key (the order every query walks products in, so that no
//! answer depends on the order events arrived in). A product is shown by
//! the smallest spelling seen.

use super::texts::{TextRef, Texts};
use std::cmp::Ordering;

/// An interned product name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProductId(pub(crate) u32);

/// Every product name seen.
#[derive(Default)]
pub(crate) struct Products {
    /// Ids, by the hash of their key.
    table: hashbrown::HashTable<ProductId>,
    /// Per id (its index): key and display name.
    names: Vec<Name>,
    texts: Texts,
    /// Bytes of `texts` in use (for [`Products::held_bytes`]).
    text_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct Name {
    /// The name in lower case (`str::to_lowercase`).
    key: TextRef,
    /// The smallest spelling seen (the key itself when that is it).
    display: TextRef,
}

/// Bytes per product besides its text: a [`Name`] and a table slot (with
/// its control byte, at the table's 7/8 load).
pub(crate) const BYTES_PER_PRODUCT: u64 = size_of::<Name>() as u64 + (size_of::<ProductId>() as u64 + 1) * 8 / 7;

fn hash(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

impl Products {
    /// The product's id, interning it if it is new.
    pub fn intern(&mut self, product: &str) -> ProductId {
        let key = product.to_lowercase();
        let h = hash(&key);
        let Self { table, names, texts, text_bytes } = self;
        if let Some(&id) = table.find(h, |id| texts.get(names[id.0 as usize].key) == key) {
            // Show the smallest spelling seen, whatever the arrival order.
            let name = &mut names[id.0 as usize];
            if product < texts.get(name.display) {
                name.display = texts.push(product);
                *text_bytes += product.len() as u64;
            }
            return id;
        }
        let key_ref = texts.push(&key);
        *text_bytes += key.len() as u64;
        let display = if product == key {
            key_ref
        } else {
            *text_bytes += product.len() as u64;
            texts.push(product)
        };
        let id = ProductId(u32::try_from(names.len()).expect("fewer than 2^32 products"));
        names.push(Name { key: key_ref, display });
        table.insert_unique(h, id, |id| hash(texts.get(names[id.0 as usize].key)));
        id
    }

    /// The product's key: its name in lower case.
    pub fn key(&self, id: ProductId) -> &str {
        self.texts.get(self.names[id.0 as usize].key)
    }

    /// The product's name as shown: the smallest spelling seen.
    pub fn name(&self, id: ProductId) -> &str {
        self.texts.get(self.names[id.0 as usize].display)
    }

    /// The order of products: by key.
    pub fn cmp(&self, a: ProductId, b: ProductId) -> Ordering {
        self.key(a).cmp(self.key(b))
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
        assert_eq!((p.name(a), p.key(a)), ("H20", "h20"));
        assert_eq!(p.cmp(c, a), Ordering::Less);
    }

    #[test]
    fn held_bytes_grow_with_new_names_only() {
        let mut p = Products::default();
        p.intern("H20");
        let one = p.held_bytes();
        assert_eq!(one, BYTES_PER_PRODUCT + 6);
        p.intern("h20");
        assert_eq!(p.held_bytes(), one);
        p.intern("MI308");
        assert_eq!(p.held_bytes(), one + BYTES_PER_PRODUCT + 10);
    }
}
