//! `/`: a small page for people: the score table and, per vendor, what
//! drives the score. Event text comes from outside, so everything is escaped.

use crate::engine::Explanation;
use crate::event::Component;
use crate::event::Timestamp;
use crate::state::Reader;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use std::fmt::Write;

const HEAD: &str = concat!(
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
);

pub async fn page(State(state): State<Reader>) -> Response {
    let report = match state.report(Timestamp::now()) {
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
    let mut h = String::with_capacity(16 * 1024);
    h.push_str(HEAD);
    h.push_str(concat!(
        "<meta http-equiv=\"refresh\" content=\"30\"><title>chiprisk: China-market risk</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:72rem}",
        "table{border-collapse:collapse}td,th{padding:.3rem .7rem;border-bottom:1px solid #ddd;text-align:left}",
        "td.num{text-align:right;font-variant-numeric:tabular-nums}.drivers{font-size:.9rem;color:#333}</style>",
        "</head><body><h1>China-market risk by chip vendor</h1>"
    ));
    let s = report.summary;
    let _ = write!(
        h,
        "<p>As of {} &middot; {} events scored, {} duplicates, {} rejected &middot; live</p>",
        escape_html(&report.as_of.to_string()),
        s.accepted,
        s.duplicates,
        s.rejected,
    );
    h.push_str("<table id=\"scores\"><thead><tr><th>Vendor</th><th>Origin</th><th>Score</th><th>Export controls</th><th>China policy</th><th>Competition</th><th>Supply</th><th>Market</th><th>Bans in force</th></tr></thead><tbody>");
    let ranked = report.ranked();
    for x in &ranked {
        let _ = write!(
            h,
            "<tr data-vendor=\"{}\"><td><a href=\"#v-{}\">{}</a></td><td>{}</td><td class=\"num score\">{:.1}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td></tr>",
            escape_html(&x.vendor),
            escape_html(&x.vendor),
            escape_html(&x.name),
            escape_html(&x.origin),
            x.score,
            x.component(Component::ExportControls),
            x.component(Component::ChinaPolicy),
            x.component(Component::Competition),
            x.component(Component::Supply),
            x.component(Component::Market),
            x.bans_in_force.len(),
        );
    }
    h.push_str("</tbody></table><h2>What drives each score</h2>");
    for x in ranked.iter().filter(|x| !x.contributions.is_empty() || !x.bans_in_force.is_empty()) {
        drivers(&mut h, x);
    }
    h.push_str("<p><a href=\"/api/v1/scores\">JSON</a> &middot; <a href=\"/metrics\">metrics</a></p></body></html>");
    Html(h).into_response()
}

fn drivers(h: &mut String, x: &Explanation) {
    let _ = write!(
        h,
        "<section class=\"drivers\" id=\"v-{}\"><h3>{} &mdash; {:.1}</h3>",
        escape_html(&x.vendor),
        escape_html(&x.name),
        x.score
    );
    if !x.bans_in_force.is_empty() {
        h.push_str("<p>Bans in force:</p><ul>");
        for b in &x.bans_in_force {
            let _ = write!(
                h,
                "<li>{} ban on {} since {}: {}{}</li>",
                b.kind,
                escape_html(b.product.as_deref().unwrap_or("all products")),
                escape_html(&b.since.to_string()),
                escape_html(b.title.as_deref().unwrap_or(&b.event_id)),
                if b.relief > 0.0 {
                    format!(" (relieved {:.0}% by a licence)", b.relief * 100.0)
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
            "<li>{:+.3} {} &middot; {} &middot; {} ({})</li>",
            c.contribution,
            c.component,
            c.kind,
            escape_html(c.title.as_deref().unwrap_or(&c.event_id)),
            escape_html(&c.occurred_at.to_string()),
        );
    }
    h.push_str("</ol></section>");
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
