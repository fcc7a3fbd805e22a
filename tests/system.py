"""System programs the tests run for real (Debian's chromium, pgbouncer, nginx): installed by the test set-up
when missing and it may (as root, with apt-get), else the tests that need one are skipped with the reason,
except in CI (CI=true), where a missing program is a failure."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

import pytest


def debian_program(path: str, package: str) -> tuple[str | None, str]:
    """(path, reason): the program at ``path``, installing Debian's ``package`` first if it is missing and
    we may; else None and why."""
    if os.path.exists(path):
        return path, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, f"{path} is missing (install Debian's {package} package)"
    # Test workers start together: one installs while the others wait on the lock, then find it there.
    error = ""
    with open(f"/tmp/milepost-{package}-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        install = ["apt-get", "install", "-y", "--no-install-recommends", package]
        for command in (install, ["apt-get", "update"], install):
            if os.path.exists(path):
                break
            result = subprocess.run(
                command,
                check=False,
                capture_output=True,
                text=True,
                timeout=900,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
            error = result.stderr.strip()[-300:]
    if os.path.exists(path):
        return path, ""
    return None, f"apt-get install {package} failed: {error}"


def require_program(path: str, package: str, needed_for: str) -> str:
    """The program's path, or the test is skipped (a failure when CI=true) saying what it was needed for."""
    found, reason = debian_program(path, package)
    if found is None:
        message = f"no {package} for {needed_for}: {reason}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (required when CI=true)")
        pytest.skip(message)
    return found
