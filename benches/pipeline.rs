//! Decode + validate + apply throughput on ~300-byte synthetic events.
//! `cargo bench --bench pipeline`; numbers go to BENCHMARKS.md.

use chiprisk::engine::{Engine, ScoringModel};
use chiprisk::event::{Decoder, Limits, Span, Timestamp};
use chiprisk::synthetic::Generator;
use chiprisk::Catalog;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, Throughput};
use std::sync::Arc;

fn events(n: usize) -> Vec<String> {
    let mut g = Generator::new(42);
    (0..n).map(|_| g.event()).collect()
}

fn pipeline(c: &mut Criterion) {
    let catalog = Arc::new(Catalog::default());
    let decoder = Decoder::new(catalog.clone(), Limits::default());
    let batch = events(100_000);
    let bytes: usize = batch.iter().map(String::len).sum();

    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(batch.len() as u64));
    group.sample_size(10);
    decoding(&mut group, &decoder, &batch, bytes);
    applying(&mut group, &catalog, &decoder, &batch);
    group.finish();

    queries(c, &catalog, &decoder, &batch, "100k");
    let million = events(1_000_000);
    queries(c, &catalog, &decoder, &million, "1M");
}

fn decoding(group: &mut BenchmarkGroup<'_, WallTime>, decoder: &Decoder, batch: &[String], bytes: usize) {
    group.bench_function(format!("decode+validate ({} B/event)", bytes / batch.len()), |b| {
        b.iter(|| {
            for e in batch {
                criterion::black_box(decoder.decode(e.as_bytes()).is_ok());
            }
        })
    });
    group.bench_function("decode+validate, general serde_json path only", |b| {
        b.iter(|| {
            for e in batch {
                criterion::black_box(decoder.decode_general(e.as_bytes()).is_ok());
            }
        })
    });
}

fn applying(group: &mut BenchmarkGroup<'_, WallTime>, catalog: &Arc<Catalog>, decoder: &Decoder, batch: &[String]) {
    group.bench_function("decode+validate+apply", |b| {
        b.iter_batched(
            || Engine::new(catalog.clone(), ScoringModel::default()),
            |mut engine| {
                for e in batch {
                    chiprisk::pipeline::process(decoder, &mut engine, e.as_bytes());
                }
                engine
            },
            BatchSize::PerIteration,
        )
    });
    let decoded: Vec<_> = batch.iter().map(|e| decoder.decode(e.as_bytes()).unwrap()).collect();
    group.bench_function("apply only (pre-decoded)", |b| {
        b.iter_batched(
            || Engine::new(catalog.clone(), ScoringModel::default()),
            |mut engine| {
                for e in &decoded {
                    engine.apply(e);
                }
                engine
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("redelivered duplicates", |b| {
        let mut engine = Engine::new(catalog.clone(), ScoringModel::default());
        for e in batch {
            chiprisk::pipeline::process(decoder, &mut engine, e.as_bytes());
        }
        b.iter(|| {
            for e in batch {
                chiprisk::pipeline::process(decoder, &mut engine, e.as_bytes());
            }
        })
    });
}

/// What a score-update round, a scrape and an API call cost with `label`
/// events held: they read a vendor's events, so they grow with the state.
fn queries(c: &mut Criterion, catalog: &Arc<Catalog>, decoder: &Decoder, batch: &[String], label: &str) {
    let mut engine = Engine::new(catalog.clone(), ScoringModel::default());
    for e in batch {
        chiprisk::pipeline::process(decoder, &mut engine, e.as_bytes());
    }
    let engine = &engine;
    let at = Timestamp::parse_rfc3339("2026-11-29T00:00:00Z").unwrap();
    let mut group = c.benchmark_group(format!("queries over {label} events"));
    group.sample_size(10);
    group.bench_function("scores_at (all vendors)", |b| b.iter(|| criterion::black_box(engine.scores_at(at))));
    let nvidia = catalog.lookup("nvidia").unwrap();
    group.bench_function("explain (one vendor, top 25)", |b| {
        b.iter(|| criterion::black_box(engine.explain(nvidia, at, 25)))
    });
    group.bench_function("metrics refresh (scores, bans, lifts, policy changes of all vendors)", |b| {
        b.iter(|| criterion::black_box(chiprisk::telemetry::score_families(Some(engine), at)))
    });
    // The status page's chart and its API: four years, weekly (209 points).
    let four_years_ago = Timestamp::parse_rfc3339("2022-11-29T00:00:00Z").unwrap();
    group.bench_function("history (one vendor, 4 years weekly)", |b| {
        b.iter(|| criterion::black_box(engine.history(nvidia, four_years_ago, at, Span::WEEK)))
    });
    group.bench_function("timeline (one vendor, 4 years)", |b| {
        b.iter(|| criterion::black_box(engine.timeline(nvidia, four_years_ago, at)))
    });
    group.finish();
}

/// Events a hostile producer sends: thousands of unknown keys (refused
/// after the 65th, `MAX_UNKNOWN_FIELDS`), and 64 unknown keys (the most
/// accepted), each against the same bytes in one unknown field.
fn hostile(c: &mut Criterion) {
    let decoder = Decoder::new(Arc::new(Catalog::default()), Limits::default());
    let head = r#"{"type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"value":0.1"#;
    for (count, accepted) in [(5_000, false), (64, true)] {
        let keys: String = (0..count).map(|k| format!(r#","k{k}":0"#)).collect();
        let many = |i: usize| format!(r#"{head},"id":"h{i}"{keys}}}"#);
        let padded = |i: usize| {
            let pad = many(i).len() - format!(r#"{head},"id":"h{i}","pad":""}}"#).len();
            format!(r#"{head},"id":"h{i}","pad":"{}"}}"#, "x".repeat(pad))
        };
        let (many, padded): (Vec<String>, Vec<String>) = ((0..200).map(many).collect(), (0..200).map(padded).collect());
        assert_eq!(many[0].len(), padded[0].len());
        assert_eq!(decoder.decode(many[0].as_bytes()).is_ok(), accepted);
        assert!(decoder.decode(padded[0].as_bytes()).is_ok());
        let mut group = c.benchmark_group(format!("hostile: 200 events of {} B", many[0].len()));
        group.sample_size(10);
        let label = format!("{count} unknown keys each");
        for (label, batch) in [(label.as_str(), &many), ("the same bytes in one unknown field", &padded)] {
            group.bench_function(label, |b| {
                b.iter(|| {
                    for e in batch {
                        criterion::black_box(decoder.decode(e.as_bytes()).is_ok());
                    }
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, pipeline, hostile);
criterion_main!(benches);
