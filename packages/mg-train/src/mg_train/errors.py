"""The error every mg-train layer raises for something the user must fix (a leaf: imports nothing of ours)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config the user must fix; the message names the key.

    `key` is the config key at fault when the raiser knows it but not where it was given: `config.parse`
    puts the place in front ("file.yaml:7: ...", "flag --lr: ...")."""

    def __init__(self, message: str, *, key: str | None = None):
        super().__init__(message)
        self.key = key
