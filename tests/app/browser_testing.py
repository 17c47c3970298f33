"""Pages in a real browser: headless Chromium's DOM after the page ran, and its screenshot."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Virtual time the page gets before its DOM is dumped: several 2 s polls (virtual time stops
# while a fetch is in flight, so a slow machine does not cut the page short).
VIRTUAL_TIME_BUDGET_MS = 6000


def chromium(url: str, tmp_path: Path, *output: str) -> str:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}", f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        *output, url,
    ]  # fmt: skip
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump_dom(url: str, tmp_path: Path) -> str:
    """The page's DOM after it ran for VIRTUAL_TIME_BUDGET_MS of virtual time in headless Chromium."""
    return chromium(url, tmp_path, "--dump-dom")


def screenshot(url: str, tmp_path: Path, dest: Path, *, size: str = "1400,1000") -> Path:
    """A PNG of the page after it ran (for the docs)."""
    chromium(url, tmp_path, f"--screenshot={dest}", f"--window-size={size}", "--hide-scrollbars")
    return dest
