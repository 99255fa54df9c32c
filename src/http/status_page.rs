//! `/`: the page for people: how the risk moved over time and which policy
//! moves drove it (an SVG chart with a timeline, and both as text), the
//! scores now with their components drawn, and per vendor what drives the
//! score. Event text comes from outside, so everything is escaped.

use super::{api, chart};
use crate::engine::{Explanation, TimelineEvent};
use crate::event::Component;
use crate::event::Timestamp;
use crate::report::{decimals, signed_decimals};
use crate::state::Reader;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::fmt::Write;

const HEAD: &str = concat!(
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
);

/// `/?vendor=ID`: the chart and the timeline for one vendor instead of the
/// five with the highest scores.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    vendor: Option<String>,
}

/// Vendors drawn when none is chosen.
const TOP_VENDORS: usize = 5;

/// The span of the phone's chart: the last four years.
const RECENT_DAYS: i64 = 4 * 365 + 1;
const DAY_NANOS: i64 = 86_400 * 1_000_000_000;

/// Most moves listed under the chart (the latest).
const TIMELINE_ITEMS: usize = 300;

pub async fn page(State(state): State<Reader>, Query(q): Query<PageQuery>) -> Response {
    // Scoring the history under the board's lock is CPU work: off the tokio workers.
    tokio::task::spawn_blocking(move || render(&state, &q))
        .await
        .unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered\n").into_response())
}

