//! Shared test helpers: start the whole app on port 0, find tools.
#![allow(dead_code)]

use chiprisk::app::Application;
use chiprisk::config::Settings;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: SocketAddr,
    /// The probe listener (`http.probe_listen`), if configured.
    pub probes: Option<SocketAddr>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn json(&self, path: &str) -> serde_json::Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.expect("json body")
    }

    /// Stops the app through its shutdown future and waits for it to end.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

/// The defaults, listening on 127.0.0.1:0.
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.http.listen = "127.0.0.1:0".into();
    settings
}

/// Settings for an app that stays rebuilding: its event log is on a mock
/// broker that is down. Keep the cluster alive as long as the app.
pub fn rebuilding_settings(
) -> (rdkafka::mocking::MockCluster<'static, rdkafka::producer::DefaultProducerContext>, Settings) {
    let mock = rdkafka::mocking::MockCluster::new(1).expect("mock cluster");
    mock.create_topic("chiprisk.events", 1, 1).unwrap();
    mock.broker_down(1).unwrap();
    let mut settings = test_settings();
    settings.kafka.brokers = Some(mock.bootstrap_servers());
    settings.kafka.create_topics = false;
    settings.kafka.accept_history_loss = true;
    (mock, settings)
}

/// Starts the app on 127.0.0.1:0 with the given event file (or the bundled
/// scenario) and waits until it is ready.
pub async fn spawn_app(events: Option<&Path>) -> TestApp {
    let mut settings = test_settings();
    settings.source.file = events.map(Path::to_owned);
    settings.source.poll_interval_ms = std::time::Duration::from_millis(20);
    spawn_with(settings).await
}

/// Starts the app and waits until it is ready.
pub async fn spawn_with(settings: Settings) -> TestApp {
    let t = start(settings).await;
    wait_until_within(Duration::from_secs(60), || async { t.get("/readyz").await.status() == 200 }).await;
    t
}

/// Starts the app without waiting for it to be ready.
pub async fn start(settings: Settings) -> TestApp {
    let app = Application::build(&settings).await.expect("app builds");
    let addr = app.local_addr();
    let probes = app.probe_addr();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(app.run(async move {
        let _ = rx.await;
    }));
    TestApp { addr, probes, client: http_client(&settings), stop: Some(tx), task: Some(task) }
}

/// An HTTP client for an app with these settings. It drops idle pooled
/// connections well before the server closes them (the smaller of
/// `http.idle_timeout_ms` and `http.header_read_timeout_ms`): a request
/// sent on a connection the server is closing at that moment fails
/// (`IncompleteMessage`), which made tests that wait out a 10 s broker
/// outage flaky.
pub fn http_client(settings: &Settings) -> reqwest::Client {
    let server_closes = settings.http.idle_timeout_ms.min(settings.http.header_read_timeout_ms);
    reqwest::Client::builder().pool_idle_timeout(server_closes / 2).build().expect("http client")
}

/// Polls `check` every 20 ms for up to 10 s.
pub async fn wait_until<F, Fut>(check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_until_within(Duration::from_secs(10), check).await
}

/// Polls `check` every 20 ms for up to `limit`.
pub async fn wait_until_within<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not met within {limit:?}");
}

/// The path of an external tool, or `None` to skip. When the project's test
/// script runs (CHIPRISK_REQUIRE_TOOLS=1), a missing tool fails the test.
pub fn tool(name: &str, candidates: &[&str]) -> Option<PathBuf> {
    let found = candidates.iter().map(PathBuf::from).find(|p| p.is_file()).or_else(|| {
        std::env::var_os("PATH")
            .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()))
    });
    if found.is_none() {
        assert!(
            std::env::var("CHIPRISK_REQUIRE_TOOLS").is_err(),
            "{name} is required (CHIPRISK_REQUIRE_TOOLS is set); scripts/test installs it"
        );
        eprintln!("skipping: {name} is not installed (scripts/test installs it)");
    }
    found
}

pub fn example_scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-scenario.jsonl")
}

/// One case of the bad-input matrix (`tests/data/bad-events.json`).
pub struct BadEvent {
    pub name: String,
    pub reason: String,
    pub message_contains: String,
    pub bytes: Vec<u8>,
}

/// The bad-input matrix, expanded: `<<N*s>>` in a `json` case is `s`
/// repeated N times; a `hex` case is raw bytes.
pub fn bad_events() -> Vec<BadEvent> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bad-events.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let text = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_else(|| panic!("{k} in {v}")).to_owned();
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|case| {
            let bytes = match case.get("hex") {
                Some(hex) => (0..hex.as_str().unwrap().len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex.as_str().unwrap()[i..i + 2], 16).unwrap())
                    .collect(),
                None => expand(&text(case, "json")).into_bytes(),
            };
            BadEvent {
                name: text(case, "name"),
                reason: text(case, "reason"),
                message_contains: text(case, "message_contains"),
                bytes,
            }
        })
        .collect()
}

fn expand(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("<<") {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find(">>").expect("<< without >>");
        let (count, unit) = rest[start + 2..end].split_once('*').expect("<<N*s>>");
        out.push_str(&unit.repeat(count.parse().unwrap()));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Where `text` prints a number that is zero with a minus sign (`-0`,
/// `-0.000`), the text around it.
pub fn negative_zero(text: &str) -> Option<&str> {
    text.match_indices("-0").map(|(i, _)| i).find_map(|i| {
        let before = text[..i].chars().next_back();
        let number: &str = text[i + 1..].split(|c: char| !(c.is_ascii_digit() || c == '.')).next().unwrap_or("");
        let zero = number.chars().all(|c| c == '0' || c == '.');
        let starts = !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        (zero && starts).then(|| &text[i.saturating_sub(40)..(i + 40).min(text.len())])
    })
}
