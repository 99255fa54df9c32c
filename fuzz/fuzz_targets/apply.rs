//! Decode, validate and apply a stream of events (one per line), then score
//! and explain: never a panic; scores finite and within [0, 100]; the
//! pressure (summed per cell of time) equals the sum of every event's own
//! contribution (as an explanation that lists them all computes them, one
//! by one); contributions are listed largest first; applying everything
//! again changes nothing.
#![no_main]

use chiprisk::engine::{Engine, ScoringModel};
use chiprisk::event::{Decoder, Limits, Timestamp};
use chiprisk::Catalog;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let catalog = Arc::new(Catalog::default());
    let decoder = Decoder::new(catalog.clone(), Limits::default());
    let mut engine = Engine::new(catalog.clone(), ScoringModel::default());
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    for line in &lines {
        chiprisk::pipeline::process(&decoder, &mut engine, line);
    }
    let times = ["1970-01-01T00:00:00Z", "2025-06-01T00:00:00Z", "2262-01-01T00:00:00Z"];
    let before: Vec<_> = times.iter().map(|t| engine.scores_at(Timestamp::parse_rfc3339(t).unwrap())).collect();
    for (t, scores) in times.iter().zip(&before) {
        let at = Timestamp::parse_rfc3339(t).unwrap();
        for (vendor, s) in scores {
            assert!(s.score.is_finite() && (0.0..=100.0).contains(&s.score), "{s:?}");
            // Far more than a fuzz input's lines: every contribution listed.
            let x = engine.explain(*vendor, at, 1 << 20);
            assert_eq!(x.other_contributions.count, 0);
            let listed: f64 = x.contributions.iter().map(|c| c.contribution).sum();
            assert!((listed - s.pressure).abs() <= 1e-6 * (1.0 + listed.abs()), "{listed} against {}", s.pressure);
            assert!(x.contributions.windows(2).all(|w| w[0].contribution.abs() >= w[1].contribution.abs()));
        }
    }
    for line in &lines {
        chiprisk::pipeline::process(&decoder, &mut engine, line);
    }
    let after: Vec<_> = times.iter().map(|t| engine.scores_at(Timestamp::parse_rfc3339(t).unwrap())).collect();
    assert_eq!(before, after, "redelivery changed the scores");
});