fn render(state: &Reader, q: &PageQuery) -> Response {
    let now = Timestamp::now();
    let report = match state.report(now) {
        Ok(report) => report,
        Err(r) => {
            let page = format!(
                "{HEAD}<meta http-equiv=\"refresh\" content=\"2\"><title>chiprisk: rebuilding</title></head>\
                 <body><h1>China-market risk by chip vendor</h1><p id=\"rebuilding\">{}</p></body></html>",
                escape_html(&r.describe())
            );
            return (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response();
        }
    };
    let ranked = report.ranked();
    let chosen: Vec<&Explanation> = match q.vendor.as_deref() {
        Some(v) => ranked.iter().copied().filter(|x| x.vendor == v).collect(),
        None => ranked.iter().copied().take(TOP_VENDORS).collect(),
    };
    let mut h = String::with_capacity(64 * 1024);
    h.push_str(HEAD);
    h.push_str(concat!(
        "<meta http-equiv=\"refresh\" content=\"60\"><title>chiprisk: China-market risk</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1rem auto;max-width:72rem;padding:0 1rem}",
        "svg.chart{display:block;width:100%;height:auto}figure{margin:0}.wide{overflow-x:auto}",
        ".chart-narrow{display:none}@media (max-width:48rem){.chart-wide{display:none}.chart-narrow{display:block}}",
        "nav a{margin-right:.6rem;white-space:nowrap}",
        "a[aria-current]{font-weight:bold}table{border-collapse:collapse}",
        "td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}",
        "td.num{text-align:right;font-variant-numeric:tabular-nums}.drivers{font-size:.9rem;color:#333}",
        "#timeline{font-size:.9rem;max-height:24rem;overflow-y:auto}time{font-variant-numeric:tabular-nums}</style>",
        "</head><body><h1>China-market risk by chip vendor</h1>"
    ));
    let s = report.summary;
    let _ = write!(
        h,
        "<p>As of {} &middot; {} events scored, {} duplicates, {} rejected &middot; live</p>",
        time(report.as_of),
        s.accepted,
        s.duplicates,
        s.rejected,
    );
    h.push_str("<nav aria-label=\"Vendors\">Show: ");
    let current = |v: Option<&str>| if q.vendor.as_deref() == v { " aria-current=\"page\"" } else { "" };
    let _ = write!(h, "<a href=\"/\"{}>top {TOP_VENDORS}</a>", current(None));
    for x in &ranked {
        let _ = write!(
            h,
            " <a href=\"/?vendor={}\"{}>{}</a>",
            escape_html(&x.vendor),
            current(Some(&x.vendor)),
            escape_html(&x.name)
        );
    }
    h.push_str("</nav>");
    history_section(&mut h, state, &chosen, now);
    h.push_str("<h2>Scores now</h2><div class=\"wide\"><table id=\"scores\"><thead><tr><th>Vendor</th><th>Origin</th><th>Score</th><th>Components</th><th>Export controls</th><th>China policy</th><th>Competition</th><th>Supply</th><th>Market</th><th>Bans in force</th></tr></thead><tbody>");
    for x in &ranked {
        let _ = write!(
            h,
            "<tr data-vendor=\"{}\"><td><a href=\"#v-{}\">{}</a></td><td>{}</td><td class=\"num score\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape_html(&x.vendor),
            escape_html(&x.vendor),
            escape_html(&x.name),
            escape_html(&x.origin),
            decimals(x.score, 1),
            chart::components(&x.as_score()),
            decimals(x.component(Component::ExportControls), 3),
            decimals(x.component(Component::ChinaPolicy), 3),
            decimals(x.component(Component::Competition), 3),
            decimals(x.component(Component::Supply), 3),
            decimals(x.component(Component::Market), 3),
            x.bans_in_force.len(),
        );
    }
    h.push_str("</tbody></table></div><h2>What drives each score</h2>");
    for x in ranked.iter().filter(|x| !x.contributions.is_empty() || !x.bans_in_force.is_empty()) {
        drivers(&mut h, x);
    }
    h.push_str("<p><a href=\"/api/v1/scores\">JSON</a> &middot; <a href=\"/metrics\">metrics</a></p></body></html>");
    Html(h).into_response()
}

/// The chart of the chosen vendors' scores from the first event to now,
/// their timeline, and both as text: a table and a list.
fn history_section(h: &mut String, state: &Reader, chosen: &[&Explanation], now: Timestamp) {
    let Ok(Ok((from, to, step))) = api::resolve_range(state, None, None, None) else { return };
    let every = every_step(step);
    let histories: Vec<_> =
        chosen.iter().filter_map(|x| state.history(&x.vendor, from, to, step).ok().flatten()).collect();
    let series: Vec<chart::Series<'_>> = chosen
        .iter()
        .zip(&histories)
        .map(|(x, points)| chart::Series { vendor: &x.vendor, name: &x.name, points })
        .collect();
    let timelines: Vec<(&str, Vec<TimelineEvent>)> = chosen
        .iter()
        .filter_map(|x| Some((x.name.as_str(), state.timeline(&x.vendor, from, now).ok().flatten()?)))
        .collect();
    let mut moves: Vec<(&str, &TimelineEvent)> =
        timelines.iter().flat_map(|(name, events)| events.iter().map(move |e| (*name, e))).collect();
    moves.sort_by_key(|(name, e)| (e.occurred_at, *name));
    let shown = &moves[moves.len().saturating_sub(TIMELINE_ITEMS)..];
    // The recent years for a phone, whose width cannot show the whole
    // history legibly (the table below has it all).
    let recent_from = Timestamp::from_nanos(to.nanos().saturating_sub(RECENT_DAYS * DAY_NANOS)).max(from);
    let (recent, recent_every): (Vec<_>, _) =
        match api::resolve_range(state, Some(&recent_from.to_string()), Some(&to.to_string()), None) {
            Ok(Ok((f, t, step))) => (
                chosen.iter().filter_map(|x| state.history(&x.vendor, f, t, step).ok().flatten()).collect(),
                every_step(step),
            ),
            _ => (Vec::new(), String::new()),
        };
    let recent_series: Vec<chart::Series<'_>> = series
        .iter()
        .zip(&recent)
        .map(|(s, points)| chart::Series { vendor: s.vendor, name: s.name, points })
        .collect();
    let _ = write!(
        h,
        "<h2>Score over time</h2><figure class=\"chart-wide\">{}<figcaption>{every} since {}, as chiprisk computes them \
         for each date from the events that had occurred by then. Marks below the lines: export bans, lifts and licences, \
         purchase bans, domestic adoption and roadmaps (hover for the title; all listed below).</figcaption></figure>",
        chart::history(&chart::WIDE, &series, shown, from, to, &every),
        chart::day(from),
    );
    let _ = write!(
        h,
        "<figure class=\"chart-narrow\">{}<figcaption>{recent_every} since {} (the last {} years at most); the whole \
         history since {} is drawn on a wider screen, and is in the table below. Marks: export bans, lifts and \
         licences, purchase bans, domestic adoption and roadmaps (all listed below).</figcaption></figure>",
        chart::history(&chart::NARROW, &recent_series, shown, recent_from, to, &recent_every),
        chart::day(recent_from),
        RECENT_DAYS / 365,
        chart::day(from),
    );
    // The chart as a table: one row a quarter.
    h.push_str("<details><summary>The chart as a table</summary><div class=\"wide\"><table id=\"history-table\"><thead><tr><th>Date</th>");
    for s in &series {
        let _ = write!(h, "<th>{}</th>", escape_html(s.name));
    }
    h.push_str("</tr></thead><tbody>");
    let rows = series.first().map_or(0, |s| s.points.len());
    for i in (0..rows).filter(|i| i % 13 == 0 || *i + 1 == rows) {
        let _ = write!(h, "<tr><td><time>{}</time></td>", chart::day(series[0].points[i].at));
        for s in &series {
            let _ = write!(h, "<td class=\"num\">{}</td>", decimals(s.points[i].score.score, 1));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div></details>");
    let _ = write!(
        h,
        "<h2>Timeline</h2><ol id=\"timeline\" reversed aria-label=\"Policy and market moves, latest first\">"
    );
    for (name, e) in shown.iter().rev() {
        let _ = write!(
            h,
            "<li data-type=\"{}\"><time datetime=\"{}\">{}</time> &middot; {} &middot; {}: {}</li>",
            e.kind,
            escape_html(&e.occurred_at.to_string()),
            chart::day(e.occurred_at),
            escape_html(name),
            e.kind.label(),
            escape_html(e.title.as_deref().unwrap_or(&e.event_id)),
        );
    }
    if moves.len() > shown.len() {
        let _ = write!(h, "<li>{} earlier moves not listed</li>", moves.len() - shown.len());
    }
    h.push_str("</ol>");
}

/// How often a chart draws a point: "Weekly scores", or every few weeks
/// for a history longer than 38 years.
fn every_step(step_nanos: i64) -> String {
    match step_nanos / (7 * DAY_NANOS) {
        1 => "Weekly scores".to_owned(),
        weeks => format!("Scores every {weeks} weeks"),
    }
}

fn drivers(h: &mut String, x: &Explanation) {
    let _ = write!(
        h,
        "<section class=\"drivers\" id=\"v-{}\"><h3>{} &mdash; {}</h3>",
        escape_html(&x.vendor),
        escape_html(&x.name),
        decimals(x.score, 1)
    );
    if !x.bans_in_force.is_empty() {
        h.push_str("<p>Bans in force:</p><ul>");
        for b in &x.bans_in_force {
            let _ = write!(
                h,
                "<li>{} ban on {} since {}: {}{}</li>",
                b.kind,
                escape_html(b.product.as_deref().unwrap_or("all products")),
                time(b.since),
                escape_html(b.title.as_deref().unwrap_or(&b.event_id)),
                if b.relief > 0.0 {
                    format!(" (relieved {}% by a licence)", decimals(b.relief * 100.0, 0))
                } else {
                    String::new()
                },
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("<ol>");
    for c in x.contributions.iter().take(8) {
        let _ = write!(
            h,
            "<li>{} {} &middot; {} &middot; {} ({})</li>",
            signed_decimals(c.contribution, 3),
            c.component,
            c.kind,
            escape_html(c.title.as_deref().unwrap_or(&c.event_id)),
            time(c.occurred_at),
        );
    }
    h.push_str("</ol></section>");
}

/// A time for people, to the second in UTC (`2025-04-15 00:00:00 UTC`),
/// with the exact RFC 3339 time for machines in `datetime`.
fn time(t: Timestamp) -> String {
    format!("<time datetime=\"{}\">{}</time>", escape_html(&t.to_string()), chart::second(t))
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            super::escape_html(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }
}
