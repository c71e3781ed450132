"""exit_on_sigterm in a real process."""

from __future__ import annotations

import signal

from fs_helpers import start_child


def test_sigterm_runs_finally_blocks_and_exits_143():
    child = start_child(
        """
        import time
        from mg_fs import exit_on_sigterm
        exit_on_sigterm()
        try:
            print("ready", flush=True)
            time.sleep(60)
        finally:
            print("cleaned up", flush=True)
        """
    )
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == 143
    assert child.stdout.read().strip() == "cleaned up"


def test_without_it_sigterm_skips_cleanup():
    """The behaviour exit_on_sigterm exists to change."""
    child = start_child(
        """
        import time
        try:
            print("ready", flush=True)
            time.sleep(60)
        finally:
            print("cleaned up", flush=True)
        """
    )
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM
    assert child.stdout.read() == ""
