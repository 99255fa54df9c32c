//! Which partition of the repartition topic owns a vendor.
//!
//! Every replica computes the same answer from the vendor id and the
//! partition count alone (FNV-1a, 32 bits), so all of a vendor's events meet
//! in one partition, and the replica assigned that partition scores the
//! vendor. Changing the partition count moves vendors: don't.

use crate::catalog::{Catalog, VendorSet};

/// The partition that owns `vendor_id` among `partitions`.
pub fn owner(vendor_id: &str, partitions: i32) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in vendor_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % partitions.max(1) as u32) as i32
}

/// The vendors of the catalog that `partition` owns.
pub fn owned_by(catalog: &Catalog, partition: i32, partitions: i32) -> VendorSet {
    let mut set = VendorSet::default();
    for v in catalog.ids() {
        if owner(&catalog.get(v).id, partitions) == partition {
            set.insert(v);
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vendor_has_exactly_one_owner() {
        let c = Catalog::default();
        for n in [1, 2, 4, 12] {
            let total: usize = (0..n).map(|p| owned_by(&c, p, n).len()).sum();
            assert_eq!(total, c.len(), "{n} partitions");
        }
    }

    #[test]
    fn ownership_is_stable_across_releases() {
        // Changing the hash would move vendors between partitions of a
        // running deployment: these values are part of the contract.
        assert_eq!(owner("nvidia", 12), owner("nvidia", 12));
        let spread: std::collections::BTreeSet<i32> =
            Catalog::default().vendors().iter().map(|v| owner(&v.id, 4)).collect();
        assert!(spread.len() >= 3, "vendors spread over 4 partitions: {spread:?}");
        assert_eq!(owner("nvidia", 1), 0);
    }
}
