//! `http.*`: where the server listens (and, optionally, a port for the
//! probes alone), the limits it enforces on clients, and the optional
//! bearer tokens for the data endpoints and for `/metrics`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address the HTTP server (metrics, API, status page) listens on.
    pub listen: String,
    /// Address of a second listener that serves only `/healthz` and
    /// `/readyz` (anything else is a 404), with its own connections: no
    /// client of `listen`, however hostile, can delay a probe there. Point
    /// the kubelet's probes at it and admit no one else (the chart does
    /// both). Unset: the probes are served on `listen` only. They are
    /// always served on `listen` too.
    pub probe_listen: Option<String>,
    /// Bearer token required on `/api/*` and the status page `/` when set
    /// (`Authorization: Bearer <token>`); `/metrics`, `/healthz` and
    /// `/readyz` stay open, as Prometheus and Kubernetes probes expect.
    /// Prefer `CHIPRISK__HTTP__API_TOKEN` or `api_token_file` to a config
    /// file. Redacted wherever chiprisk prints it.
    pub api_token: Option<Secret>,
    /// File holding the token (e.g. a mounted Kubernetes Secret); trailing
    /// whitespace is ignored. Used when `api_token` is unset.
    pub api_token_file: Option<PathBuf>,
    /// Bearer token required on `/metrics` when set: the metrics carry what
    /// `api_token` protects (scores, ban and event titles, event ids,
    /// products, source URLs). The probes stay open. Prefer
    /// `CHIPRISK__HTTP__METRICS_TOKEN` or `metrics_token_file`. Redacted
    /// wherever chiprisk prints it.
    pub metrics_token: Option<Secret>,
    /// File holding the metrics token; trailing whitespace is ignored. Used
    /// when `metrics_token` is unset.
    pub metrics_token_file: Option<PathBuf>,
    /// Most connections served at once on `listen`; further clients wait
    /// in the listen backlog. (`probe_listen` has its own 16.)
    pub max_connections: usize,
    /// A client must send a request's headers within this time of the
    /// server starting to wait for them (milliseconds, or `"10s"`);
    /// otherwise the connection is closed.
    #[serde(with = "super::duration::millis")]
    pub header_read_timeout_ms: Duration,
    /// A connection on which no request is in flight and nothing has been
    /// read or written for this long is closed (milliseconds). The wait
    /// for the next request's head also counts against
    /// `header_read_timeout_ms`, so the smaller of the two applies.
    #[serde(with = "super::duration::millis")]
    pub idle_timeout_ms: Duration,
    /// Once the server has to wait for a client to read its response, the
    /// client must take all of it within this time (milliseconds), or the
    /// connection is closed: a client that never reads frees its slot.
    #[serde(with = "super::duration::millis")]
    pub write_timeout_ms: Duration,
    /// Requests served on one connection; the last one's response carries
    /// `Connection: close` and the connection ends, so that no client keeps
    /// a slot (and its pipeline) forever.
    pub max_requests_per_connection: u64,
    /// Largest request head (request line + headers) in bytes; larger ones
    /// get 431. At least 8192.
    pub max_header_bytes: usize,
    /// Most header fields per request; more get 431.
    pub max_headers: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9464".into(),
            probe_listen: None,
            api_token: None,
            api_token_file: None,
            metrics_token: None,
            metrics_token_file: None,
            max_connections: 256,
            header_read_timeout_ms: Duration::from_secs(10),
            idle_timeout_ms: Duration::from_secs(5),
            write_timeout_ms: Duration::from_secs(10),
            max_requests_per_connection: 1_000,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

impl HttpSettings {
    pub fn validate(&self) -> Result<(), String> {
        check_address("http.listen", &self.listen)?;
        if let Some(probe) = &self.probe_listen {
            check_address("http.probe_listen", probe)?;
            if *probe == self.listen {
                return Err("http.probe_listen must differ from http.listen".into());
            }
        }
        check_range("http.max_connections", self.max_connections as u64, 1, 100_000)?;
        for (name, d) in [
            ("http.header_read_timeout_ms", self.header_read_timeout_ms),
            ("http.idle_timeout_ms", self.idle_timeout_ms),
            ("http.write_timeout_ms", self.write_timeout_ms),
        ] {
            check_range(name, u64::try_from(d.as_millis()).unwrap_or(u64::MAX), 100, 600_000)?;
        }
        check_range("http.max_requests_per_connection", self.max_requests_per_connection, 1, 1_000_000)?;
        check_range("http.max_header_bytes", self.max_header_bytes as u64, 8192, 1 << 20)?;
        check_range("http.max_headers", self.max_headers as u64, 8, 1000)?;
        for (name, token) in [("http.api_token", &self.api_token), ("http.metrics_token", &self.metrics_token)] {
            if token.as_ref().is_some_and(|t| t.0.trim().is_empty()) {
                return Err(format!("{name} must not be blank"));
            }
        }
        Ok(())
    }

