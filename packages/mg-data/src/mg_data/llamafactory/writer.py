"""Writing a LLaMA-Factory dataset: OUT_DIR/NAME.jsonl and its entry in OUT_DIR/dataset_info.json.

Every task is written in the one layout that holds all of it, sharegpt with LLaMA-Factory's default tags
(multi-turn, system prompts, tools and tool calls), and the entry names each column it uses, so LLaMA-Factory
reads back exactly the conversations mg-data read:
- pt: {"text"}, columns {"prompt": "text"} (as c4_demo);
- sft: {"conversations", "system"?, "tools"?};
- rm, dpo: the same plus "chosen"/"rejected" turns, "ranking": true (as dpo_en_demo);
- kto: the same as sft, the last turn the answer, plus "kto_tag": true/false.
The system and tools columns are declared only when some row holds them: LLaMA-Factory reads a declared
column from every row, and fails when the file has no such column at all.
What LLaMA-Factory cannot hold is refused row by row (file:line: why), and then nothing is written: an
answer of several messages, a prompt-less preference pair, an assistant turn with both text and tool calls.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mg_data.errors import DataError, Rejected, RowError
from mg_data.formats import sharegpt
from mg_data.llamafactory.info import read_info
from mg_data.pipeline import InvalidRows, run, task_schema, task_source
from mg_data.sources import INFO_FILE, RowsSource, Source, Warn, split_ref
from mg_fs import refuse_same_files, write_json_atomic

TASKS = ("pt", "sft", "rm", "dpo", "kto")


def write_dataset(
    rows_or_path: str | os.PathLike | Iterable[Any],
    out_dir: str | os.PathLike,
    name: str,
    task: str,
    *,
    on_warning: Warn | None = None,
) -> Path:
    """Write the rows (any layout `task` reads), or every row of a file or dataset reference, as dataset
    `name` of the LLaMA-Factory folder `out_dir`: NAME.jsonl, and the entry in dataset_info.json, which is
    created or updated with the other entries kept. Both files are replaced atomically, the data first; a bad
    row raises InvalidRows (file:line for each) and writes nothing. Returns the data file's path."""
    _check_name(name)
    if task not in TASKS:
        raise DataError(f"LLaMA-Factory has no {task} stage; a dataset can be written for {', '.join(TASKS)}")
    source: Source
    if isinstance(rows_or_path, str | os.PathLike):
        source = task_source(rows_or_path, task)
    else:
        source = RowsSource(rows_or_path)
    out = Path(out_dir)
    data_path, info_path = out / f"{name}.jsonl", out / INFO_FILE
    inputs = {f"input {i + 1}": f for i, f in enumerate(source.files)}
    refuse_same_files(inputs, {"the data file": data_path, INFO_FILE: info_path})
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _folder_lock(out):
            entries = _existing_entries(info_path, name)
            held = _write_rows(source, task, data_path, on_warning)
            entries[name] = entry_for(task, data_path.name, held)
            write_json_atomic(info_path, entries)
    except BaseException:
        if created and not any(out.iterdir()):
            out.rmdir()  # nothing was written: not even the folder stays
        raise
    return data_path


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """One writer at a time per folder, so two exports into it both keep their entries. The lock is taken on
    the folder itself (flock on a directory works on POSIX), leaving no lock file in the dataset folder."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def entry_for(task: str, file_name: str, held: Iterable[str] = ("system", "tools")) -> dict:
    """The dataset_info.json entry for a file write_dataset wrote for `task`; of the optional columns
    (system, tools), those in `held`: the ones some row holds."""
    if task == "pt":
        return {"file_name": file_name, "columns": {"prompt": "text"}}
    entry: dict[str, Any] = {"file_name": file_name, "formatting": "sharegpt"}
    columns = {"messages": "conversations", **{k: k for k in ("system", "tools") if k in held}}
    if task in ("rm", "dpo"):
        entry["ranking"] = True
        columns.update(chosen="chosen", rejected="rejected")
    if task == "kto":
        columns["kto_tag"] = "kto_tag"
    entry["columns"] = columns
    return entry


def lf_row(task: str, example: dict) -> dict:
    """A normalized example of `task` as a row of the layout entry_for declares."""
    if task == "pt":
        return {"text": example["text"]}
    if task == "sft":
        return _only_declared(sharegpt.from_conversation(example))
    if task == "kto":
        messages = _messages(example["prompt"], "prompt") + _messages(example["completion"], "completion")
        row = _only_declared(
            sharegpt.from_conversation({"messages": messages, "tools": example.get("tools")})
        )
        row["kto_tag"] = example["label"]
        return row
    pair = {
        "messages": _messages(example["prompt"], "prompt"),
        "chosen": _answer(example["chosen"], "chosen"),
        "rejected": _answer(example["rejected"], "rejected"),
        "tools": example.get("tools"),
    }
    return _only_declared(sharegpt.from_pairwise(pair))


def _only_declared(row: dict) -> dict:
    """The columns the entry names (others would be written and never read)."""
    return {k: v for k, v in row.items() if k in ("conversations", "system", "tools", "chosen", "rejected")}


def _messages(value: Any, key: str) -> list[dict]:
    """A TRL prompt or completion (text, or messages) as messages."""
    if isinstance(value, list):
        return value
    if key == "prompt" and not value:
        raise RowError("LLaMA-Factory needs a prompt: every preference pair answers a user turn")
    return [{"role": "user" if key == "prompt" else "assistant", "content": value}]


def _answer(value: Any, key: str) -> dict:
    messages = _messages(value, key)
    if len(messages) != 1:
        raise RowError(
            f"{key} holds {len(messages)} messages; LLaMA-Factory holds one assistant message per answer"
        )
    return messages[0]


def _write_rows(source: Source, task: str, path: Path, on_warning: Warn | None) -> set[str]:
    """Write the rows; return the columns written (in any row)."""
    normalize = task_schema(task)
    held: set[str] = set()

    def to_lf(row: Any, warn: Warn) -> dict:
        converted = lf_row(task, normalize(row, warn))
        held.update(converted)
        return converted

    rejected: list[Rejected] = []
    report = run(
        source, to_lf, output=path, on_reject=rejected.append, on_warning=on_warning, show_progress=False
    )
    if rejected:
        raise InvalidRows(report, rejected)
    return held


def _existing_entries(info_path: Path, name: str) -> dict:
    """The entries already in dataset_info.json (checked before anything is written)."""
    if not info_path.exists():
        return {}
    entries, _ = read_info(str(info_path))
    file_name = f"{name}.jsonl"
    for other, entry in entries.items():
        if other != name and isinstance(entry, dict) and entry.get("file_name") == file_name:
            raise DataError(
                f"{info_path}: dataset {other!r} reads {file_name}, which dataset {name!r} would replace; "
                "choose another name"
            )
    return entries


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise DataError(f"dataset name {name!r}: give a name without leading or trailing spaces")
    if "/" in name or "\\" in name or name.startswith(".") or "#" in name or "," in name:
        raise DataError(
            f"dataset name {name!r}: the name becomes NAME.jsonl and is listed in `dataset: a,b`, so it may "
            "not hold '/', '\\\\', '#' or ',' nor start with '.'"
        )


def default_name(path: str | os.PathLike) -> str:
    """The dataset name export-lf gives a file (its name without the suffix) or a reference (its entry)."""
    ref = split_ref(path)
    return ref[1] if ref else Path(path).stem
