//! Records the git revision the binary is built from, for
//! `chiprisk_build_info` and `chiprisk --version`: `CHIPRISK_GIT_REVISION`
//! if set (container builds without `.git`), else `git rev-parse`, else
//! "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CHIPRISK_GIT_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let revision = std::env::var("CHIPRISK_GIT_REVISION").ok().filter(|r| !r.is_empty()).or_else(|| {
        let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
        let rev = String::from_utf8(out.stdout).ok()?.trim().to_owned();
        (out.status.success() && !rev.is_empty()).then_some(rev)
    });
    println!("cargo:rustc-env=CHIPRISK_GIT_REVISION={}", revision.as_deref().unwrap_or("unknown"));
}
