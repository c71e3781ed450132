"""Refuse to run when an output would overwrite an input (or another output) before reading it."""

from __future__ import annotations

import os
from collections.abc import Mapping

PathLike = str | os.PathLike


class SameFileError(ValueError):
    """An output names the same file as an input or as another output."""


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name one file: the same real path (symlinks resolved, including a link to a file
    that does not exist yet), or the same inode where both exist (hard links)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def refuse_same_files(inputs: Mapping[str, PathLike | None], outputs: Mapping[str, PathLike | None]) -> None:
    """Raise SameFileError when an output is the same file as an input or as an earlier output.

    Keys are the names the user typed them under (`INPUT`, `--rejects`); None values are ignored. The
    message is one line, e.g. `--rejects x.jsonl is the same file as INPUT x.jsonl; nothing was written`.
    """
    ins = [(name, path) for name, path in inputs.items() if path is not None]
    outs = [(name, path) for name, path in outputs.items() if path is not None]
    for i, (name, path) in enumerate(outs):
        for other_name, other in [*ins, *outs[:i]]:
            if same_file(path, other):
                raise SameFileError(
                    f"{name} {os.fspath(path)} is the same file as {other_name} {os.fspath(other)}; "
                    "nothing was written"
                )
