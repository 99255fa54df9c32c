"""The container image, proven without a container engine.

deploy/image/rootfs assembles the image's runtime root filesystem from the
Debian 12 packages of its distroless base and the release binary; these
tests run the binary in it the way Kubernetes runs the image: as uid 65532,
with the root read-only (a private mount namespace, then chroot). They also
check that the Dockerfile's build stage copies every file the compiler
reads. Needs root (mount, chroot) and apt-get download; run by scripts/test.
"""

import fnmatch
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from harness import DOCKERFILE, RELEASE, ROOT, ROOTFS_SCRIPT, build_rootfs, in_image, need_root


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    need_root()
    return build_rootfs(tmp_path_factory.mktemp("image") / "rootfs")


def needed_libraries(binary):
    out = subprocess.run(["readelf", "-d", str(binary)], check=True, capture_output=True, text=True).stdout
    return sorted(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def base_packages():
    text = ROOTFS_SCRIPT.read_text()
    return re.search(r"^packages=\(([^)]*)\)", text, re.M).group(1).split()


def test_the_base_image_is_the_distroless_cc_package_set():
    # The Dockerfile's runtime stage and the rootfs recipe describe one
    # image: distroless cc-debian12 (base + cc packages), nothing added.
    assert re.search(r"^FROM gcr\.io/distroless/cc-debian12:nonroot@sha256:[0-9a-f]{64}$", DOCKERFILE.read_text(), re.M)
    assert sorted(base_packages()) == sorted(
        ["base-files", "netbase", "tzdata", "ca-certificates", "libc6", "libgcc-s1", "libgomp1", "libstdc++6", "libssl3"]
    )


def test_every_library_the_binary_needs_is_in_the_base_image(rootfs):
    needed = needed_libraries(RELEASE)
    assert needed, "readelf found no NEEDED entry"
    lib_dirs = [rootfs / d for d in ["lib", "lib64", "usr/lib", "lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu",
                                     "lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu"]]
    missing = [lib for lib in needed if not any((d / lib).exists() for d in lib_dirs)]
    assert missing == [], f"NEEDED by the binary but not in the base image's packages: {missing} (all: {needed})"
    # zlib and zstd are linked in: the base has neither.
    assert not any(lib.startswith(("libz.", "libzstd.")) for lib in needed), needed


def test_the_image_prints_its_version_as_uid_65532_on_a_read_only_root(rootfs):
    version = in_image(rootfs, "/usr/local/bin/chiprisk", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("chiprisk 0."), version.stdout
    # The harness really makes the root read-only: the same mounts, then a
    # write (as root, which a read-only mount stops all the same).
    script = 'set -e; r="$1"; mount --bind "$r" "$r"; mount -o remount,bind,ro "$r"; touch "$r/tmp/written"'
    write = subprocess.run(["unshare", "--mount", "--fork", "--", "sh", "-c", script, "sh", str(rootfs)],
                           capture_output=True, text=True)
    assert write.returncode != 0 and "Read-only file system" in write.stderr, write.stderr
    assert not (rootfs / "tmp" / "written").exists()


def test_the_image_replays_the_bundled_history(rootfs):
    history = (ROOT / "data" / "history.jsonl").read_text()
    out = in_image(rootfs, "/usr/local/bin/chiprisk", "replay", "-", "--format", "json", "--at", "2026-01-01T00:00:00Z",
                   stdin=history)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    host = subprocess.run([str(RELEASE), "replay", "-", "--format", "json", "--at", "2026-01-01T00:00:00Z"],
                          input=history, capture_output=True, text=True, check=True)
    assert report == json.loads(host.stdout), "the image scores the history as the host binary does"
    assert any(v.get("vendor") == "nvidia" for v in report.get("vendors", report if isinstance(report, list) else []))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return None, ""


def image_pids(rootfs):
    """Processes whose executable is the image's binary, with their uids."""
    target = str(rootfs / "usr" / "local" / "bin" / "chiprisk")
    found = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            exe = os.readlink(p / "exe")
            status = (p / "status").read_text()
        except OSError:
            continue
        # Seen from outside the chroot, the executable is the rootfs path.
        if exe == target:
            uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)", status, re.M)
            found[int(p.name)] = (int(uid.group(1)), int(uid.group(2)))
    return found


def test_the_service_runs_until_ready_as_uid_65532_and_stops_cleanly(rootfs):
    port = free_port()
    proc = in_image(rootfs, "/usr/local/bin/chiprisk", "run",
                    env={"CHIPRISK__HTTP__LISTEN": f"127.0.0.1:{port}"}, background=True)
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            status, _ = get(f"http://127.0.0.1:{port}/readyz")
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, f"not ready: {status}; exited {proc.poll()}; {proc.stderr.read() if proc.poll() is not None else ''}"
        _, scores = get(f"http://127.0.0.1:{port}/api/v1/scores")
        assert "nvidia" in scores
        pids = image_pids(rootfs)
        assert pids and all(uids == (65532, 65532) for uids in pids.values()), pids
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    # JSON logs (the Dockerfile's CHIPRISK_LOG_FORMAT), and no write failed:
    # the service writes nothing to its root.
    lines = [json.loads(l) for l in err.splitlines() + out.splitlines() if l.startswith("{")]
    assert lines, err[-2000:]
    assert not [l for l in lines if l.get("level") == "ERROR"], lines


def dockerignored(rel):
    patterns = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
    for pat in patterns:
        pat = pat.rstrip("/")
        if rel == pat or rel.startswith(pat + "/") or fnmatch.fnmatch(rel, pat.replace("**/", "")):
            return pat
    return None


def build_stage_copies():
    text = DOCKERFILE.read_text()
    build = text.split("\nFROM ", 2)[1]  # the build stage, up to the runtime FROM
    sources = []
    for line in build.splitlines():
        m = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if m:
            sources.extend(m.group(1).split())
    return sources


def test_the_build_stage_copies_every_file_the_compiler_reads():
    # The compiler's own record of what it read for the release binary
    # (Cargo's dep-info: every module, and every include_str!/include_bytes!
    # file), checked against the Dockerfile's COPY lines and .dockerignore.
    depinfo = RELEASE.with_suffix(".d")
    assert depinfo.exists(), f"{depinfo}: build the release binary first"
    text = depinfo.read_text().replace("\\\n", " ")
    paths = set()
    for line in text.splitlines():
        _, _, deps = line.partition(": ")
        for dep in re.split(r"(?<!\\) ", deps):
            dep = dep.replace("\\ ", " ").strip()
            if dep and Path(dep).is_absolute() and Path(dep).resolve().is_relative_to(ROOT):
                paths.add(Path(dep).resolve().relative_to(ROOT).as_posix())
    # .git: build.rs watches it for the revision, which the image build
    # passes as CHIPRISK_GIT_REVISION instead (.git stays out of the context).
    paths = {p for p in paths if not p.startswith(("target/", ".git/"))}
    assert "ENV CHIPRISK_GIT_REVISION=$CHIPRISK_GIT_REVISION" in DOCKERFILE.read_text()
    assert "schema/event-v1.schema.json" in paths and "data/history.jsonl" in paths, sorted(paths)
    copies = build_stage_copies()
    uncovered = [p for p in sorted(paths) if not any(p == c or p.startswith(c.rstrip("/") + "/") for c in copies)]
    assert uncovered == [], f"read by the compiler, not copied by deploy/Dockerfile: {uncovered}"
    ignored = {p: dockerignored(p) for p in paths if dockerignored(p)}
    assert ignored == {}, f"read by the compiler, excluded by .dockerignore: {ignored}"
    # And the context stays small: build output and history never go in.
    for heavy in ["target/release/chiprisk", ".git/HEAD"]:
        assert dockerignored(heavy), heavy
