//! The HTTP surface, against the whole app started on port 0.

mod helpers;

use helpers::{example_scenario, negative_zero, spawn_app, wait_until};
use std::io::Write;

#[tokio::test]
async fn with_no_event_file_the_bundled_history_is_served() {
    let app = spawn_app(None).await;
    let body = app.json("/api/v1/scores").await;
    let vendors = body["vendors"].as_array().unwrap();
    assert_eq!(vendors.len(), 11);
    let nvidia = &vendors[0];
    assert_eq!(nvidia["vendor"], "nvidia");
    assert!(nvidia["score"].as_f64().unwrap() > 50.0, "{nvidia}");
    assert!(!nvidia["bans_in_force"].as_array().unwrap().is_empty());
    assert!(!nvidia["contributions"].as_array().unwrap().is_empty());
    assert!(body["summary"]["accepted"].as_u64().unwrap() >= 100);
    assert_eq!(body["summary"]["duplicates"], 0);
    app.stop().await;
}

/// A process whose event log cannot be read yet (its broker is down) is
/// rebuilding: every answer says so, and none carries a partial score.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_rebuilding_every_endpoint_says_so_and_none_shows_a_score() {
    let (_mock, settings) = helpers::rebuilding_settings();
    let app = helpers::start(settings).await;
    let get = |path: &'static str| {
        let app = &app;
        async move {
            let r = app.get(path).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz").await.0, 200, "alive");
    let (status, body) = get("/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("rebuilding"), "{body}");
    for path in ["/api/v1/scores", "/api/v1/scores/nvidia", "/api/v1/status"] {
        let (status, body) = get(path).await;
        assert_eq!(status, 503, "{path}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["ready"], false, "{path}: {body}");
        assert_eq!(v["rebuilding"]["messages_read"], 0, "{path}: {body}");
        assert!(v["error"].as_str().unwrap().contains("rebuilding from the event log"), "{path}: {body}");
        assert!(v.get("vendors").is_none() && v.get("score").is_none(), "{path}: {body}");
    }
    let (status, page) = get("/").await;
    assert_eq!(status, 503);
    assert!(page.contains("id=\"rebuilding\"") && !page.contains("data-vendor"), "{page}");
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("chiprisk_ready 0"), "{metrics}");
    for absent in ["chiprisk_vendor_", "chiprisk_engine_events", "chiprisk_scores_as_of"] {
        assert!(!metrics.lines().any(|l| l.starts_with(absent)), "{absent} exported while rebuilding");
    }
    app.stop().await;
}

#[tokio::test]
async fn one_vendor_is_explained_and_an_unknown_vendor_is_a_404() {
    let app = spawn_app(None).await;
    let x = app.json("/api/v1/scores/nvidia").await;
    assert_eq!(x["vendor"], "nvidia");
    let c = &x["contributions"][0];
    for field in ["event_id", "type", "title", "component", "contribution"] {
        assert!(!c[field].is_null(), "{field} missing in {c}");
    }
    let r = app.get("/api/v1/scores/tsmc").await;
    assert_eq!(r.status(), 404);
    assert!(r.json::<serde_json::Value>().await.unwrap()["error"].as_str().unwrap().contains("unknown vendor"));
    app.stop().await;
}

#[tokio::test]
async fn scores_can_be_asked_as_of_an_earlier_time_and_bad_times_are_a_400() {
    let app = spawn_app(None).await;
    let before = app.json("/api/v1/scores/nvidia?at=2019-01-01T00:00:00Z").await;
    assert_eq!(before["score"], 0.0, "before the first event of the bundled history");
    assert_eq!(before["as_of"], "2019-01-01T00:00:00Z");
    assert_eq!(before["last_event_at"], serde_json::Value::Null, "no event had occurred yet");
    // Every field as of `at`: the latest event then, not the latest now.
    let mid = app.json("/api/v1/scores/nvidia?at=2025-07-01T00:00:00Z").await;
    let last = mid["last_event_at"].as_str().unwrap();
    assert!(last <= "2025-07-01T00:00:00Z" && last > "2025-01-01", "{last}");
    let r = app.get("/api/v1/scores?at=last-tuesday").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("at:"));
    app.stop().await;
}

