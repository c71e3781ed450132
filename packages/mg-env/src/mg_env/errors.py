"""Errors a person can act on. Each message is one line that says what to do next."""

from __future__ import annotations


class EnvError(Exception):
    """Unknown profile or version, no lock for this platform, a failed build: the user's to fix."""


class NotBuilt(EnvError):
    """The environment asked for has not been built; the message names the build command."""


class BuildFailed(EnvError):
    """uv or the profile's check failed; the message names the log with the whole output."""
