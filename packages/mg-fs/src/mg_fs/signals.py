"""SIGTERM as a clean exit, so `kill` runs the same cleanup (`finally`, temp file removal) as Ctrl-C."""

from __future__ import annotations

import signal
import threading

EXIT_CODE = 128 + signal.SIGTERM  # 143, what a shell reports for a process ended by SIGTERM


def _raise_exit(signum, frame) -> None:
    # A second SIGTERM while cleaning up ends the process at once (the default action); whatever it leaves
    # is removed by the next clean_stale_temps.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(EXIT_CODE)


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit(143) in the main thread. Call it at the start of a CLI; does nothing
    outside the main thread (Python delivers signals only there)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_exit)
