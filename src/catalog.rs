//! The vendor catalog: the closed set of chip vendors chiprisk scores.
//!
//! Every vendor id in an event must name a catalog entry; anything else is
//! rejected at the edge. Because the catalog is closed and small, vendor ids
//! are safe to use as metric label values.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The most vendors a catalog may hold. Vendor sets are 128-bit masks.
pub const MAX_VENDORS: usize = 128;

/// One vendor as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vendor {
    /// Stable id used in events, metrics and the API (`nvidia`).
    pub id: String,
    /// Name shown to people (`NVIDIA`).
    pub name: String,
    /// Country of origin as an ISO 3166-1 alpha-2 code (`US`, `CN`).
    pub origin: String,
}

/// A vendor's position in the catalog. Only a [`Catalog`] hands these out,
/// so holding one proves the vendor exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VendorId(u8);

impl VendorId {
    /// Index of the vendor in catalog order.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// A set of vendors, as a bit mask over catalog positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct VendorSet(u128);

impl VendorSet {
    /// Adds a vendor; returns false if it was already present.
    pub fn insert(&mut self, vendor: VendorId) -> bool {
        let bit = 1u128 << vendor.0;
        let fresh = self.0 & bit == 0;
        self.0 |= bit;
        fresh
    }

    pub fn contains(self, vendor: VendorId) -> bool {
        self.0 & (1u128 << vendor.0) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The vendors of `self` that are not in `other`.
    pub fn difference(self, other: VendorSet) -> VendorSet {
        VendorSet(self.0 & !other.0)
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The vendors in catalog order.
    pub fn iter(self) -> impl Iterator<Item = VendorId> {
        let mut rest = self.0;
        std::iter::from_fn(move || {
            if rest == 0 {
                return None;
            }
            let bit = rest.trailing_zeros() as u8;
            rest &= rest - 1;
            Some(VendorId(bit))
        })
    }
}

/// Why a catalog was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CatalogError {
    #[error("the vendor catalog is empty")]
    Empty,
    #[error("the vendor catalog has {0} vendors; at most {MAX_VENDORS} are supported")]
    TooMany(usize),
    #[error("vendor id {0:?} must be 1-32 characters of a-z, 0-9 and '-'")]
    BadId(String),
    #[error("vendor id {0:?} appears twice")]
    Duplicate(String),
    #[error("vendor {id:?}: origin {origin:?} must be a two-letter country code such as US or CN")]
    BadOrigin { id: String, origin: String },
    #[error("vendor {0:?}: name must be 1-64 characters")]
    BadName(String),
}

/// The validated vendor catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    vendors: Vec<Vendor>,
}

impl Catalog {
    /// Checks a configured vendor list and builds the catalog.
    pub fn new(vendors: Vec<Vendor>) -> Result<Self, CatalogError> {
        if vendors.is_empty() {
            return Err(CatalogError::Empty);
        }
        if vendors.len() > MAX_VENDORS {
            return Err(CatalogError::TooMany(vendors.len()));
        }
        for (i, v) in vendors.iter().enumerate() {
            let id_ok = (1..=32).contains(&v.id.len())
                && v.id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return Err(CatalogError::BadId(v.id.clone()));
            }
            if vendors[..i].iter().any(|w| w.id == v.id) {
                return Err(CatalogError::Duplicate(v.id.clone()));
            }
            if v.origin.len() != 2 || !v.origin.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(CatalogError::BadOrigin { id: v.id.clone(), origin: v.origin.clone() });
            }
            if v.name.is_empty() || v.name.chars().count() > 64 {
                return Err(CatalogError::BadName(v.id.clone()));
            }
        }
        Ok(Self { vendors })
    }

    /// Finds a vendor by its id.
    pub fn lookup(&self, id: &str) -> Option<VendorId> {
        self.vendors.iter().position(|v| v.id == id).map(|i| VendorId(i as u8))
    }

    pub fn get(&self, id: VendorId) -> &Vendor {
        &self.vendors[id.index()]
    }

    /// All vendors in catalog order.
    pub fn ids(&self) -> impl Iterator<Item = VendorId> + '_ {
        (0..self.vendors.len()).map(|i| VendorId(i as u8))
    }

    pub fn len(&self) -> usize {
        self.vendors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vendors.is_empty()
    }

    pub fn vendors(&self) -> &[Vendor] {
        &self.vendors
    }
}

/// The default catalog: the US incumbents and the Chinese AI-chip makers.
pub fn default_vendors() -> Vec<Vendor> {
    [
        ("nvidia", "NVIDIA", "US"),
        ("amd", "AMD", "US"),
        ("intel", "Intel", "US"),
        ("huawei", "Huawei (Ascend)", "CN"),
        ("cambricon", "Cambricon", "CN"),
        ("alibaba-thead", "Alibaba T-Head", "CN"),
        ("baidu-kunlunxin", "Baidu Kunlunxin", "CN"),
        ("hygon", "Hygon", "CN"),
        ("moore-threads", "Moore Threads", "CN"),
        ("biren", "Biren", "CN"),
        ("metax", "MetaX", "CN"),
    ]
    .into_iter()
    .map(|(id, name, origin)| Vendor { id: id.into(), name: name.into(), origin: origin.into() })
    .collect()
}

impl Default for Catalog {
    fn default() -> Self {
        Self::new(default_vendors()).expect("the default catalog is valid")
    }
}

impl fmt::Display for VendorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalog_has_the_eleven_vendors_in_order() {
        let c = Catalog::default();
        assert_eq!(c.len(), 11);
        assert_eq!(c.get(c.lookup("nvidia").unwrap()).name, "NVIDIA");
        assert_eq!(c.lookup("metax").unwrap().index(), 10);
        assert_eq!(c.lookup("NVIDIA"), None);
    }

    #[test]
    fn catalog_rejects_duplicates_bad_ids_and_bad_origins() {
        let v = |id: &str, origin: &str| Vendor { id: id.into(), name: "X".into(), origin: origin.into() };
        assert_eq!(Catalog::new(vec![]), Err(CatalogError::Empty));
        assert_eq!(Catalog::new(vec![v("a", "US"), v("a", "US")]), Err(CatalogError::Duplicate("a".into())));
        assert_eq!(Catalog::new(vec![v("A b", "US")]), Err(CatalogError::BadId("A b".into())));
        assert!(matches!(Catalog::new(vec![v("a", "usa")]), Err(CatalogError::BadOrigin { .. })));
        let many: Vec<_> = (0..129).map(|i| v(&format!("v{i}"), "US")).collect();
        assert_eq!(Catalog::new(many), Err(CatalogError::TooMany(129)));
    }

    #[test]
    fn vendor_set_tracks_membership_and_iterates_in_catalog_order() {
        let c = Catalog::default();
        let mut s = VendorSet::default();
        assert!(s.insert(c.lookup("metax").unwrap()));
        assert!(s.insert(c.lookup("nvidia").unwrap()));
        assert!(!s.insert(c.lookup("nvidia").unwrap()));
        assert_eq!(s.len(), 2);
        let ids: Vec<_> = s.iter().map(|v| c.get(v).id.as_str()).collect();
        assert_eq!(ids, ["nvidia", "metax"]);
    }
}
