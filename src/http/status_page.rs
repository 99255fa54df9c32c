//! `/`: the page for people: how the risk moved over time and which policy
//! moves drove it (an SVG chart with a timeline, and both as text), the
//! scores now with their components drawn, and per vendor what drives the
//! score. Event text comes from outside, so everything is escaped.

use super::present::{self, day, escape_html, Medium};
use super::{api, chart};
use crate::engine::{Explanation, HistoryPoint, TimelineEvent};
use crate::event::{Component, Span, Timestamp};
use crate::report::ScoresReport;
use crate::state::{Reader, Rebuilding};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::fmt::Write;
use std::sync::Arc;

const HEAD: &str = concat!(
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
);

/// The rest of the page's head, and its heading.
const TOP: &str = concat!(
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

/// Most moves listed under the chart (the latest).
const TIMELINE_ITEMS: usize = 300;

pub async fn page(State(state): State<Reader>, Query(q): Query<PageQuery>) -> Response {
    // Scoring the history under the board's lock is CPU work: off the tokio workers.
    tokio::task::spawn_blocking(move || render(&state, &q, Timestamp::now()))
        .await
        .unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered\n").into_response())
}

/// The page as of `now`: the header, the history, the scores now, and what
/// drives each score.
fn render(state: &Reader, q: &PageQuery, now: Timestamp) -> Response {
    let report = match state.report(now) {
        Ok(report) => report,
        Err(r) => return rebuilding(&r),
    };
    let ranked = report.ranked();
    let chosen: Vec<&Explanation> = match q.vendor.as_deref() {
        Some(v) => ranked.iter().copied().filter(|x| x.vendor == v).collect(),
        None => ranked.iter().copied().take(TOP_VENDORS).collect(),
    };
    let mut h = String::with_capacity(64 * 1024);
    h.push_str(HEAD);
    h.push_str(TOP);
    as_of(&mut h, &report);
    vendor_nav(&mut h, &ranked, q.vendor.as_deref());
    history_section(&mut h, state, &chosen, now);
    scores_table(&mut h, &ranked);
    h.push_str("<h2>What drives each score</h2>");
    for x in ranked.into_iter().filter(|x| present::is_explained(x)) {
        drivers(&mut h, x);
    }
    h.push_str("<p><a href=\"/api/v1/scores\">JSON</a> &middot; <a href=\"/metrics\">metrics</a></p></body></html>");
    Html(h).into_response()
}

/// While the scores are rebuilt: how far the rebuild has got, refreshed
/// every two seconds.
fn rebuilding(r: &Rebuilding) -> Response {
    let page = format!(
        "{HEAD}<meta http-equiv=\"refresh\" content=\"2\"><title>chiprisk: rebuilding</title></head>\
         <body><h1>China-market risk by chip vendor</h1><p id=\"rebuilding\">{}</p></body></html>",
        escape_html(&r.describe())
    );
    (StatusCode::SERVICE_UNAVAILABLE, Html(page)).into_response()
}

/// When the scores are as of, and what they are made of.
fn as_of(h: &mut String, report: &ScoresReport) {
    let s = report.summary;
    let _ = write!(
        h,
        "<p>As of {} &middot; {} events scored, {} duplicates, {} rejected &middot; live</p>",
        Medium::Html.time(report.as_of),
        s.accepted,
        s.duplicates,
        s.rejected,
    );
}

/// Links that choose the vendors drawn: the top few, or one.
fn vendor_nav(h: &mut String, ranked: &[&Explanation], chosen: Option<&str>) {
    h.push_str("<nav aria-label=\"Vendors\">Show: ");
    let current = |v: Option<&str>| if chosen == v { " aria-current=\"page\"" } else { "" };
    let _ = write!(h, "<a href=\"/\"{}>top {TOP_VENDORS}</a>", current(None));
    for x in ranked {
        let _ = write!(
            h,
            " <a href=\"/?vendor={}\"{}>{}</a>",
            escape_html(&x.vendor),
            current(Some(&x.vendor)),
            escape_html(&x.name)
        );
    }
    h.push_str("</nav>");
}

/// Every vendor's score now, its components drawn and in numbers, and its
/// bans in force.
fn scores_table(h: &mut String, ranked: &[&Explanation]) {
    h.push_str("<h2>Scores now</h2><div class=\"wide\"><table id=\"scores\"><thead><tr><th>Vendor</th><th>Origin</th><th>Score</th><th>Components</th>");
    for c in Component::ALL {
        let _ = write!(h, "<th>{}</th>", present::component_heading(c));
    }
    h.push_str("<th>Bans in force</th></tr></thead><tbody>");
    for x in ranked {
        let _ = write!(
            h,
            "<tr data-vendor=\"{}\"><td><a href=\"#v-{}\">{}</a></td><td>{}</td><td class=\"num score\">{}</td><td>{}</td>",
            escape_html(&x.vendor),
            escape_html(&x.vendor),
            escape_html(&x.name),
            escape_html(&x.origin),
            present::score(x.score),
            chart::components(&x.as_score()),
        );
        for pressure in present::component_pressures(x) {
            let _ = write!(h, "<td class=\"num\">{pressure}</td>");
        }
        let _ = write!(h, "<td class=\"num\">{}</td></tr>", x.bans_in_force.len());
    }
    h.push_str("</tbody></table></div>");
}

/// The chart of the chosen vendors' scores from the first event to now,
/// their timeline, and both as text: a table and a list.
fn history_section(h: &mut String, state: &Reader, chosen: &[&Explanation], now: Timestamp) {
    let Ok((from, to, step)) = api::resolve_range(state, None, None, None, now) else { return };
    let every = every_step(step);
    let histories = histories(state, chosen, from, to, step);
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
    let _ = write!(
        h,
        "<h2>Score over time</h2><figure class=\"chart-wide\">{}<figcaption>{every} since {}, as chiprisk computes them \
         for each date from the events that had occurred by then. Marks below the lines: export bans, lifts and licences, \
         purchase bans, domestic adoption and roadmaps (hover for the title; all listed below).</figcaption></figure>",
        chart::history(&chart::WIDE, &series, shown, from, to, &every),
        day(from),
    );
    narrow_chart(h, state, chosen, &series, shown, (from, to));
    history_table(h, &series);
    timeline_list(h, shown, moves.len() - shown.len());
}

/// The scores of each of `chosen` at each step, for those that have them.
fn histories(
    state: &Reader,
    chosen: &[&Explanation],
    from: Timestamp,
    to: Timestamp,
    step: Span,
) -> Vec<Arc<Vec<HistoryPoint>>> {
    chosen.iter().filter_map(|x| state.history(&x.vendor, from, to, step).ok().flatten()).collect()
}

/// The recent years for a phone, whose width cannot show the whole
/// history legibly (the table below has it all).
fn narrow_chart(
    h: &mut String,
    state: &Reader,
    chosen: &[&Explanation],
    series: &[chart::Series<'_>],
    shown: &[(&str, &TimelineEvent)],
    (from, to): (Timestamp, Timestamp),
) {
    let recent_from = to.saturating_sub(Span::days(RECENT_DAYS)).max(from);
    let range = api::resolve_range(state, Some(&recent_from.to_string()), Some(&to.to_string()), None, to);
    let (recent, recent_every) = match range {
        Ok((f, t, step)) => (histories(state, chosen, f, t, step), every_step(step)),
        Err(_) => (Vec::new(), String::new()),
    };
    let recent_series: Vec<chart::Series<'_>> = series
        .iter()
        .zip(&recent)
        .map(|(s, points)| chart::Series { vendor: s.vendor, name: s.name, points })
        .collect();
    let _ = write!(
        h,
        "<figure class=\"chart-narrow\">{}<figcaption>{recent_every} since {} (the last {} years at most); the whole \
         history since {} is drawn on a wider screen, and is in the table below. Marks: export bans, lifts and \
         licences, purchase bans, domestic adoption and roadmaps (all listed below).</figcaption></figure>",
        chart::history(&chart::NARROW, &recent_series, shown, recent_from, to, &recent_every),
        day(recent_from),
        RECENT_DAYS / 365,
        day(from),
    );
}

/// The chart as a table: one row a quarter, and the last.
fn history_table(h: &mut String, series: &[chart::Series<'_>]) {
    h.push_str("<details><summary>The chart as a table</summary><div class=\"wide\"><table id=\"history-table\"><thead><tr><th>Date</th>");
    for s in series {
        let _ = write!(h, "<th>{}</th>", escape_html(s.name));
    }
    h.push_str("</tr></thead><tbody>");
    let rows = series.first().map_or(0, |s| s.points.len());
    for i in (0..rows).filter(|i| i % 13 == 0 || *i + 1 == rows) {
        let _ = write!(h, "<tr><td><time>{}</time></td>", day(series[0].points[i].at));
        for s in series {
            let _ = write!(h, "<td class=\"num\">{}</td>", present::score(s.points[i].score.score));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></div></details>");
}

/// The moves `shown` as a list, latest first, and how many earlier ones
/// are left out.
fn timeline_list(h: &mut String, shown: &[(&str, &TimelineEvent)], earlier: usize) {
    h.push_str("<h2>Timeline</h2><ol id=\"timeline\" reversed aria-label=\"Policy and market moves, latest first\">");
    for (name, e) in shown.iter().rev() {
        let _ = write!(
            h,
            "<li data-type=\"{}\"><time datetime=\"{}\">{}</time> &middot; {} &middot; {}: {}</li>",
            e.kind,
            escape_html(&e.occurred_at.to_string()),
            day(e.occurred_at),
            escape_html(name),
            e.kind.label(),
            escape_html(present::title(e.title.as_deref(), &e.event_id)),
        );
    }
    if earlier > 0 {
        let _ = write!(h, "<li>{earlier} earlier moves not listed</li>");
    }
    h.push_str("</ol>");
}

/// How often a chart draws a point: "Weekly scores", or every few weeks
/// for a history longer than 38 years.
fn every_step(step: Span) -> String {
    match step.nanos() / Span::WEEK.nanos() {
        1 => "Weekly scores".to_owned(),
        weeks => format!("Scores every {weeks} weeks"),
    }
}

/// What drives one vendor's score: its bans in force, and the events that
/// move it most.
fn drivers(h: &mut String, x: &Explanation) {
    let _ = write!(
        h,
        "<section class=\"drivers\" id=\"v-{}\"><h3>{} &mdash; {}</h3>",
        escape_html(&x.vendor),
        escape_html(&x.name),
        present::score(x.score)
    );
    if !x.bans_in_force.is_empty() {
        h.push_str("<p>Bans in force:</p><ul>");
        for b in &x.bans_in_force {
            let relief =
                present::relief_percent(b).map(|p| format!(" (relieved {p}% by a licence)")).unwrap_or_default();
            let title = escape_html(present::title(b.title.as_deref(), &b.event_id));
            let _ = write!(h, "<li>{}: {title}{relief}</li>", present::ban(b, Medium::Html));
        }
        h.push_str("</ul>");
    }
    h.push_str("<ol>");
    for c in x.contributions.iter().take(8) {
        let _ = write!(
            h,
            "<li>{} {} &middot; {} &middot; {} ({})</li>",
            present::contribution(c.contribution),
            c.component,
            c.kind,
            escape_html(present::title(c.title.as_deref(), &c.event_id)),
            Medium::Html.time(c.occurred_at),
        );
    }
    h.push_str("</ol></section>");
}
