//! The scores one process holds: shards, each an [`Engine`] that owns a set
//! of vendors. Reading a file, one shard owns every vendor. In a Kafka
//! consumer group, each assigned partition of the by-vendor topic is a shard
//! that owns the vendors routed to it, so N replicas together own the whole
//! catalog, each vendor exactly once.

use crate::catalog::{Catalog, VendorId, VendorSet};
use crate::engine::{Engine, Explanation, Score, ScoringModel};
use crate::event::Timestamp;
use crate::pipeline::Summary;
use crate::report::ScoresReport;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Shard {
    pub engine: Engine,
    /// The vendors this shard scores; no other shard scores them.
    pub owned: VendorSet,
    /// Events counted in this shard (each event in one shard only). It goes
    /// with the shard, so a rebuilt shard does not count its events twice.
    pub summary: Summary,
}

pub struct Scoreboard {
    catalog: Arc<Catalog>,
    model: ScoringModel,
    shards: BTreeMap<i32, Shard>,
    /// Counts that belong to no shard: rejections (Kafka), and everything in
    /// file mode. [`Scoreboard::summary`] adds the shards' counts.
    pub unsharded: Summary,
}

impl Scoreboard {
    /// No shards yet (a consumer before its first assignment).
    pub fn empty(catalog: Arc<Catalog>, model: ScoringModel) -> Self {
        Self { catalog, model, shards: BTreeMap::new(), unsharded: Summary::default() }
    }

    /// One shard, 0, that owns every vendor.
    pub fn single(catalog: Arc<Catalog>, model: ScoringModel) -> Self {
        let mut board = Self::empty(catalog, model);
        let all = board.catalog.ids().fold(VendorSet::default(), |mut s, v| {
            s.insert(v);
            s
        });
        board.add_shard(0, all);
        board
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Adds (or resets) a shard with a fresh engine.
    pub fn add_shard(&mut self, id: i32, owned: VendorSet) {
        let engine = Engine::new(self.catalog.clone(), self.model.clone());
        self.shards.insert(id, Shard { engine, owned, summary: Summary::default() });
    }

    /// Events accepted, duplicated and rejected, as the state now holds them.
    pub fn summary(&self) -> Summary {
        self.shards.values().fold(self.unsharded, |mut total, shard| {
            total.accepted += shard.summary.accepted;
            total.duplicates += shard.summary.duplicates;
            total.rejected += shard.summary.rejected;
            total
        })
    }

    pub fn remove_shard(&mut self, id: i32) {
        self.shards.remove(&id);
    }

    pub fn shard_mut(&mut self, id: i32) -> Option<&mut Shard> {
        self.shards.get_mut(&id)
    }

    pub fn shard_ids(&self) -> Vec<i32> {
        self.shards.keys().copied().collect()
    }

    /// The engine that scores this vendor here, if any.
    pub fn owner(&self, vendor: VendorId) -> Option<&Engine> {
        self.shards.values().find(|s| s.owned.contains(vendor)).map(|s| &s.engine)
    }

    /// Scores of the vendors this process owns, in catalog order.
    pub fn scores_at(&self, at: Timestamp) -> Vec<(VendorId, Score, &Engine)> {
        self.catalog.ids().filter_map(|v| self.owner(v).map(|e| (v, e.score(v, at), e))).collect()
    }

    /// The report over the vendors this process owns.
    pub fn report(&self, at: Timestamp, max_contributions: usize) -> ScoresReport {
        let vendors =
            self.catalog.ids().filter_map(|v| self.owner(v).map(|e| e.explain(v, at, max_contributions))).collect();
        ScoresReport { as_of: at, vendors, summary: self.summary() }
    }

    /// `None` if the vendor is not in the catalog or not owned here.
    pub fn explain(&self, vendor: &str, at: Timestamp, max_contributions: usize) -> Option<Explanation> {
        let id = self.catalog.lookup(vendor)?;
        self.owner(id).map(|e| e.explain(id, at, max_contributions))
    }

    /// Distinct events held over all shards.
    pub fn events_held(&self) -> u64 {
        self.shards.values().map(|s| s.engine.stats().accepted).sum()
    }
}
