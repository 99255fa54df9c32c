//! The command line, as a user runs it.

mod helpers;

use assert_cmd::Command;
use helpers::{example_scenario, negative_zero};
use predicates::prelude::*;
use std::io::{Read, Write};

fn chiprisk() -> Command {
    let mut c = Command::cargo_bin("chiprisk").unwrap();
    c.env_remove("CHIPRISK_CONFIG").env("CHIPRISK_LOG", "warn");
    c
}

fn file(lines: &[&str]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f
}

/// Runs `replay --format json --at AT` on a file and parses its output.
fn replay_json(path: &std::path::Path, at: &str) -> serde_json::Value {
    let out = chiprisk()
        .args(["replay", path.to_str().unwrap(), "--format", "json", "--at", at])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

const BAN: &str = r#"{"id":"ban","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"],"products":["H20"],"title":"H20 licence requirement"}"#;
const PRESSURE: &str =
    r#"{"id":"p","type":"procurement_pressure","occurred_at":"2025-08-12T00:00:00Z","vendors":["nvidia"]}"#;

#[test]
fn replay_prints_the_json_contract() {
    let f = file(&[BAN, PRESSURE, BAN]);
    let out = chiprisk()
        .args(["replay", f.path().to_str().unwrap(), "--format", "json", "--at", "2025-09-01T00:00:00Z"])
        .assert()
        .success()
        .stderr(predicate::str::contains("2 accepted, 1 duplicates, 0 rejected"))
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["as_of"], "2025-09-01T00:00:00Z");
    assert_eq!(v["summary"], serde_json::json!({"accepted": 2, "duplicates": 1, "rejected": 0}));
    let nvidia = &v["vendors"][0];
    assert_eq!(nvidia["vendor"], "nvidia");
    assert!(nvidia["score"].as_f64().unwrap() > 0.0);
    assert!(nvidia["components"]["export_controls"].as_f64().unwrap() > 0.0);
    assert_eq!(nvidia["bans_in_force"][0]["product"], "H20");
    assert_eq!(nvidia["contributions"].as_array().unwrap().len(), 2);
    assert_eq!(v["vendors"].as_array().unwrap().len(), 11);
}

#[test]
fn replay_as_of_a_time_ignores_later_events() {
    let f = file(&[BAN]);
    let v = replay_json(f.path(), "2025-04-14T00:00:00Z");
    assert_eq!(v["vendors"][0]["score"], 0.0);
}

#[test]
fn bad_lines_are_reported_with_file_and_line_and_processing_goes_on() {
    let f = file(&[
        BAN,
        "{oops",
        "",
        r#"{"id":"x","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["tsmc"]}"#,
        PRESSURE,
    ]);
    let name = f.path().display().to_string();
    chiprisk()
        .args(["replay", &name, "--at", "2025-09-01T00:00:00Z"])
        .assert()
        .success()
        .stderr(predicate::str::contains(format!("{name}:2: malformed_json:")))
        .stderr(predicate::str::contains(format!("{name}:4: unknown_vendor: vendors[0]: \"tsmc\"")))
        .stderr(predicate::str::contains("2 accepted, 0 duplicates, 2 rejected"))
        .stdout(predicate::str::contains("nvidia"));
}

#[test]
fn strict_replay_fails_when_anything_was_rejected() {
    let f = file(&[BAN, "[]"]);
    chiprisk().args(["replay", f.path().to_str().unwrap(), "--strict"]).assert().code(1);
    let f = file(&[BAN]);
    chiprisk().args(["replay", f.path().to_str().unwrap(), "--strict"]).assert().success();
}

#[test]
fn replay_reads_stdin_and_explains() {
    chiprisk()
        .args(["replay", "-", "--explain", "--at", "2025-09-01T00:00:00Z"])
        .write_stdin(format!("{BAN}\n{PRESSURE}"))
        .assert()
        .success()
        .stdout(predicate::str::contains("ban in force: export ban on H20 since 2025-04-15T00:00:00Z"))
        .stdout(predicate::str::contains("procurement_pressure"));
}