#[tokio::test]
async fn metrics_expose_scores_events_and_rejections() {
    let app = spawn_app(None).await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = r.text().await.unwrap();
    for needle in [
        "chiprisk_vendor_risk_score{vendor=\"nvidia\"}",
        "chiprisk_vendor_risk_component_pressure{component=\"export_controls\",vendor=\"nvidia\"}",
        "chiprisk_vendor_bans_in_force{kind=\"export\",vendor=\"nvidia\"}",
        "chiprisk_events_total{outcome=\"accepted\",type=\"export_ban\"} 0",
        "chiprisk_events_total{outcome=\"duplicate\",type=\"export_ban\"} 0",
        "chiprisk_events_rejected_total{reason=\"malformed_json\"} 0",
        "chiprisk_event_processing_duration_seconds_bucket",
        "chiprisk_build_info{revision=",
        "chiprisk_ready 1",
        "chiprisk_rebuild_remaining_messages 0",
    ] {
        assert!(text.contains(needle), "missing {needle}");
    }
    // The bundled history is read at start as history: rebuilt, not traffic.
    let bundled = concat!(env!("CARGO_MANIFEST_DIR"), "/data/history.jsonl");
    let lines = std::fs::read_to_string(bundled).unwrap().lines().filter(|l| !l.trim().is_empty()).count();
    assert!(text.contains(&format!("chiprisk_rebuild_messages_total {lines}\n")), "{lines} lines re-read");
    app.stop().await;
}

