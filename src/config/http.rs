//! `http.*`: where the server listens, the limits it enforces on clients,
//! and the optional bearer token for the data endpoints.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address the HTTP server (metrics, API, status page) listens on.
    pub listen: String,
    /// Bearer token required on `/api/*` and the status page `/` when set
    /// (`Authorization: Bearer <token>`); `/metrics`, `/healthz` and
    /// `/readyz` stay open, as Prometheus and Kubernetes probes expect.
    /// Prefer `CHIPRISK__HTTP__API_TOKEN` or `api_token_file` to a config
    /// file. Redacted wherever chiprisk prints it.
    pub api_token: Option<Secret>,
    /// File holding the token (e.g. a mounted Kubernetes Secret); trailing
    /// whitespace is ignored. Used when `api_token` is unset.
    pub api_token_file: Option<PathBuf>,
    /// Most connections served at once; further clients wait in the
    /// listen backlog.
    pub max_connections: usize,
    /// A client must send a request's headers within this time, and an
    /// idle keep-alive connection is closed after it (milliseconds).
    pub header_read_timeout_ms: u64,
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
            api_token: None,
            api_token_file: None,
            max_connections: 256,
            header_read_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

impl HttpSettings {
    pub fn validate(&self) -> Result<(), String> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|_| format!("http.listen = {:?} is not an address like 127.0.0.1:9464", self.listen))?;
        if !(1..=100_000).contains(&self.max_connections) {
            return Err("http.max_connections must be within 1..=100000".into());
        }
        if !(100..=600_000).contains(&self.header_read_timeout_ms) {
            return Err("http.header_read_timeout_ms must be within 100..=600000".into());
        }
        if !(8192..=1 << 20).contains(&self.max_header_bytes) {
            return Err("http.max_header_bytes must be within 8192..=1048576".into());
        }
        if !(8..=1000).contains(&self.max_headers) {
            return Err("http.max_headers must be within 8..=1000".into());
        }
        if self.api_token.as_ref().is_some_and(|t| t.0.trim().is_empty()) {
            return Err("http.api_token must not be blank".into());
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    /// The token the data endpoints require, if any (reads `api_token_file`).
    pub fn api_token(&self) -> anyhow::Result<Option<Secret>> {
        use anyhow::Context;
        if let Some(token) = &self.api_token {
            return Ok(Some(token.clone()));
        }
        let Some(path) = &self.api_token_file else { return Ok(None) };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("http.api_token_file: cannot read {}", path.display()))?;
        let token = text.trim_end();
        anyhow::ensure!(!token.is_empty(), "http.api_token_file: {} is empty", path.display());
        Ok(Some(Secret(token.to_owned())))
    }

    /// A copy fit to print.
    pub fn redacted(&self) -> Self {
        Self { api_token: self.api_token.as_ref().map(|_| Secret("<redacted>".into())), ..self.clone() }
    }
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
        let settings = HttpSettings { api_token: Some(s), ..HttpSettings::default() };
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
    }

    #[test]
    fn limits_are_checked() {
        let bad = HttpSettings { max_header_bytes: 100, ..HttpSettings::default() };
        assert!(bad.validate().unwrap_err().contains("http.max_header_bytes"));
        assert!(HttpSettings::default().validate().is_ok());
    }
}
