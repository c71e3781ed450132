"""Headless Chromium for tests: Debian's `chromium` package driven by the playwright Python package.

Browsers cannot be downloaded here (`playwright install` fetches from a CDN), so the browser is the distro's.
A test never installs it: `scripts/setup-test-machine` (part of the README's test command) does, once, before
the tests run. Nothing is skipped: no browser means a failed test that says how to get one.
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
SETUP = "bash scripts/setup-test-machine"
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
    """None when Chromium and a CJK font are installed, else what is missing and the command that installs it."""
    missing = ([] if os.access(CHROMIUM, os.X_OK) else [f"{CHROMIUM} (Debian package chromium)"]) + (
        [] if has_cjk_font() else [f"a CJK font (Debian package {CJK_FONT_PACKAGE})"]
    )
    if not missing:
        return None
    return f"missing {' and '.join(missing)}; install them with `{SETUP}` (root or sudo)"


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
