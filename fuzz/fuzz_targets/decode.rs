//! Any bytes through the event decoder: never a panic, an accepted event
//! always satisfies schema v1's invariants, and the fast path gives exactly
//! what the general serde_json path gives (compared through `Debug`, which
//! tells `-0.0` from `0.0`).
#![no_main]

use chiprisk::event::{Decoder, EventType, Limits};
use chiprisk::Catalog;
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

fn decoder() -> &'static Decoder {
    static D: OnceLock<Decoder> = OnceLock::new();
    D.get_or_init(|| Decoder::new(Arc::new(Catalog::default()), Limits::default()))
}

fuzz_target!(|data: &[u8]| {
    let decoded = decoder().decode(data);
    assert_eq!(format!("{decoded:?}"), format!("{:?}", decoder().decode_general(data)));
    match decoded {
        Ok(e) => {
            assert!(!e.id.is_empty() && e.id.chars().count() <= 128);
            assert!(!e.vendors.is_empty());
            assert!(e.severity.is_none_or(|s| (0.0..=1.0).contains(&s)));
            assert!((0.0..=1.0).contains(&e.confidence));
            assert_eq!(e.value.is_some(), e.kind == EventType::MarketSignal);
            assert!(e.value.is_none_or(|v| (-1.0..=1.0).contains(&v)));
            assert!(data.len() <= Limits::default().max_event_bytes);
        }
        Err(r) => assert!(!r.message.is_empty()),
    }
});
