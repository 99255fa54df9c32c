//! Synthetic events for benchmarks and load tests: deterministic, varied,
//! about 300 bytes each, all valid against the default catalog.

use crate::event::EventType;
use std::fmt::Write;

const VENDORS: [&str; 11] = [
    "nvidia",
    "amd",
    "intel",
    "huawei",
    "cambricon",
    "alibaba-thead",
    "baidu-kunlunxin",
    "hygon",
    "moore-threads",
    "biren",
    "metax",
];
const PRODUCTS: [&str; 8] = ["H20", "H200", "B30A", "RTX Pro 6000D", "MI308", "Gaudi 3", "Ascend 910C", "MLU590"];
const ACTORS: [&str; 6] = ["US Commerce (BIS)", "CAC", "SAMR", "MIIT", "Alibaba Cloud", "Tencent Cloud"];

/// A deterministic generator (SplitMix64), so runs are repeatable.
pub struct Generator {
    seed: u64,
    state: u64,
    next_id: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Self {
        Self { seed, state: seed, next_id: 0 }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    /// One event as a JSON line (without the newline).
    pub fn event(&mut self) -> String {
        let id = self.next_id;
        let seed = self.seed;
        self.next_id += 1;
        // Mostly pressure-like events; bans, lifts and licences are rarer, as in life.
        let roll = self.next() % 100;
        let kind = match roll {
            0..=1 => EventType::ExportBan,
            2 => EventType::ExportBanLifted,
            3 => EventType::LicenseGranted,
            4 => EventType::PurchaseBan,
            5 => EventType::PurchaseBanLifted,
            6..=20 => EventType::ProcurementPressure,
            21..=30 => EventType::AntitrustAction,
            31..=50 => EventType::DomesticAdoption,
            51..=62 => EventType::CompetitorRoadmap,
            63..=75 => EventType::SupplyConstraint,
            _ => EventType::MarketSignal,
        };
        // Two years of event time, second resolution.
        let secs = 1_735_689_600 + (self.next() % (2 * 365 * 86_400)) as i64;
        let at = chrono::DateTime::from_timestamp(secs, 0).expect("in range").format("%Y-%m-%dT%H:%M:%SZ");
        let v1 = self.pick(&VENDORS);
        let mut s = String::with_capacity(360);
        let _ = write!(s, r#"{{"id":"syn-{seed}-{id:010}","type":"{kind}","occurred_at":"{at}","vendors":["{v1}""#);
        if self.next() % 4 == 0 {
            let v2 = self.pick(&VENDORS);
            if v2 != v1 {
                let _ = write!(s, r#","{v2}""#);
            }
        }
        s.push(']');
        if !matches!(kind.role(), crate::event::Role::Decaying) && self.next() % 3 != 0 {
            let _ = write!(s, r#","products":["{}"]"#, self.pick(&PRODUCTS));
        }
        let severity = (self.next() % 100) as f64 / 100.0;
        let confidence = (50 + self.next() % 51) as f64 / 100.0;
        let _ = write!(s, r#","severity":{severity},"confidence":{confidence}"#);
        if kind == EventType::MarketSignal {
            let value = (self.next() % 200) as f64 / 100.0 - 1.0;
            let _ = write!(s, r#","value":{value}"#);
        }
        let actor = self.pick(&ACTORS);
        let _ = write!(
            s,
            r#","actor":"{actor}","title":"{actor}: {kind} affecting {v1} in the Chinese market, report {id}","source_url":"https://news.example.org/{id}","schema_version":1}}"#
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decoder, Limits};
    use std::sync::Arc;

    #[test]
    fn generated_events_are_valid_and_about_300_bytes() {
        let d = Decoder::new(Arc::new(crate::Catalog::default()), Limits::default());
        let mut g = Generator::new(7);
        let mut total = 0;
        for _ in 0..2000 {
            let e = g.event();
            total += e.len();
            d.decode(e.as_bytes()).unwrap_or_else(|r| panic!("{e}: {r}"));
        }
        let mean = total / 2000;
        assert!((250..=350).contains(&mean), "mean {mean} bytes");
    }
}
