//! Server-rendered SVG for the status page: the score history of a few
//! vendors with a timeline of their policy and market moves under it, and
//! a stacked bar of one vendor's components. No script, no external asset;
//! every text from an event is escaped.

use super::present::{self, day, decimals, escape_html};
use crate::engine::{HistoryPoint, Score, TimelineEvent};
use crate::event::{Component, TimelineRow, Timestamp};
use chrono::Datelike;
use std::fmt::Write;

/// One vendor's line.
pub struct Series<'a> {
    pub vendor: &'a str,
    pub name: &'a str,
    pub points: &'a [HistoryPoint],
}

/// Line colours, by series (colour-blind safe, Okabe–Ito).
const COLOURS: [&str; 7] = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];

/// One drawing of the history chart: its SVG id, and its size in SVG
/// units, which are CSS pixels at the width it is drawn for. The page
/// draws [`WIDE`] for screens from a tablet's up and [`NARROW`] for a
/// phone's (390 px), each scaled to the width of the page, so that text
/// stays about the size it is drawn at.
pub struct Layout {
    pub id: &'static str,
    width: f64,
    plot: f64,
}

/// The whole history, on a screen at least 48rem wide.
pub const WIDE: Layout = Layout { id: "history", width: 960.0, plot: 240.0 };
/// The recent years, on a phone (358 px inside the page's margins).
pub const NARROW: Layout = Layout { id: "history-recent", width: 360.0, plot: 180.0 };

const LEFT: f64 = 36.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
/// The timeline's band under the plot: one row per kind of move.
const ROW: f64 = 14.0;
/// One entry of the legend under the timeline.
const LEGEND_ENTRY: f64 = 150.0;
/// Closest two year labels may be, centre to centre.
const YEAR_LABEL: f64 = 40.0;

