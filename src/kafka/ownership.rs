//! Which partition of the repartition topic owns a vendor.
//!
//! Every replica computes the same answer from the vendor id and the
//! partition count alone (FNV-1a, 32 bits), so all of a vendor's events meet
//! in one partition, and the replica assigned that partition scores the
//! vendor. Changing the partition count moves vendors: don't.

use crate::catalog::{Catalog, VendorId, VendorSet};

/// The partition that owns `vendor_id` among `partitions`.
pub fn owner(vendor_id: &str, partitions: i32) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in vendor_id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h % partitions.max(1) as u32) as i32
}

/// Every catalog vendor's owning partition, computed once.
#[derive(Debug, Clone)]
pub struct Owners {
    partition_of: Vec<i32>,
    /// Per partition, the vendors it owns.
    owned: Vec<VendorSet>,
}

impl Owners {
    pub fn new(catalog: &Catalog, partitions: i32) -> Self {
        let partition_of: Vec<i32> = catalog.ids().map(|v| owner(&catalog.get(v).id, partitions)).collect();
        let mut owned = vec![VendorSet::default(); partitions.max(1) as usize];
        for v in catalog.ids() {
            owned[partition_of[v.index()] as usize].insert(v);
        }
        Self { partition_of, owned }
    }

    /// The partition that owns `vendor`.
    pub fn of(&self, vendor: VendorId) -> i32 {
        self.partition_of[vendor.index()]
    }

    /// The vendors that `partition` owns.
    pub fn owned_by(&self, partition: i32) -> VendorSet {
        usize::try_from(partition).ok().and_then(|p| self.owned.get(p)).copied().unwrap_or_default()
    }

    /// `vendors` grouped by the partition that owns them, in ascending
    /// partition order.
    pub fn split(&self, vendors: VendorSet) -> impl Iterator<Item = (i32, VendorSet)> + '_ {
        let mut rest = vendors;
        std::iter::from_fn(move || {
            let partition = rest.iter().map(|v| self.of(v)).min()?;
            let mut group = VendorSet::default();
            for v in rest.iter().filter(|v| self.of(*v) == partition) {
                group.insert(v);
            }
            rest = rest.difference(group);
            Some((partition, group))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The owners of the default catalog's vendors (catalog order) among 12
    /// partitions, computed outside this code (FNV-1a 32 in Python).
    const PINNED_OWNERS_OF_12: [i32; 11] = [2, 5, 11, 4, 9, 8, 9, 6, 11, 9, 4];

    #[test]
    fn every_vendor_has_exactly_one_owner() {
        let c = Catalog::default();
        for n in [1, 2, 4, 12] {
            let owners = Owners::new(&c, n);
            let total: usize = (0..n).map(|p| owners.owned_by(p).len()).sum();
            assert_eq!(total, c.len(), "{n} partitions");
            for p in 0..n {
                assert!(owners.owned_by(p).iter().all(|v| owner(&c.get(v).id, n) == p), "{n} partitions");
            }
        }
    }

    #[test]
    fn ownership_is_stable_across_releases() {
        // Changing the hash would move vendors between partitions of a
        // running deployment: these values are part of the contract.
        let twelve: Vec<i32> = Catalog::default().vendors().iter().map(|v| owner(&v.id, 12)).collect();
        assert_eq!(twelve, PINNED_OWNERS_OF_12);
        let spread: std::collections::BTreeSet<i32> =
            Catalog::default().vendors().iter().map(|v| owner(&v.id, 4)).collect();
        assert!(spread.len() >= 3, "vendors spread over 4 partitions: {spread:?}");
        assert_eq!(owner("nvidia", 1), 0);
    }

    #[test]
    fn a_split_groups_each_vendor_once_under_its_owner_in_partition_order() {
        let c = Catalog::default();
        for partitions in [1, 3, 12] {
            let owners = Owners::new(&c, partitions);
            let mut all = VendorSet::default();
            for v in c.ids().step_by(2).chain(c.ids().skip(1).step_by(3)) {
                all.insert(v);
            }
            let groups: Vec<(i32, VendorSet)> = owners.split(all).collect();
            assert!(groups.windows(2).all(|w| w[0].0 < w[1].0), "ascending, distinct: {groups:?}");
            let mut seen = VendorSet::default();
            for (p, group) in &groups {
                assert!(!group.is_empty());
                for v in group.iter() {
                    assert_eq!(owners.of(v), *p);
                    assert_eq!(owner(&c.get(v).id, partitions), *p);
                    assert!(seen.insert(v), "{v:?} in two groups");
                }
            }
            assert_eq!(seen, all);
        }
        assert_eq!(Owners::new(&c, 12).split(VendorSet::default()).count(), 0);
    }
}