#[test]
fn the_bundled_scenario_replays_cleanly_apart_from_its_duplicate() {
    chiprisk()
        .args(["replay", example_scenario().to_str().unwrap(), "--strict"])
        .assert()
        .success()
        .stderr(predicate::str::contains("1 duplicates, 0 rejected"));
}

#[test]
fn a_missing_input_file_exits_66_with_a_clear_message() {
    chiprisk()
        .args(["replay", "/no/such/file.jsonl"])
        .assert()
        .code(66)
        .stderr(predicate::str::contains("cannot open /no/such/file.jsonl"));
}

#[test]
fn validate_checks_without_scoring_and_fails_on_bad_lines() {
    let good = file(&[BAN, PRESSURE]);
    chiprisk()
        .args(["validate", good.path().to_str().unwrap()])
        .assert()
        .success()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("2 accepted"));
    let bad =
        file(&[BAN, r#"{"id":"y","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["amd"]}"#]);
    chiprisk()
        .args(["validate", bad.path().to_str().unwrap()])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(":2: missing_field: value: required field is missing"));
}

#[test]
fn config_prints_the_effective_configuration_with_overrides() {
    chiprisk()
        .arg("config")
        .env("CHIPRISK__HTTP__LISTEN", "0.0.0.0:9999")
        .assert()
        .success()
        .stdout(predicate::str::contains("listen = \"0.0.0.0:9999\""))
        .stdout(predicate::str::contains("[scoring.export_ban]"))
        .stdout(predicate::str::contains("id = \"cambricon\""));
}

#[test]
fn invalid_configuration_exits_78_naming_the_key() {
    chiprisk()
        .arg("config")
        .env("CHIPRISK__SCORING__SCALE", "0")
        .assert()
        .code(78)
        .stderr(predicate::str::contains("scoring.scale"));
    let mut cfg = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    writeln!(cfg, "[htp]\nlisten = \"x\"").unwrap();
    chiprisk()
        .args(["--config", cfg.path().to_str().unwrap(), "config"])
        .assert()
        .code(78)
        .stderr(predicate::str::contains("htp"));
}

#[test]
fn run_serves_until_sigterm() {
    use std::process::{Command as Std, Stdio};
    let bin = assert_cmd::cargo::cargo_bin("chiprisk");
    let mut child = Std::new(bin)
        .args(["run"])
        .env("CHIPRISK__HTTP__LISTEN", "127.0.0.1:0")
        .env("CHIPRISK_LOG", "info")
        .env("CHIPRISK_LOG_FORMAT", "json")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal handlers are installed before the "serving" line is logged.
    use std::io::{BufRead, BufReader};
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut logs = String::new();
    while !logs.contains("serving /metrics") {
        assert!(stderr.read_line(&mut logs).unwrap() > 0, "exited early: {logs}");
    }
    Std::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    stderr.read_to_string(&mut logs).unwrap();
    assert!(child.wait().unwrap().success(), "{logs}");
    assert!(logs.contains("\"message\":\"loaded the bundled history"), "{logs}");
    assert!(logs.contains("SIGTERM received"), "{logs}");
}

#[test]
fn the_worked_example_in_docs_scoring_md_scores_57_2() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/worked-example.jsonl");
    let v = replay_json(&path, "2025-10-01T00:00:00Z");
    let nvidia = &v["vendors"][0];
    let close = |x: &serde_json::Value, want: f64| (x.as_f64().unwrap() - want).abs() < 5e-4;
    assert!((nvidia["score"].as_f64().unwrap() - 57.219).abs() < 1e-3, "{}", nvidia["score"]);
    assert!(close(&nvidia["components"]["export_controls"], 0.3226));
    assert!(close(&nvidia["components"]["china_policy"], 0.5265));
    assert_eq!(nvidia["bans_in_force"][0]["relief"], 0.36);
}

