//! Recording an event: its texts and products kept once, then its
//! contribution added to each vendor it names.

use super::decay::{self, Decaying};
use super::products::ProductId;
use super::standing::Standing;
use super::texts::TextRef;
use super::{id_key, Applied, Engine, Source, VendorState, SEEN_BYTES};
use crate::catalog::VendorId;
use crate::event::{Event, Role};
use std::sync::Arc;

/// What an event's vendors share: kept once, whatever their number.
struct Shared {
    source: Source,
    /// Severity times confidence.
    strength: f64,
    /// In key order, without repeats; `None` for decaying events and for
    /// events that name the vendor as a whole.
    products: Option<Arc<[ProductId]>>,
    /// Kept for standing events only (few): policy notifications link it.
    url: Option<TextRef>,
}

impl Engine {
    /// Records an event. A second event with the same id changes nothing.
    pub fn apply(&mut self, event: &Event<'_>) -> Applied {
        if !self.seen.insert(id_key(&event.id)) {
            self.stats.duplicates += 1;
            return Applied::Duplicate;
        }
        self.stats.accepted += 1;
        let (shared, mut held) = self.keep(event);
        for vendor in event.vendors.iter() {
            held += self.add_to_vendor(vendor, event, &shared);
        }
        self.held_bytes += held;
        Applied::Accepted
    }

    /// Keeps the event's texts and products, once for all its vendors;
    /// with the bytes that costs.
    fn keep(&mut self, event: &Event<'_>) -> (Shared, u64) {
        let products_held = self.products.held_bytes();
        let mut held = SEEN_BYTES + event.id.len() as u64 + event.title.as_deref().map_or(0, |t| t.len() as u64);
        let source = Source {
            id: self.texts.push(&event.id),
            title: event.title.as_deref().map(|t| self.texts.push(t)),
            at: event.occurred_at,
            kind: event.kind,
        };
        let strength = self.model.severity(event.kind, event.severity) * event.confidence;
        let url = match (event.kind.role(), event.source_url.as_deref()) {
            (Role::Decaying, _) | (_, None) => None,
            (_, Some(u)) => {
                held += u.len() as u64;
                Some(self.texts.push(u))
            }
        };
        let products = match event.kind.role() {
            Role::Decaying => None,
            _ if event.products.is_empty() => None,
            _ => {
                let mut ids: Vec<_> = event.products.iter().map(|p| self.products.intern(p)).collect();
                ids.sort_unstable_by(|a, b| self.products.cmp(*a, *b));
                ids.dedup();
                // Two counts and the ids.
                held += 2 * size_of::<usize>() as u64 + (ids.len() * size_of::<ProductId>()) as u64;
                Some(ids.into())
            }
        };
        held += self.products.held_bytes() - products_held;
        (Shared { source, strength, products, url }, held)
    }

    /// Adds the event to one vendor's state; the bytes that costs.
    fn add_to_vendor(&mut self, vendor: VendorId, event: &Event<'_>, shared: &Shared) -> u64 {
        let source = shared.source;
        let newer = match &self.vendors[vendor.index()].last_event {
            None => true,
            Some(l) => {
                (event.occurred_at, std::cmp::Reverse(&*event.id)) > (l.at, std::cmp::Reverse(self.texts.get(l.id)))
            }
        };
        let state: &mut VendorState = &mut self.vendors[vendor.index()];
        if newer {
            state.last_event = Some(source);
        }
        state.first_event = Some(state.first_event.map_or(event.occurred_at, |f| f.min(event.occurred_at)));
        match event.kind.role() {
            Role::Decaying => {
                let geometry = self.geometry[event.kind as usize].as_ref().expect("decaying types have a model");
                let d = Decaying { source, magnitude: shared.strength * event.value.unwrap_or(1.0) };
                let cell = state.decaying[event.kind as usize].add(geometry, d);
                size_of::<Decaying>() as u64 + if cell { decay::CELL_BYTES } else { 0 }
            }
            role => {
                let s =
                    Standing { source, products: shared.products.clone(), strength: shared.strength, url: shared.url };
                match role {
                    Role::Ban(kind) => state.standing.add_ban(kind, s),
                    Role::Lift(kind) => state.standing.add_lift(kind, s),
                    _ => state.standing.add_licence(s),
                }
                size_of::<Standing>() as u64
            }
        }
    }
}
