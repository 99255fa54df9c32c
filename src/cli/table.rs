//! The human-readable score table of `chiprisk replay`.

use crate::event::Component;
use crate::report::{decimals, signed_decimals, ScoresReport};
use std::io::{self, Write};

pub fn write(out: &mut impl Write, report: &ScoresReport, explain: bool) -> io::Result<()> {
    writeln!(out, "China-market risk as of {}", report.as_of)?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<16} {:<6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}",
        "VENDOR", "ORIGIN", "SCORE", "EXPORT", "CHINA", "COMPET", "SUPPLY", "MARKET", "BANS"
    )?;
    let ranked = report.ranked();
    for x in &ranked {
        writeln!(
            out,
            "{:<16} {:<6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>5}",
            x.vendor,
            x.origin,
            decimals(x.score, 1),
            decimals(x.component(Component::ExportControls), 3),
            decimals(x.component(Component::ChinaPolicy), 3),
            decimals(x.component(Component::Competition), 3),
            decimals(x.component(Component::Supply), 3),
            decimals(x.component(Component::Market), 3),
            x.bans_in_force.len()
        )?;
    }
    if !explain {
        return Ok(());
    }
    for x in ranked.iter().filter(|x| !x.contributions.is_empty() || !x.bans_in_force.is_empty()) {
        writeln!(out)?;
        writeln!(out, "{} ({}): {}, pressure {}", x.name, x.vendor, decimals(x.score, 1), decimals(x.pressure, 3))?;
        for b in &x.bans_in_force {
            let relief = if b.relief > 0.0 {
                format!(", {}% relieved by a licence", decimals(b.relief * 100.0, 0))
            } else {
                String::new()
            };
            writeln!(
                out,
                "  ban in force: {} ban on {} since {}{}: {}",
                b.kind,
                b.product.as_deref().unwrap_or("all products"),
                b.since,
                relief,
                b.title.as_deref().unwrap_or(&b.event_id)
            )?;
        }
        for c in &x.contributions {
            writeln!(
                out,
                "  {:>8}  {:<15} {:<20} {}  {}{}",
                signed_decimals(c.contribution, 3),
                c.component.as_str(),
                c.kind.as_str(),
                c.occurred_at.to_datetime().format("%Y-%m-%d"),
                c.title.as_deref().unwrap_or(&c.event_id),
                c.product.as_deref().map(|p| format!(" [{p}]")).unwrap_or_default()
            )?;
        }
        if x.other_contributions.count > 0 {
            writeln!(
                out,
                "  {:>8}  ({} smaller contributions)",
                signed_decimals(x.other_contributions.pressure, 3),
                x.other_contributions.count
            )?;
        }
    }
    Ok(())
}