/// The bad-input matrix through `chiprisk replay`: every bad line reported
/// with its line number, reason and field; counted; and the good events
/// around them scored exactly as if the bad ones were absent.
#[test]
fn every_bad_input_is_reported_with_its_line_and_reason_and_changes_no_score() {
    let good: Vec<Vec<u8>> = std::fs::read(example_scenario())
        .unwrap()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let bad = helpers::bad_events();
    assert!(bad.len() >= 50, "the matrix has {} cases", bad.len());
    let mut mixed: Vec<u8> = Vec::new();
    let mut expected = Vec::new();
    let mut line = 0;
    let mut bad_iter = bad.iter();
    for (i, g) in good.iter().enumerate() {
        mixed.extend_from_slice(g);
        mixed.push(b'\n');
        line += 1;
        // Two bad lines after every good one, the rest at the end.
        for b in bad_iter.by_ref().take(if i + 1 == good.len() { usize::MAX } else { 2 }) {
            mixed.extend_from_slice(&b.bytes);
            mixed.push(b'\n');
            line += 1;
            expected.push((line, b));
        }
    }
    assert_eq!(expected.len(), bad.len());
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&mixed).unwrap();
    let at = "2026-06-01T00:00:00Z";
    let out =
        chiprisk().args(["replay", f.path().to_str().unwrap(), "--format", "json", "--at", at]).assert().success();
    let out = out.get_output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = f.path().display().to_string();
    for (line, b) in &expected {
        let prefix = format!("{name}:{line}: {}: ", b.reason);
        let reported = stderr.lines().find(|l| l.starts_with(&prefix));
        let reported = reported.unwrap_or_else(|| panic!("{}: no line starting {prefix:?} in\n{stderr}", b.name));
        assert!(reported.contains(&b.message_contains), "{}: {reported:?} lacks {:?}", b.name, b.message_contains);
    }
    let mixed_report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(mixed_report["summary"]["rejected"], bad.len());
    let clean = replay_json(&example_scenario(), at);
    assert_eq!(mixed_report["vendors"], clean["vendors"], "bad lines changed a score");
    assert_eq!(mixed_report["summary"]["accepted"], clean["summary"]["accepted"]);
}

#[test]
fn publish_dry_run_reports_bad_lines_like_replay_and_needs_no_broker() {
    let f = file(&[BAN, "{not json", PRESSURE]);
    let name = f.path().display().to_string();
    chiprisk()
        .args(["publish", &name, "--dry-run"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("{name}:2: malformed_json: ")))
        .stderr(predicate::str::contains("2 valid, 1 rejected (dry run, nothing sent)"));
    let good = file(&[BAN, PRESSURE]);
    chiprisk().args(["publish", good.path().to_str().unwrap(), "--dry-run"]).assert().success();
}

#[test]
fn publish_without_brokers_exits_78_naming_the_setting() {
    let f = file(&[BAN]);
    chiprisk()
        .args(["publish", f.path().to_str().unwrap()])
        .assert()
        .code(78)
        .stderr(predicate::str::contains("kafka.brokers is not set"));
}