/// The score history of `series` from `from` to `to`, with the timeline
/// (vendor id, event) under it (moves outside the range are left out) and
/// the legend under both, drawn as `layout` says.
/// `every` says how often a point is drawn ("Weekly scores").
pub fn history(
    layout: &Layout,
    series: &[Series<'_>],
    timeline: &[(&str, &TimelineEvent)],
    from: Timestamp,
    to: Timestamp,
    every: &str,
) -> String {
    let frame = Frame::new(layout, series.len(), from, to);
    let mut h = String::with_capacity(32 * 1024);
    open(&mut h, &frame, series, every);
    score_axis(&mut h, &frame);
    years(&mut h, &frame);
    lines(&mut h, &frame, series);
    timeline_band(&mut h, &frame, timeline);
    legend(&mut h, &frame, series);
    h.push_str("</svg>");
    h
}

/// Where everything of one drawing goes: the plot, the timeline's band
/// under it and the legend under both, and the time and score scales.
struct Frame {
    id: &'static str,
    width: f64,
    plot: f64,
    /// The top of the timeline's band.
    band: f64,
    /// The top of the legend.
    legend: f64,
    /// Legend entries a line.
    columns: usize,
    height: f64,
    from: Timestamp,
    to: Timestamp,
    /// Nanoseconds from `from` to `to`, at least one.
    span: f64,
}

impl Frame {
    fn new(layout: &Layout, series: usize, from: Timestamp, to: Timestamp) -> Self {
        let Layout { id, width, plot } = *layout;
        let band = TOP + plot + 22.0;
        let columns = (((width - LEFT) / LEGEND_ENTRY).floor() as usize).max(1);
        let legend = band + ROW * TimelineRow::ALL.len() as f64 + 4.0;
        let height = legend + ROW * series.div_ceil(columns) as f64 + 4.0;
        let span = (to.nanos() as f64 - from.nanos() as f64).max(1.0);
        Self { id, width, plot, band, legend, columns, height, from, to, span }
    }

    /// The horizontal position of a time.
    fn x(&self, t: Timestamp) -> f64 {
        LEFT + (self.width - LEFT - RIGHT) * (t.nanos() as f64 - self.from.nanos() as f64) / self.span
    }

    /// The vertical position of a score.
    fn y(&self, score: f64) -> f64 {
        TOP + self.plot * (1.0 - score.clamp(0.0, 100.0) / 100.0)
    }

    /// The vertical position of a timeline row's marks.
    fn row(&self, row: TimelineRow) -> f64 {
        self.band + ROW * row.index() as f64
    }
}

/// The SVG element, its title and its description for screen readers.
fn open(h: &mut String, f: &Frame, series: &[Series<'_>], every: &str) {
    let Frame { id, width, height, .. } = *f;
    let names: Vec<&str> = series.iter().map(|s| s.name).collect();
    let _ = write!(
        h,
        "<svg id=\"{id}\" class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title id=\"{id}-title\">China-market risk score over time</title>\
         <desc id=\"{id}-desc\">{} (0 to 100) of {} from {} to {}, with their policy and market moves \
         marked below; the same data is in the table and the list that follow.</desc>",
        escape_html(every),
        escape_html(&names.join(", ")),
        day(f.from),
        day(f.to),
    );
}

/// A line and a label at every quarter of the score's range.
fn score_axis(h: &mut String, f: &Frame) {
    for score in [0, 25, 50, 75, 100] {
        let yy = f.y(f64::from(score));
        let _ = write!(
            h,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#555\">{score}</text>",
            f.width - RIGHT,
            LEFT - 4.0,
            yy + 4.0
        );
    }
}

/// A line at each new year, through the plot and the timeline; a label on
/// every one, or every few when the years are too close for their labels.
fn years(h: &mut String, f: &Frame) {
    let year_width = (f.width - LEFT - RIGHT) * 365.25 * 86_400e9 / f.span;
    let label_every = (YEAR_LABEL / year_width).ceil().max(1.0) as i32;
    for year in f.from.to_datetime().year() + 1..=f.to.to_datetime().year() {
        let Ok(t) = Timestamp::parse_rfc3339(&format!("{year}-01-01T00:00:00Z")) else { continue };
        let xx = f.x(t);
        let _ = write!(
            h,
            "<line class=\"year\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{}\" stroke=\"#eee\"/>",
            f.band + ROW * TimelineRow::ALL.len() as f64,
        );
        if year.rem_euclid(label_every) == 0 {
            let _ = write!(
                h,
                "<text x=\"{xx:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">{year}</text>",
                TOP + f.plot + 15.0
            );
        }
    }
}

/// One line per vendor, in [`COLOURS`]' order.
fn lines(h: &mut String, f: &Frame, series: &[Series<'_>]) {
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut path = String::with_capacity(s.points.len() * 14);
        for p in s.points {
            let _ = write!(path, "{:.1},{:.1} ", f.x(p.at), f.y(p.score.score));
        }
        let _ = write!(
            h,
            "<polyline class=\"series\" data-vendor=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"><title>{}</title></polyline>",
            escape_html(s.vendor),
            path.trim_end(),
            escape_html(s.name)
        );
    }
}

/// The timeline under the plot: each row's label, and a mark per move
/// within the range on its type's row.
fn timeline_band(h: &mut String, f: &Frame, timeline: &[(&str, &TimelineEvent)]) {
    for row in TimelineRow::ALL {
        let _ = write!(
            h,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"9\" fill=\"{}\">{}</text>",
            LEFT + 2.0,
            f.row(row) + 4.0,
            row.colour(),
            row.label()
        );
    }
    for (vendor, e) in timeline.iter().filter(|(_, e)| (f.from..=f.to).contains(&e.occurred_at)) {
        let Some(row) = e.kind.timeline_row() else { continue };
        let colour = row.colour();
        let _ = write!(
            h,
            "<circle class=\"mark\" data-type=\"{}\" data-date=\"{}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"{colour}\" fill-opacity=\"0.7\">\
             <title>{} &middot; {} &middot; {}: {}</title></circle>",
            e.kind,
            day(e.occurred_at),
            f.x(e.occurred_at),
            f.row(row),
            day(e.occurred_at),
            escape_html(vendor),
            e.kind.label(),
            escape_html(present::title(e.title.as_deref(), &e.event_id)),
        );
    }
}

/// The vendors' colours and names under the timeline, `columns` a line.
fn legend(h: &mut String, f: &Frame, series: &[Series<'_>]) {
    h.push_str("<g class=\"legend\">");
    for (i, s) in series.iter().enumerate() {
        let lx = LEFT + LEGEND_ENTRY * (i % f.columns) as f64;
        let ly = f.legend + ROW * (i / f.columns) as f64;
        let _ = write!(
            h,
            "<rect x=\"{lx:.1}\" y=\"{ly:.1}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            COLOURS[i % COLOURS.len()],
            lx + 14.0,
            ly + 9.0,
            escape_html(s.name)
        );
    }
    h.push_str("</g>");
}

/// One vendor's components as a stacked bar whose length is the score.
pub fn components(score: &Score) -> String {
    const BAR: f64 = 140.0;
    let positive: f64 = Component::ALL.iter().map(|c| score.component(*c).max(0.0)).sum();
    let label: Vec<String> =
        Component::ALL.iter().map(|c| format!("{} {}", c.label(), decimals(score.component(*c), 2))).collect();
    let mut h = format!(
        "<svg class=\"components\" width=\"{BAR}\" height=\"12\" viewBox=\"0 0 {BAR} 12\" role=\"img\" aria-label=\"components: {}\">",
        label.join(", ")
    );
    let mut at = 0.0;
    for (i, c) in Component::ALL.iter().enumerate() {
        let share = if positive > 0.0 { score.component(*c).max(0.0) / positive } else { 0.0 };
        let w = BAR * score.score / 100.0 * share;
        if w > 0.0 {
            let _ = write!(
                h,
                "<rect x=\"{at:.1}\" y=\"0\" width=\"{w:.1}\" height=\"12\" fill=\"{}\"><title>{}: {}</title></rect>",
                COLOURS[i],
                c.label(),
                present::pressure(score.component(*c))
            );
        }
        at += w;
    }
    h.push_str("</svg>");
    h
}
