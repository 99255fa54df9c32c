//! The container's memory limit, read from the cgroup, so that an alert
//! can compare what the process holds with what it may hold before the
//! kernel kills it.

use std::path::Path;

/// cgroup v2 (Kubernetes' default since 1.25), then v1.
const LIMIT_FILES: [&str; 2] = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"];

/// cgroup v1 writes "no limit" as the largest page-aligned i64; anything
/// from 2^60 bytes on is no limit.
const UNLIMITED_FROM: u64 = 1 << 60;

/// The memory limit of this process's cgroup in bytes; `None` where there
/// is none or it cannot be read (not Linux, no cgroup mounted).
pub fn limit_bytes() -> Option<u64> {
    LIMIT_FILES.iter().find_map(|f| std::fs::read_to_string(Path::new(f)).ok()).and_then(|text| parse_limit(&text))
}

/// The content of `memory.max` or `memory.limit_in_bytes`.
fn parse_limit(text: &str) -> Option<u64> {
    let n: u64 = text.trim().parse().ok()?;
    (n > 0 && n < UNLIMITED_FROM).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::parse_limit;

    #[test]
    fn a_limit_is_bytes_and_no_limit_is_none() {
        assert_eq!(parse_limit("536870912\n"), Some(512 << 20));
        assert_eq!(parse_limit("max\n"), None, "cgroup v2: no limit");
        assert_eq!(parse_limit("9223372036854771712\n"), None, "cgroup v1: no limit");
        assert_eq!(parse_limit(""), None);
    }
}
