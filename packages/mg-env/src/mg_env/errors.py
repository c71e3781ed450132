"""Errors a person can act on. Each message is one line that says what to do next."""

from __future__ import annotations

from collections.abc import Sequence


class EnvError(Exception):
    """Unknown profile or version, no lock for this platform, a failed build: the user's to fix."""


class NotBuilt(EnvError):
    """The environment asked for has not been built; the message names the build command."""


class BuildFailed(EnvError):
    """uv or the profile's check failed; the message names the log with the whole output."""


class InUse(EnvError):
    """`remove` of an env that running processes use; the message names their PIDs."""

    def __init__(self, name: str, users: Sequence[object]):
        self.name = name
        self.users = list(users)
        pids = ", ".join(f"PID {u}" for u in self.users)
        super().__init__(f"{name} is in use by {pids}; stop them, then remove it again")
