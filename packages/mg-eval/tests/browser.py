"""Headless Chromium for tests: Debian's `chromium` package driven by the playwright Python package.

Browsers cannot be downloaded here (`playwright install` fetches from a CDN), so the browser is the distro's,
installed with apt on first use when missing. Nothing is skipped: no browser means a failed test that says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A CJK font, so that Chinese text in pages renders as glyphs (the slim image has DejaVu only).
CJK_FONT_PACKAGE = "fonts-wqy-microhei"
REPO = Path(__file__).resolve().parents[3]


def artifacts_dir() -> Path:
    path = Path(os.environ.get("MG_TEST_ARTIFACTS") or REPO / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def has_cjk_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, check=False)
    return bool(out.stdout.strip())


def ensure_chromium() -> str | None:
    """Install chromium (and a CJK font) with apt when missing. Returns None when ready, else why not."""
    packages = ([] if os.access(CHROMIUM, os.X_OK) else ["chromium"]) + (
        [] if has_cjk_font() else [CJK_FONT_PACKAGE]
    )
    if not packages:
        return None
    if not shutil.which("apt-get"):
        return f"{CHROMIUM} is missing and there is no apt-get to install {' '.join(packages)}"
    if os.geteuid() != 0:
        return f"{CHROMIUM} is missing; run as root (or: sudo apt-get install -y {' '.join(packages)})"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *packages]]
    for cmd in steps:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            return f"`{' '.join(cmd)}` failed ({done.returncode}):\n{done.stderr[-2000:]}"
    if not os.access(CHROMIUM, os.X_OK):
        return f"apt-get installed {' '.join(packages)} but {CHROMIUM} is still missing"
    return None


@contextmanager
def open_page(url: str, *, width: int = 1440, height: int = 900):
    """Yields (page, problems): problems collects console errors, page errors and any non-file request."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on(
                "console",
                lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "request",
                lambda r: (
                    None
                    if r.url.startswith(("file:", "data:"))
                    else problems.append(f"network request: {r.url}")
                ),
            )
            page.goto(url, wait_until="load")
            yield page, problems
        finally:
            browser.close()
