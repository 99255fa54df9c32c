//! The human-readable score table of `chiprisk replay`, phrased by
//! [`present`] like the status page.

use crate::engine::Explanation;
use crate::event::Component;
use crate::http::present::{self, Medium};
use crate::report::ScoresReport;
use std::fmt::Display;
use std::io::{self, Write};

pub fn write(out: &mut impl Write, report: &ScoresReport, explain: bool) -> io::Result<()> {
    writeln!(out, "China-market risk as of {}", report.as_of)?;
    writeln!(out)?;
    row(out, "VENDOR", "ORIGIN", "SCORE", Component::ALL.map(Component::column), "BANS")?;
    let ranked = report.ranked();
    for x in &ranked {
        let score = present::score(x.score);
        row(out, &x.vendor, &x.origin, &score, present::component_pressures(x), x.bans_in_force.len())?;
    }
    if !explain {
        return Ok(());
    }
    for x in ranked.into_iter().filter(|x| present::is_explained(x)) {
        writeln!(out)?;
        drivers(out, x)?;
    }
    Ok(())
}

/// One line of the table: the vendor, its origin, its score, a column per
/// component and the bans in force.
fn row(
    out: &mut impl Write,
    vendor: &str,
    origin: &str,
    score: &str,
    components: impl IntoIterator<Item = impl Display>,
    bans: impl Display,
) -> io::Result<()> {
    write!(out, "{vendor:<16} {origin:<6} {score:>6}")?;
    for c in components {
        write!(out, " {c:>8}")?;
    }
    writeln!(out, " {bans:>5}")
}

/// What drives a vendor's score: its bans in force, then every
/// contribution listed and the rest summed.
fn drivers(out: &mut impl Write, x: &Explanation) -> io::Result<()> {
    let (score, pressure) = (present::score(x.score), present::pressure(x.pressure));
    writeln!(out, "{} ({}): {score}, pressure {pressure}", x.name, x.vendor)?;
    for b in &x.bans_in_force {
        let relief = present::relief_percent(b).map(|p| format!(", {p}% relieved by a licence")).unwrap_or_default();
        let title = present::title(b.title.as_deref(), &b.event_id);
        writeln!(out, "  ban in force: {}{relief}: {title}", present::ban(b, Medium::Plain))?;
    }
    for c in &x.contributions {
        writeln!(
            out,
            "  {:>8}  {:<15} {:<20} {}  {}{}",
            present::contribution(c.contribution),
            c.component.as_str(),
            c.kind.as_str(),
            present::day(c.occurred_at),
            present::title(c.title.as_deref(), &c.event_id),
            c.product.as_deref().map(|p| format!(" [{p}]")).unwrap_or_default()
        )?;
    }
    if x.other_contributions.count > 0 {
        writeln!(
            out,
            "  {:>8}  ({} smaller contributions)",
            present::contribution(x.other_contributions.pressure),
            x.other_contributions.count
        )?;
    }
    Ok(())
}
