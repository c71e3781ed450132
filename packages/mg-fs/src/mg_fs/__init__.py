"""mg-fs: the one way every MildGiraffeTrainer package writes files. Pure stdlib, the lowest layer.

- `atomic_write` / `write_bytes_atomic` / `write_text_atomic` / `write_json_atomic`: a temp file beside the
  target, flushed and fsynced, renamed over it; removed on any failure. Permission bits of a replaced file
  are kept; a symlinked target is written through.
- `atomic_dir`: build a folder beside the target and swap it in whole.
- `clean_stale_temps`: remove the temp files and folders of processes that are gone.
- `file_lock`: an exclusive flock for a block.
- `refuse_same_files`: one line, before anything is written, when an output is an input (or another output).
- `exit_on_sigterm`: `kill` runs the same cleanup as Ctrl-C.
"""

from mg_fs.atomic import (
    AtomicFile,
    atomic_dir,
    atomic_write,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from mg_fs.lock import LockHeld, file_lock
from mg_fs.samefile import SameFileError, refuse_same_files, same_file
from mg_fs.signals import exit_on_sigterm
from mg_fs.stale import clean_stale_temps, is_temp_name, temp_name

__version__ = "0.1.0"

__all__ = [
    "AtomicFile",
    "LockHeld",
    "SameFileError",
    "atomic_dir",
    "atomic_write",
    "clean_stale_temps",
    "exit_on_sigterm",
    "file_lock",
    "is_temp_name",
    "refuse_same_files",
    "same_file",
    "temp_name",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
