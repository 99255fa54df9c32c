"""Runs chiprisk the way its image runs, without a container engine: the
runtime root filesystem assembled by deploy/image/rootfs from the Debian 12
packages of the image's base, entered as uid 65532 with the root mounted
read-only. Used by tests/image and by the end-to-end tests that run the
image against a broker."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RELEASE = Path(os.environ.get("CHIPRISK_RELEASE_BIN", ROOT / "target" / "release" / "chiprisk"))
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ROOTFS_SCRIPT = ROOT / "deploy" / "image" / "rootfs"
REQUIRE = os.environ.get("CHIPRISK_REQUIRE_TOOLS") == "1"


def need_root():
    if os.geteuid() != 0:
        if REQUIRE:
            pytest.fail("the image tests need root (mount namespace, chroot)")
        pytest.skip("needs root")


def build_rootfs(out, extra_ca=None):
    """The image's root filesystem at `out`, with the release binary;
    `extra_ca` (a PEM file) is appended to its system CA bundle."""
    assert RELEASE.exists(), f"build the release binary first: {RELEASE}"
    args = [str(ROOTFS_SCRIPT), str(out), str(RELEASE)] + ([str(extra_ca)] if extra_ca else [])
    done = subprocess.run(args, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


def in_image(rootfs, *argv, stdin=None, env=None, background=False, log=None):
    """Runs argv inside the image: a private mount namespace in which the
    root filesystem is bind-mounted read-only with /proc, then chroot as
    uid 65532, with only the environment the Dockerfile sets (plus env).
    In the background, its output goes to `log` (a path) if given."""
    image_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/home/nonroot", "CHIPRISK_LOG_FORMAT": "json"}
    image_env.update(env or {})
    # The host's tools by full path: the image's PATH is not the host's.
    mount, chroot, unshare = (shutil.which(t, path="/usr/sbin:/usr/bin:/sbin:/bin") for t in ("mount", "chroot", "unshare"))
    script = (
        f'set -e; r="$1"; shift; {mount} --bind "$r" "$r"; {mount} -o remount,bind,ro "$r"; '
        f'{mount} -t proc proc "$r/proc"; exec {chroot} --userspec=65532:65532 "$r" "$@"'
    )
    cmd = [unshare, "--mount", "--", "/bin/sh", "-c", script, "sh", str(rootfs), *argv]
    # No --fork: a mount namespace needs none, so every step execs and the
    # test's signals reach chiprisk itself, as a kubelet's reach PID 1.
    # env -i: nothing of the test's environment leaks into the image.
    cmd = ["env", "-i", *[f"{k}={v}" for k, v in image_env.items()], *cmd]
    if background:
        out = open(log, "w") if log else subprocess.PIPE
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE, text=True)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)


