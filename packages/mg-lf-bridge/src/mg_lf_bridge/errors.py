"""What a run on LLaMA-Factory ends with when it does not end well (a leaf: imports nothing of ours)."""

from __future__ import annotations


class BridgeError(Exception):
    """Something the user must fix before LLaMA-Factory is started (a key it has no equivalent for, a previous
    run in output_dir, ...): one line."""


class LFFailed(Exception):
    """LLaMA-Factory exited with an error. The message is its own error (the exception line it printed), not a
    traceback of ours; its whole output was streamed above and is kept in `log`."""

    def __init__(self, message: str, *, exit_code: int, log: str | None = None):
        super().__init__(message)
        self.exit_code = exit_code
        self.log = log


class Interrupted(Exception):
    """Ctrl-C (or SIGTERM): LLaMA-Factory's processes were stopped. `checkpoint`: the newest one it saved."""

    exit_code = 130

    def __init__(self, signal_name: str, *, step: int | None, checkpoint: str | None):
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint
        at = f" at step {step}" if step is not None else ""
        saved = f"newest checkpoint: {checkpoint}" if checkpoint else "no checkpoint was saved"
        super().__init__(f"{signal_name}: LLaMA-Factory stopped{at}; {saved}")
