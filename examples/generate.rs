//! Writes N synthetic events as JSON lines to stdout, for benchmarks:
//! `cargo run --release --example generate -- 1000000 > events.jsonl`
use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let seed: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(1);
    let mut g = chiprisk::synthetic::Generator::new(seed);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for _ in 0..n {
        writeln!(out, "{}", g.event())?;
    }
    out.flush()
}
