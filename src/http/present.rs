//! Words and numbers for people, written once for every place that shows
//! the scores: the status page and its chart (HTML) and `replay`'s table
//! (a terminal). The page, the chart and the table only lay out what this
//! module phrases:
//! - escaping: [`escape_html`], for every text that came from an event;
//! - times: [`second`] and [`day`];
//! - numbers: [`decimals`], [`score`], [`pressure`], [`contribution`];
//! - labels: [`component_heading`] (components, event types and timeline
//!   rows have theirs in [`crate::event`]);
//! - the report's phrasing: [`title`], [`ban`], [`relief_percent`],
//!   [`is_explained`], in either [`Medium`].
//!
//! It imports nothing else from `http`, so every other module may import it.

use crate::engine::{BanInForce, Explanation};
use crate::event::{Component, Timestamp};
use std::borrow::Cow;

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

/// `2025-04-15 00:00:00 UTC`: a time for people, to the second.
pub fn second(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// `2022-10-07`.
pub fn day(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d").to_string()
}

/// `x` to `places` decimals, for people: a value that rounds to zero prints
/// `0.000`, never `-0.000` (a pressure decayed to a trillionth is no
/// pressure, whatever its sign). JSON keeps the exact values.
pub fn decimals(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    match s.strip_prefix('-') {
        Some(digits) if digits.bytes().all(|b| b == b'0' || b == b'.') => digits.to_owned(),
        _ => s,
    }
}

/// [`decimals`] with the sign always shown (`+0.125`, `-0.125`), but none
/// on a value that rounds to zero (`0.000`).
pub fn signed_decimals(x: f64, places: usize) -> String {
    let s = decimals(x, places);
    let zero = s.bytes().all(|b| b == b'0' || b == b'.');
    if zero || s.starts_with('-') || !x.is_finite() {
        s
    } else {
        format!("+{s}")
    }
}

/// A score (0 to 100), to a tenth: `94.7`.
pub fn score(x: f64) -> String {
    decimals(x, 1)
}

/// A pressure, whole or one component's: `1.407`.
pub fn pressure(x: f64) -> String {
    decimals(x, 3)
}

/// One event's part of a pressure, signed: `+0.250`.
pub fn contribution(x: f64) -> String {
    signed_decimals(x, 3)
}

/// A component as a table's column heading: `Export controls`.
pub fn component_heading(c: Component) -> String {
    let label = c.label();
    let mut first = label.chars();
    first.next().map(|f| f.to_uppercase().chain(first).collect()).unwrap_or_default()
}

/// Each component's pressure of `x`, in [`Component::ALL`]'s order: the
/// component columns of the scores table.
pub fn component_pressures(x: &Explanation) -> impl Iterator<Item = String> + '_ {
    Component::ALL.into_iter().map(|c| pressure(x.component(c)))
}

/// Whether a vendor has anything to explain: a ban in force or an event
/// that moved its score. The page and `replay --explain` explain these.
pub fn is_explained(x: &Explanation) -> bool {
    !x.contributions.is_empty() || !x.bans_in_force.is_empty()
}

/// What an event is called: its title, or its id if it has none.
pub fn title<'a>(title: Option<&'a str>, event_id: &'a str) -> &'a str {
    title.unwrap_or(event_id)
}

/// Where the words go: a terminal, or an HTML page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// As they are; times in RFC 3339.
    Plain,
    /// Escaped; times for people, with RFC 3339 for machines in `datetime`.
    Html,
}

impl Medium {
    /// Text from outside (an event, the catalog), safe in this medium.
    pub fn text(self, s: &str) -> Cow<'_, str> {
        match self {
            Medium::Plain => Cow::Borrowed(s),
            Medium::Html => Cow::Owned(escape_html(s)),
        }
    }

    /// A time: `2025-04-15T00:00:00Z` plain, and in HTML
    /// `<time datetime="2025-04-15T00:00:00Z">2025-04-15 00:00:00 UTC</time>`.
    pub fn time(self, t: Timestamp) -> String {
        match self {
            Medium::Plain => t.to_string(),
            Medium::Html => format!("<time datetime=\"{}\">{}</time>", escape_html(&t.to_string()), second(t)),
        }
    }
}

/// A ban in force: `export ban on H20 since 2025-04-15T00:00:00Z`, or
/// `purchase ban on all products since …`.
pub fn ban(b: &BanInForce, medium: Medium) -> String {
    format!(
        "{} ban on {} since {}",
        b.kind,
        medium.text(b.product.as_deref().unwrap_or("all products")),
        medium.time(b.since)
    )
}

/// How much of a ban a licence relieves, in whole percent (`36`), if any.
pub fn relief_percent(b: &BanInForce) -> Option<String> {
    (b.relief > 0.0).then(|| decimals(b.relief * 100.0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::BanKind;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape_html(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn a_value_that_rounds_to_zero_prints_without_a_sign() {
        assert_eq!(decimals(-0.0, 3), "0.000");
        assert_eq!(decimals(-3.2e-5, 3), "0.000");
        assert_eq!(decimals(-0.0006, 3), "-0.001");
        assert_eq!(decimals(-0.0, 0), "0");
        assert_eq!(decimals(12.345_67, 1), "12.3");
        assert_eq!(signed_decimals(-3.2e-5, 3), "0.000");
        assert_eq!(signed_decimals(0.125, 3), "+0.125");
        assert_eq!(signed_decimals(-0.125, 3), "-0.125");
        assert_eq!(signed_decimals(f64::NAN, 3), "NaN");
    }

    #[test]
    fn component_headings_are_their_labels_capitalised() {
        let headings: Vec<String> = Component::ALL.into_iter().map(component_heading).collect();
        assert_eq!(headings, ["Export controls", "China policy", "Competition", "Supply", "Market"]);
        for c in Component::ALL {
            assert_eq!(c.label(), c.as_str().replace('_', " "));
            assert!(c.column().len() <= 6, "{c}");
        }
    }

    #[test]
    fn a_ban_reads_the_same_in_a_terminal_and_on_the_page_but_escaped() {
        let b = BanInForce {
            kind: BanKind::Export,
            product: Some("<H20>".into()),
            event_id: "b".into(),
            title: None,
            since: "2025-04-15T00:00:00Z".parse().unwrap(),
            relief: 0.36,
            licence_event_id: None,
            contribution: 0.25,
        };
        assert_eq!(ban(&b, Medium::Plain), "export ban on <H20> since 2025-04-15T00:00:00Z");
        assert_eq!(
            ban(&b, Medium::Html),
            "export ban on &lt;H20&gt; since <time datetime=\"2025-04-15T00:00:00Z\">2025-04-15 00:00:00 UTC</time>"
        );
        assert_eq!(relief_percent(&b).as_deref(), Some("36"));
        assert_eq!(relief_percent(&BanInForce { relief: 0.0, ..b }), None);
    }
}
