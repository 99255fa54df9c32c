//! Checks by real tools we did not write: promtool parses /metrics, and
//! headless Chromium renders the status page.

mod helpers;

use chiprisk::telemetry::families::{self, Shown};
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
    app.stop().await;
}

/// The page inside an iframe of `width` x `height` CSS pixels, the
/// viewport of that screen (a headless window is at least 500 px wide, so
/// the phone's is an iframe), and a script that writes, once it has been
/// laid out: the iframe's viewport and the page's scroll width, then each
/// chart's id and box (left, right, width, bottom; all 0 if not shown), and
/// the year labels of the charts shown.
fn measuring_page(page: &str, width: u32, height: u32) -> String {
    let srcdoc = page.replace('&', "&amp;").replace('"', "&quot;");
    format!(
        r#"<!doctype html><html><body style="margin:0"><iframe id="f" width="{width}" height="{height}" style="border:0;display:block" srcdoc="{srcdoc}"></iframe><script>
const f = document.getElementById("f");
function measure() {{
  const w = f.contentWindow, d = f.contentDocument;
  const lines = [[w.innerWidth, w.innerHeight, d.documentElement.scrollWidth].join(" ")];
  for (const svg of d.querySelectorAll("svg[id^=history]")) {{
    const r = svg.getBoundingClientRect();
    const years = [...svg.querySelectorAll("text")].map(t => t.textContent).filter(t => /^[0-9]{{4}}$/.test(t));
    lines.push([svg.id, r.left, r.right, r.width, r.bottom, r.width > 0 ? years.join(",") : "-"].join(" "));
  }}
  const pre = document.createElement("pre");
  pre.id = "measured";
  pre.textContent = lines.join("\n");
  document.body.appendChild(pre);
}}
if (f.contentDocument && f.contentDocument.readyState === "complete" && f.contentDocument.querySelector("svg")) measure();
else f.addEventListener("load", measure);
</script></body></html>"#
    )
}

/// Done when 6 of issue 23: at 1280 and at 390 px (a phone), the chart
/// shown is whole on the first screen, no wider than the viewport, and
/// shows the recent years; screenshots of both are kept for people.
#[tokio::test]
async fn headless_chromium_draws_the_chart_whole_within_a_desktop_and_a_phone_screen() {
    let Some(browser) = tool("chromium", &["/usr/bin/chromium"]) else {
        return;
    };
    let app = spawn_app(None).await;
    let page = app.get("/").await.text().await.unwrap();
    let this_year = chrono::Utc::now().format("%Y").to_string();
    let artifacts = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&artifacts).unwrap();
    for (name, width, height, shown) in
        [("desktop-1280x800", 1280, 800, "history"), ("phone-390x844", 390, 844, "history-recent")]
    {
        let file = artifacts.join(format!("{name}-measured.html"));
        std::fs::write(&file, measuring_page(&page, width, height)).unwrap();
        let out = chromium(browser.clone(), vec!["--dump-dom".into(), format!("file://{}", file.display())]).await;
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        let dom = String::from_utf8_lossy(&out.stdout);
        let measured = dom.split("<pre id=\"measured\">").nth(1).and_then(|m| m.split("</pre>").next());
        let measured = measured.unwrap_or_else(|| panic!("{name}: nothing measured:\n{dom}"));
        let mut lines = measured.lines();
        let viewport: Vec<f64> = lines.next().unwrap().split(' ').map(|n| n.parse().unwrap()).collect();
        assert_eq!(viewport[..2], [f64::from(width), f64::from(height)], "{name}: the viewport");
        assert!(viewport[2] <= viewport[0], "{name}: the page scrolls sideways: {measured}");
        let charts: Vec<Vec<&str>> = lines.map(|l| l.split(' ').collect()).collect();
        let drawn: Vec<&Vec<&str>> = charts.iter().filter(|c| c[3].parse::<f64>().unwrap() > 0.0).collect();
        assert_eq!(drawn.len(), 1, "{name}: one chart drawn: {measured}");
        let chart = drawn[0];
        let px = |i: usize| chart[i].parse::<f64>().unwrap();
        assert!(px(1) >= 0.0 && px(2) <= viewport[0], "{name}: the chart fits the width: {measured}");
        assert!(px(3) >= 0.8 * viewport[0].min(1152.0), "{name}: and uses it: {measured}");
        assert!(px(4) <= viewport[1], "{name}: the chart is whole on the first screen: {measured}");
        assert_eq!(chart[0], shown, "{name}: {measured}");
        let years: Vec<&str> = chart[5].split(',').collect();
        assert!(years.contains(&this_year.as_str()) && years.len() >= 3, "{name}: the recent years: {measured}");
        // A screenshot, as a person sees the page at that size: kept for the note.
        let shot = artifacts.join(format!("{name}.png"));
        let out = chromium(
            browser.clone(),
            vec![format!("--window-size={width},{height}"), format!("--screenshot={}", shot.display()), app.url("/")],
        )
        .await;
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{name}: {} bytes", png.len());
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (width, height), "{name}: the screenshot's size");
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
        let family = families::find(name).unwrap_or_else(|| panic!("{name} is not a metric family"));
        match family.shown {
            // With the bundled scenario and no Kafka, these have series.
            Shown::Always | Shown::Whole | Shown::LogEndKnown => {
                let series = text.contains(&format!("\n{name}{{")) || text.contains(&format!("\n{name} "));
                assert!(series, "{name} has no series with the bundled scenario");
            }
            // Kafka mode, a container's memory limit, or a change of the
            // last 30 days (the bundled scenario's are older): the
            // e2e and promtool tests see these.
            Shown::Kafka | Shown::MemoryLimit | Shown::RecentChange => {}
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