#[tokio::test]
async fn only_get_and_head_are_allowed_and_unknown_paths_are_404() {
    let app = spawn_app(None).await;
    let r = app.client.post(app.url("/api/v1/scores")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = app.client.head(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/nope/../../etc/passwd?x=%00").await.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn appended_lines_are_scored_and_bad_lines_are_counted_by_reason() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        r#"{{"id":"a","type":"procurement_pressure","occurred_at":"2025-01-01T00:00:00Z","vendors":["intel"]}}"#
    )
    .unwrap();
    let app = spawn_app(Some(file.path())).await;
    let score = |v: serde_json::Value| v["vendors"][2]["score"].as_f64().unwrap();
    let first = score(app.json("/api/v1/scores").await);
    assert!(first > 0.0);

    writeln!(file, "not json").unwrap();
    writeln!(file, r#"{{"id":"b","type":"purchase_ban","occurred_at":"2025-11-05T00:00:00Z","vendors":["intel"],"title":"<b>x</b>"}}"#).unwrap();
    wait_until(|| async { app.json("/api/v1/scores").await["summary"]["accepted"] == 2 }).await;
    let body = app.json("/api/v1/scores").await;
    assert!(score(body.clone()) > first);
    assert_eq!(body["summary"]["rejected"], 1);
    assert_eq!(body["summary"]["duplicates"], 0);
    let status = app.json("/api/v1/status").await;
    assert_eq!(status["ready"], true);
    assert_eq!(status["summary"], body["summary"], "{status}");
    assert_eq!(status["events_held"], 2);
    // The first line was history; the two appended ones arrived.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("chiprisk_events_rejected_total{reason=\"malformed_json\"} 1"));
    assert!(metrics.contains("chiprisk_events_total{outcome=\"accepted\",type=\"purchase_ban\"} 1"));
    assert!(metrics.contains("chiprisk_events_total{outcome=\"accepted\",type=\"procurement_pressure\"} 0"));
    assert!(metrics.contains("chiprisk_rebuild_messages_total 1\n"));
    app.stop().await;
}

#[tokio::test]
async fn the_status_page_lists_every_vendor_and_escapes_event_text() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(example_scenario(), file.path()).unwrap();
    writeln!(file, r#"{{"id":"xss","type":"purchase_ban","occurred_at":"2025-11-05T00:00:00Z","vendors":["hygon"],"title":"<script>alert(1)</script>"}}"#).unwrap();
    let app = spawn_app(Some(file.path())).await;
    let r = app.get("/").await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("<table id=\"scores\">"));
    for vendor in ["nvidia", "amd", "intel", "huawei", "cambricon", "metax"] {
        assert!(html.contains(&format!("data-vendor=\"{vendor}\"")), "{vendor}");
    }
    assert!(!html.contains("<script>"), "event text must be escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    app.stop().await;
}

#[tokio::test]
async fn the_history_api_answers_what_the_scores_api_says_as_of_each_step() {
    let app = spawn_app(Some(&example_scenario())).await;
    let body: serde_json::Value =
        app.get("/api/v1/scores/nvidia/history?from=2022-09-01&to=2025-12-31&step=30d").await.json().await.unwrap();
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 41, "2022-09-01 + 40 steps of 30 days");
    assert_eq!(body["step_seconds"], 30 * 86_400);
    for p in points.iter().step_by(6) {
        let at = p["at"].as_str().unwrap();
        let then: serde_json::Value = app.get(&format!("/api/v1/scores/nvidia?at={at}")).await.json().await.unwrap();
        assert_eq!(p["score"], then["score"], "{at}");
        assert_eq!(p["components"], then["components"], "{at}");
        // And what `chiprisk replay --at` prints for that date.
        let out = assert_cmd::Command::cargo_bin("chiprisk")
            .unwrap()
            .env_remove("CHIPRISK_CONFIG")
            .args(["replay", example_scenario().to_str().unwrap(), "--format", "json", "--at", at])
            .output()
            .unwrap();
        let replay: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(p["score"], replay["vendors"][0]["score"], "{at}: replay");
        assert_eq!(replay["vendors"][0]["vendor"], "nvidia");
    }
    assert!(points.first().unwrap()["score"].as_f64().unwrap() < points.last().unwrap()["score"].as_f64().unwrap());
    let again: serde_json::Value =
        app.get("/api/v1/scores/nvidia/history?from=2022-09-01&to=2025-12-31&step=30d").await.json().await.unwrap();
    assert_eq!(again, body, "the cached answer is the same");
    app.stop().await;
}

#[tokio::test]
async fn the_history_api_refuses_ranges_it_cannot_answer_with_the_reason() {
    let app = spawn_app(Some(&example_scenario())).await;
    for (query, status, says) in [
        ("nvidia/history?step=1m", 400, "at most 2000"),
        ("nvidia/history?step=1y", 400, "step: "),
        ("nvidia/history?from=2025-02-01&to=2025-01-01", 400, "before from"),
        ("nvidia/history?from=yesterday", 400, "from: "),
        ("tsmc/history", 404, "unknown vendor"),
        ("nvidia/history?step=106752d", 400, "at most 100 years"),
        ("nvidia/history?step=144115188075855872d", 400, "at most 100 years"),
        // The whole span of time: no overflow, and whole weeks (16) that keep it within 2,000 points.
        ("nvidia/history?from=1677-09-22&to=2262-04-10", 200, "\"step_seconds\":9676800"),
    ] {
        let r = app.get(&format!("/api/v1/scores/{query}")).await;
        assert_eq!(r.status().as_u16(), status, "{query}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{query}: {text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn hostile_titles_are_escaped_everywhere_on_the_status_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let hostile =
        [r#"<script>alert(1)</script>"#, r#""><svg onload=alert(2)>"#, r#"</title></circle><script>alert(3)</script>"#];
    let lines: Vec<String> = hostile
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let title = serde_json::to_string(t).unwrap();
            format!(
                r#"{{"id":"h{i}","type":"export_ban","occurred_at":"2025-0{}-01T00:00:00Z","vendors":["nvidia"],"products":["P{i}"],"title":{title}}}"#,
                i + 1
            )
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let app = spawn_app(Some(&path)).await;
    for page in ["/", "/?vendor=nvidia", "/?vendor=%3Cscript%3E"] {
        let html = app.get(page).await.text().await.unwrap();
        assert!(!html.contains("<script") && !html.contains("<svg onload"), "{page}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;") || page.contains("%3C"), "{page}");
    }
    let html = app.get("/?vendor=nvidia").await.text().await.unwrap();
    assert_eq!(
        html.matches("&lt;script&gt;alert(1)&lt;/script&gt;").count(),
        5,
        "chart marks (the wide chart and the phone's), timeline, bans and drivers"
    );
    assert!(
        html.contains("&lt;/title&gt;&lt;/circle&gt;&lt;script&gt;alert(3)"),
        "a title cannot close the chart's markup"
    );
    app.stop().await;
}

/// The whole documented span of time works in the history API and on the
/// page: an event at the first representable instant (1677-09-21), and a
/// range that ends at the last one.
#[tokio::test]
async fn the_first_and_last_instants_of_the_documented_range_work_in_the_history_api_and_on_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let lines = [
        r#"{"id":"first","type":"export_ban","occurred_at":"1677-09-21T00:12:43.145224192Z","vendors":["nvidia"]}"#,
        r#"{"id":"later","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"value":0.5}"#,
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let app = spawn_app(Some(&path)).await;
    // The default range starts at the first event's day, which would begin
    // before the first representable instant.
    let r = app.get("/api/v1/scores/nvidia/history").await;
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    let page = app.get("/?vendor=nvidia").await.text().await.unwrap();
    assert!(page.contains("<svg id=\"history\""), "the page keeps its chart");
    // A range at the very end gives one point per step, none repeated.
    let end = "2262-04-11T23:47:16.854775807Z";
    let one: serde_json::Value =
        app.get(&format!("/api/v1/scores/nvidia/history?from={end}&to={end}")).await.json().await.unwrap();
    assert_eq!(one["points"].as_array().map(Vec::len), Some(1), "{one}");
    let week: serde_json::Value = app
        .get(&format!("/api/v1/scores/nvidia/history?from=2262-04-04T23:47:16Z&to={end}&step=1d"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(week["points"].as_array().map(Vec::len), Some(8), "{week}");
    app.stop().await;
}

/// The page's text without its markup, and without the machine-readable
/// times in `datetime` attributes.
fn page_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[tokio::test]
async fn the_status_page_prints_times_for_people_and_no_negative_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let lines = [
        // A tiny negative pressure by now: shown as 0.000, not -0.000.
        r#"{"id":"m","type":"market_signal","occurred_at":"2024-06-01T00:00:00Z","vendors":["huawei"],"value":-0.5}"#,
        r#"{"id":"b","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"],"products":["H20"],"title":"H20 licence requirement"}"#,
    ];
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let app = spawn_app(Some(&path)).await;
    let html = app.get("/").await.text().await.unwrap();
    app.stop().await;
    assert_eq!(negative_zero(&html), None, "{html}");
    let text = page_text(&html);
    // Every time people read is to the second, in UTC; RFC 3339 only in attributes.
    for (i, _) in text.match_indices('T').filter(|(i, _)| *i >= 10 && i + 6 <= text.len()) {
        let around = &text.as_bytes()[i - 10..i + 6];
        let rfc3339 = around[..4].iter().all(u8::is_ascii_digit) && around[4] == b'-' && around[13] == b':';
        assert!(!rfc3339, "a raw RFC 3339 time in the text: {}", String::from_utf8_lossy(around));
    }
    let as_of = text.split("As of ").nth(1).expect("the header says as of when").trim_start().get(..23).unwrap();
    assert!(as_of.ends_with(" UTC") && as_of.as_bytes()[10] == b' ' && as_of.as_bytes()[16] == b':', "{as_of}");
    assert!(
        html.contains("export ban on H20 since <time datetime=\"2025-04-15T00:00:00Z\">2025-04-15 00:00:00 UTC</time>"),
        "{html}"
    );
}
