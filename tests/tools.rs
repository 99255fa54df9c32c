//! Checks by real tools we did not write: promtool parses /metrics, and
//! headless Chromium renders the status page.

mod helpers;

use helpers::{spawn_app, tool};
use std::process::Command;

#[tokio::test]
async fn promtool_accepts_the_metrics_exposition() {
    let Some(promtool) = tool("promtool", &["/usr/bin/promtool"]) else {
        return;
    };
    let app = spawn_app(None).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    app.stop().await;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool check metrics failed:\n{report}");
    assert!(report.trim().is_empty(), "promtool found lint problems:\n{report}");
    for process in ["process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_open_fds "] {
        assert!(text.contains(process), "no {process}in /metrics");
    }
    let build = text.lines().find(|l| l.starts_with("chiprisk_build_info{")).expect("chiprisk_build_info");
    assert!(build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{build}");
    assert!(build.contains(&format!("revision=\"{}\"", env!("CHIPRISK_GIT_REVISION"))), "{build}");
}

/// Runs headless Chromium with `args` on a fresh profile.
async fn chromium(chromium: std::path::PathBuf, args: Vec<String>) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    tokio::task::spawn_blocking(move || {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-quic",
                "--no-first-run",
                "--hide-scrollbars",
                &format!("--user-data-dir={}", profile.path().display()),
            ])
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn headless_chromium_renders_the_history_chart_the_timeline_and_the_score_table() {
    let Some(browser) = tool("chromium", &["/usr/bin/chromium"]) else {
        return;
    };
    let app = spawn_app(None).await;
    let out = chromium(browser.clone(), vec!["--window-size=1280,800".into(), "--dump-dom".into(), app.url("/")]).await;
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    // The bundled history: the top vendors' lines from its first event (2019) to now.
    assert!(dom.contains("<svg id=\"history\""), "no chart in the rendered page:\n{dom}");
    assert!(dom.contains("aria-labelledby=\"history-title history-desc\""), "the chart has a text description");
    assert!(dom.contains("<polyline class=\"series\" data-vendor=\"nvidia\""));
    assert!(dom.contains(">2020</text>") && dom.contains(">2025</text>"), "year ticks");
    // The timeline: the 2022 and 2023 US rules, marked and listed.
    assert!(dom.contains("data-type=\"export_ban\" data-date=\"2022-10-07\""));
    assert!(dom.contains("data-date=\"2023-10-17\""));
    assert!(dom.contains("<ol id=\"timeline\""));
    assert!(dom.contains("<time datetime=\"2022-10-07T00:00:00Z\">2022-10-07</time> · NVIDIA · export ban: BIS issues the advanced computing"));
    // Text alternatives and the score table with components drawn.
    assert!(dom.contains("<table id=\"history-table\">"));
    assert!(dom.contains("<table id=\"scores\">") && dom.contains("class=\"num score\""));
    assert!(dom.contains("<svg class=\"components\"") && dom.contains("aria-label=\"components: export controls"));
    assert!(dom.contains("What drives each score"));
    // Choosing a vendor filters the chart and the timeline.
    let one = chromium(browser.clone(), vec!["--dump-dom".into(), app.url("/?vendor=amd")]).await;
    let one = String::from_utf8_lossy(&one.stdout);
    assert!(one.contains("data-vendor=\"amd\"") && !one.contains("<polyline class=\"series\" data-vendor=\"nvidia\""));
    assert!(one.contains("AMD · export ban") && !one.contains("NVIDIA · export ban"));
    // Screenshots, as a person sees the page: kept as test artifacts.
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&artifacts).unwrap();
    for (name, size) in [("desktop-1280x800", "1280,800"), ("phone-390x844", "390,844")] {
        let shot = artifacts.join(format!("{name}.png"));
        let out = chromium(
            browser.clone(),
            vec![format!("--window-size={size}"), format!("--screenshot={}", shot.display()), app.url("/")],
        )
        .await;
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{name}: {} bytes", png.len());
        println!("screenshot: {}", shot.display());
    }
    app.stop().await;
}

fn rules_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus")
}

#[test]
fn promtool_checks_the_alert_rules_and_their_unit_tests_pass() {
    let Some(promtool) = tool("promtool", &["/usr/bin/promtool"]) else { return };
    let dir = rules_dir();
    let check = Command::new(&promtool).args(["check", "rules"]).arg(dir.join("chiprisk-rules.yml")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
    let test =
        Command::new(&promtool).args(["test", "rules"]).arg(dir.join("chiprisk-rules.test.yml")).output().unwrap();
    assert!(
        test.status.success(),
        "promtool test rules failed:\n{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
}

#[tokio::test]
async fn every_metric_the_alert_rules_use_is_exported() {
    let rules = std::fs::read_to_string(rules_dir().join("chiprisk-rules.yml")).unwrap();
    let app = spawn_app(None).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    app.stop().await;
    let mut names: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("chiprisk_") && w.len() > "chiprisk_".len())
        .collect();
    names.sort();
    names.dedup();
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        if name.starts_with("chiprisk_kafka_") {
            // Kafka series exist only in Kafka mode: check the registration.
            let source = include_str!("../src/telemetry/metrics.rs");
            assert!(source.contains(&format!("\"{name}\"")), "{name} is not registered");
        } else if name == "chiprisk_memory_limit_bytes" {
            // Only where the cgroup sets a limit (a container); not on every test machine.
            let source = include_str!("../src/telemetry/metrics.rs");
            assert!(source.contains(&format!("\"{name}\"")), "{name} is not registered");
        } else if name == "chiprisk_policy_change_timestamp_seconds" {
            // Only changes of the last 30 days; the bundled scenario's are older.
            let source = include_str!("../src/telemetry/scores.rs");
            assert!(source.contains(&format!("\"{name}\"")), "{name} is not registered");
        } else {
            let series = text.contains(&format!("\n{name}{{")) || text.contains(&format!("\n{name} "));
            assert!(series, "{name} has no series with the bundled scenario");
        }
    }
}

#[test]
fn amtool_accepts_the_example_alertmanager_configuration() {
    let Some(amtool) = tool("amtool", &["/usr/bin/amtool"]) else { return };
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/alertmanager/alertmanager.yml");
    let out = Command::new(amtool).args(["check-config"]).arg(config).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}