    /// The token the data endpoints require, if any (reads `api_token_file`).
    pub fn api_token(&self) -> anyhow::Result<Option<Secret>> {
        read_token("http.api_token_file", &self.api_token, &self.api_token_file)
    }

    /// The token `/metrics` requires, if any (reads `metrics_token_file`).
    pub fn metrics_token(&self) -> anyhow::Result<Option<Secret>> {
        read_token("http.metrics_token_file", &self.metrics_token, &self.metrics_token_file)
    }

    /// A copy fit to print.
    pub fn redacted(&self) -> Self {
        let redact = |t: &Option<Secret>| t.as_ref().map(|_| Secret("<redacted>".into()));
        Self { api_token: redact(&self.api_token), metrics_token: redact(&self.metrics_token), ..self.clone() }
    }
}

fn check_address(name: &str, value: &str) -> Result<(), String> {
    value
        .parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| format!("{name} = {value:?} is not an address like 127.0.0.1:9464"))
}

fn check_range(name: &str, value: u64, min: u64, max: u64) -> Result<(), String> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(format!("{name} must be within {min}..={max}"))
    }
}

/// The token given inline, or else the one in `file`, if any.
fn read_token(name: &str, inline: &Option<Secret>, file: &Option<PathBuf>) -> anyhow::Result<Option<Secret>> {
    use anyhow::Context;
    if let Some(token) = inline {
        return Ok(Some(token.clone()));
    }
    let Some(path) = file else { return Ok(None) };
    let text = std::fs::read_to_string(path).with_context(|| format!("{name}: cannot read {}", path.display()))?;
    let token = text.trim_end();
    anyhow::ensure!(!token.is_empty(), "{name}: {} is empty", path.display());
    Ok(Some(Secret(token.to_owned())))
}

/// A credential: never shown by `Debug`, compared in constant time.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// Whether `candidate` is this secret, taking the same time wherever
    /// the first difference is (the length is not hidden).
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let own = self.0.as_bytes();
        own.len() == candidate.len() && own.iter().zip(candidate).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_exactly_and_never_print() {
        let s = Secret::new("s3cret");
        assert!(s.matches(b"s3cret"));
        assert!(!s.matches(b"s3cres") && !s.matches(b"s3cret ") && !s.matches(b""));
        let settings = HttpSettings { api_token: Some(s.clone()), metrics_token: Some(s), ..HttpSettings::default() };
        assert!(!format!("{settings:?}").contains("s3cret"));
        assert!(!format!("{:?}", settings.redacted()).contains("s3cret"));
        assert!(!toml::to_string(&settings.redacted()).unwrap().contains("s3cret"));
    }

    #[test]
    fn the_token_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        let settings = HttpSettings { api_token_file: Some(path.clone()), ..HttpSettings::default() };
        assert!(settings.api_token().unwrap().unwrap().matches(b"abc"));
        std::fs::write(&path, "\n").unwrap();
        assert!(settings.api_token().unwrap_err().to_string().contains("empty"));
        let settings = HttpSettings { metrics_token_file: Some(path.clone()), ..HttpSettings::default() };
        assert!(settings.api_token().unwrap().is_none());
        std::fs::write(&path, "m\n").unwrap();
        assert!(settings.metrics_token().unwrap().unwrap().matches(b"m"));
    }

    #[test]
    fn limits_are_checked() {
        let d = HttpSettings::default;
        let cases = [
            (HttpSettings { max_header_bytes: 100, ..d() }, "http.max_header_bytes"),
            (HttpSettings { idle_timeout_ms: Duration::from_millis(20), ..d() }, "http.idle_timeout_ms"),
            (HttpSettings { write_timeout_ms: Duration::ZERO, ..d() }, "http.write_timeout_ms"),
            (HttpSettings { max_requests_per_connection: 0, ..d() }, "http.max_requests_per_connection"),
            (HttpSettings { probe_listen: Some("nowhere".into()), ..d() }, "http.probe_listen"),
            (HttpSettings { probe_listen: Some(d().listen), ..d() }, "must differ"),
            (HttpSettings { metrics_token: Some(Secret::new(" ")), ..d() }, "http.metrics_token"),
        ];
        for (bad, message) in cases {
            assert!(bad.validate().unwrap_err().contains(message), "{message}");
        }
        assert!(HttpSettings { probe_listen: Some("0.0.0.0:9465".into()), ..d() }.validate().is_ok());
        assert!(d().validate().is_ok());
    }
}
