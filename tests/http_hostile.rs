//! Hostile clients never take a replica down (issue 21): clients that
//! pipeline requests and never read their responses hold every API slot,
//! and the probes still answer within a second, the whole time; such
//! clients, idle ones and endless ones lose their slots.

mod helpers;

use helpers::{spawn_with, test_settings};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// How long the hostile clients hold the API port (the figure).
const SIEGE: Duration = Duration::from_secs(30);

/// A probe must answer within this time, as the kubelet's timeout would.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Pipelined requests per hostile connection: far more response bytes than
/// the socket buffers hold.
const PIPELINED: usize = 400;

fn pipeline() -> String {
    "GET /api/v1/scores HTTP/1.1\r\nHost: x\r\n\r\n".repeat(PIPELINED)
}

/// Writes `PIPELINED` requests on `stream` and never reads; returns once
/// the server has dropped the connection (or at `until`).
async fn never_read(stream: &mut TcpStream, until: Instant) {
    let _ = tokio::time::timeout_at(until, async {
        // The write blocks once the server stops reading; it fails once the
        // server closes the connection. Either way, nothing is ever read.
        let _ = stream.write_all(pipeline().as_bytes()).await;
        while stream.write_all(b"\r\n").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

/// A client that never reads; when the server closes its connection, it
/// opens another, until `until`.
async fn hostile_client(addr: SocketAddr, until: Instant) {
    while Instant::now() < until {
        if let Ok(mut stream) = TcpStream::connect(addr).await {
            never_read(&mut stream, until).await;
        }
    }
}

/// One GET on a fresh connection: the status code, if it came within
/// `PROBE_TIMEOUT`.
async fn probe(addr: SocketAddr, path: &str) -> Result<u16, String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.write_all(request.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.map_err(|e| e.to_string())?;
        let code = std::str::from_utf8(&head[9..12]).ok().and_then(|s| s.parse().ok());
        code.ok_or_else(|| format!("not an HTTP status line: {head:?}"))
    };
    timeout(PROBE_TIMEOUT, exchange).await.map_err(|_| format!("{path}: no answer within {PROBE_TIMEOUT:?}"))?
}

/// Reads until the server closes the connection, for at most `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Result<String, String> {
    let mut out = Vec::new();
    match timeout(limit, stream.read_to_end(&mut out)).await {
        Ok(_) => Ok(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => Err(format!("still open after {limit:?}; read {:?}", String::from_utf8_lossy(&out))),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_within_a_second_while_hostile_clients_hold_every_api_slot() {
    let mut settings = test_settings();
    settings.http.max_connections = 4;
    settings.http.probe_listen = Some("127.0.0.1:0".into());
    let app = spawn_with(settings).await;
    let probes = app.probes.expect("the probe listener is bound");
    let until = Instant::now() + SIEGE;
    // More hostile clients than slots: the rest wait in the listen backlog.
    let clients: Vec<_> = (0..8).map(|_| tokio::spawn(hostile_client(app.addr, until))).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The siege is real: an ordinary API client is not served.
    assert!(probe(app.addr, "/api/v1/status").await.is_err(), "the hostile clients hold no slot");
    let mut polls = 0;
    while Instant::now() < until {
        for path in ["/healthz", "/readyz"] {
            let status = probe(probes, path).await;
            assert_eq!(status, Ok(200), "{path} after {:?} of the siege", SIEGE - (until - Instant::now()));
        }
        polls += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(polls >= 20, "only {polls} polls in {SIEGE:?}");
    for client in clients {
        client.await.unwrap();
    }
    // The probe port serves nothing else.
    assert_eq!(probe(probes, "/api/v1/scores").await, Ok(404));
    assert_eq!(probe(probes, "/metrics").await, Ok(404));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_loses_its_slot_at_the_write_deadline() {
    let mut settings = test_settings();
    settings.http.max_connections = 1;
    settings.http.write_timeout_ms = std::time::Duration::from_millis(500);
    // Only the write deadline may free the slot within this test.
    settings.http.header_read_timeout_ms = std::time::Duration::from_millis(60_000);
    settings.http.idle_timeout_ms = std::time::Duration::from_millis(60_000);
    let mut app = spawn_with(settings).await;
    // Close the connection the readiness check left in the client's pool.
    app.client = reqwest::Client::new();
    let mut hostile = TcpStream::connect(app.addr).await.unwrap();
    let held = tokio::spawn(async move {
        never_read(&mut hostile, Instant::now() + Duration::from_secs(60)).await;
        hostile
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The server answers the pipeline until the socket buffers are full
    // (a few responses), then waits for the client to read.
    let mut client = TcpStream::connect(app.addr).await.unwrap();
    client.write_all(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut client, Duration::from_secs(15)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The hostile connection was closed by the server, not by the test.
    let hostile = timeout(Duration::from_secs(2), held).await.expect("the hostile client is still held").unwrap();
    drop(hostile);
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let mut settings = test_settings();
    settings.http.idle_timeout_ms = std::time::Duration::from_millis(300);
    let app = spawn_with(settings).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    // Well below the 10 s header read timeout, which would close it too.
    let answer = read_until_closed(&mut stream, Duration::from_secs(4)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn a_connection_ends_after_its_maximum_number_of_requests() {
    let mut settings = test_settings();
    settings.http.max_requests_per_connection = 3;
    let app = spawn_with(settings).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5).as_bytes()).await.unwrap();
    let answers = read_until_closed(&mut stream, Duration::from_secs(4)).await.unwrap();
    assert_eq!(answers.matches("HTTP/1.1 200 OK").count(), 3, "{answers}");
    assert_eq!(answers.matches("connection: close").count(), 1, "{answers}");
    let last = answers.rfind("HTTP/1.1 200 OK").unwrap();
    assert!(answers[last..].contains("connection: close"), "{answers}");
    // A new connection is served as usual.
    assert_eq!(probe(app.addr, "/healthz").await, Ok(200));
    app.stop().await;
}