/// The published schema says what the decoder does: its event types, in
/// order, and its default limits. (The binary embeds the schema file, so
/// comparing the two would prove nothing.)
#[test]
fn schema_states_the_decoders_event_types_and_limits() {
    use chiprisk::event::{EventType, Limits, MAX_ID_CHARS};
    let out = chiprisk().arg("schema").assert().success().get_output().stdout.clone();
    let schema: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let p = &schema["properties"];
    let types: Vec<&str> = p["type"]["enum"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(types, EventType::ALL.map(|t| t.as_str()));
    let limits = Limits::default();
    assert_eq!(p["id"]["maxLength"], MAX_ID_CHARS);
    assert_eq!(p["vendors"]["maxItems"], limits.max_vendors);
    assert_eq!(p["products"]["maxItems"], limits.max_products);
    assert_eq!(p["products"]["items"]["maxLength"], limits.max_product_chars);
    assert_eq!(schema["$defs"]["text"]["maxLength"], limits.max_text_chars);
}

#[test]
fn backfill_refuses_a_range_that_ends_before_it_starts() {
    let f = file(&[BAN]);
    chiprisk()
        .args(["backfill", f.path().to_str().unwrap(), "--from", "2025-01-02", "--to", "2025-01-01"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("--to is before --from"));
}

#[test]
fn the_bundled_history_is_real_sourced_and_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/history.jsonl");
    chiprisk().args(["validate", path]).assert().success().stderr(predicate::str::contains("0 duplicates, 0 rejected"));
    let text = std::fs::read_to_string(path).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(events.len() >= 100, "{} events", events.len());
    let mut ids = std::collections::HashSet::new();
    for e in &events {
        assert!(ids.insert(e["id"].as_str().unwrap()), "duplicate id {}", e["id"]);
        let url = e["source_url"].as_str().unwrap_or_default();
        assert!(url.starts_with("https://") || url.starts_with("http://"), "{}: no source_url", e["id"]);
        let title = e["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty() && !title.contains("illustrative"), "{}: {title}", e["id"]);
    }
    let years: std::collections::BTreeSet<&str> =
        events.iter().map(|e| &e["occurred_at"].as_str().unwrap()[..4]).collect();
    assert!(years.contains("2019") && years.contains("2025"), "{years:?}");
}

#[test]
fn replay_prints_no_negative_zero_for_a_pressure_that_has_decayed_below_the_precision() {
    // A negative market signal long ago: its pressure is a tiny negative number.
    let f = file(&[
        r#"{"id":"m","type":"market_signal","occurred_at":"2024-06-01T00:00:00Z","vendors":["huawei"],"value":-0.5}"#,
    ]);
    let v = replay_json(f.path(), "2025-01-01T00:00:00Z");
    let market = v["vendors"][3]["components"]["market"].as_f64().unwrap();
    assert!(market < 0.0 && market > -0.0005, "the case needs a tiny negative pressure: {market}");
    for format in ["table", "json"] {
        let out = chiprisk()
            .args([
                "replay",
                f.path().to_str().unwrap(),
                "--explain",
                "--format",
                format,
                "--at",
                "2025-01-01T00:00:00Z",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(negative_zero(&text), None, "{format}:\n{text}");
    }
    assert_eq!(negative_zero("x -0.000 y"), Some("x -0.000 y"), "the check finds one");
    assert_eq!(negative_zero("a-0 -0.001 -3e-5 2025-01-01"), None);
}

#[test]
fn backfill_writes_each_vendors_last_event_as_of_each_step() {
    let early = r#"{"id":"early","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"value":0.5,"title":"Early news"}"#;
    let f = file(&[early, BAN]);
    let out = chiprisk()
        .args(["backfill", f.path().to_str().unwrap(), "--from", "2024-12-01", "--to", "2025-04-15", "--step", "30d"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    // Steps: 2024-12-01 and 12-31 (no event yet), 2025-01-30, 03-01 and 03-31 (early); 04-30 is past --to.
    let samples = |prefix: &str| -> Vec<String> {
        text.lines().filter(|l| l.starts_with(prefix)).map(|l| l[prefix.len()..].to_owned()).collect()
    };
    let early_at = "1735689600";
    assert_eq!(
        samples(r#"chiprisk_vendor_last_event_timestamp_seconds{job="chiprisk",vendor="nvidia"} "#),
        [1738195200, 1740787200, 1743379200].map(|t| format!("{early_at} {t}")),
        "{text}"
    );
    let info = r#"chiprisk_vendor_last_event_info{event_id="early",job="chiprisk",title="Early news",type="market_signal",vendor="nvidia"} "#;
    assert_eq!(samples(info).len(), 3, "{text}");
    assert!(!text.contains("event_id=\"ban\",job=\"chiprisk\",title=\"H20 licence requirement\",type=\"export_ban\""));
    assert_eq!(negative_zero(&text), None);
    // A step on the ban's own time: the ban is the last event from then on.
    let out = chiprisk()
        .args(["backfill", f.path().to_str().unwrap(), "--from", "2025-04-14", "--to", "2025-04-15"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(
            r#"chiprisk_vendor_last_event_timestamp_seconds{job="chiprisk",vendor="nvidia"} 1735689600 1744588800"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"chiprisk_vendor_last_event_timestamp_seconds{job="chiprisk",vendor="nvidia"} 1744675200 1744675200"#
        ),
        "{text}"
    );
    // Prometheus's own tool reads it into blocks.
    let Some(promtool) = helpers::tool("promtool", &["/usr/bin/promtool"]) else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("history.om"), &text).unwrap();
    let out = std::process::Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(dir.path().join("history.om"))
        .arg(dir.path().join("blocks"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
