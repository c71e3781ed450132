"""The data of a run on LLaMA-Factory, checked by mg-data before LLaMA-Factory starts.

An mg-train config's sources (files of any layout mg-data reads, or dataset_info.json references) are written
as an LLaMA-Factory dataset folder by mg-data (`mg_data.llamafactory.write_dataset`: one file and one entry per
source, every row checked). A native LLaMA-Factory YAML keeps its own dataset folder; each dataset it names is
read through mg-data as LLaMA-Factory reads it, so a bad row is reported as file:line before launch instead of
being dropped by LLaMA-Factory (which stops with "Cannot find valid samples" when none is left).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from mg_data import InvalidRows, Rejected, validate_file
from mg_data.sources import INFO_FILE, dataset_ref
from mg_lf_bridge.errors import BridgeError

# What mg-data checks a stage's rows as: LLaMA-Factory's ppo reads sft's layout (it trains on the prompts).
DATA_TASK = {"pt": "pt", "sft": "sft", "rm": "rm", "dpo": "dpo", "kto": "kto", "ppo": "sft"}
# dataset_dir values that make LLaMA-Factory read `dataset` as hub names (nothing local to check).
HUB_DIRS = ("ONLINE", "REMOTE:")


def write_folder(stage: str, train: list[str], eval_: list[str], folder: Path) -> dict[str, Any]:
    """The sources as datasets of `folder` (train, or train_1, train_2, ... in order; eval likewise) and the
    dataset keys that name them."""
    keys: dict[str, Any] = {
        "dataset": ",".join(_write(stage, train, "train", folder)),
        "dataset_dir": str(folder),
    }
    if eval_:
        keys["eval_dataset"] = ",".join(_write(stage, eval_, "eval", folder))
    return keys


def _write(stage: str, sources: list[str], prefix: str, folder: Path) -> list[str]:
    names = [prefix] if len(sources) == 1 else [f"{prefix}_{i}" for i in range(1, len(sources) + 1)]
    for source, name in zip(sources, names, strict=True):
        write_dataset(source, folder, name, DATA_TASK[stage])
    return names


def write_dataset(source: str, folder: Path, name: str, task: str) -> None:
    """mg-data's LLaMA-Factory writer (lf-data's module): the one call into it."""
    from mg_data.llamafactory import write_dataset as write

    write(source, folder, name, task)


def check_native(args: dict[str, Any]) -> list[str]:
    """Read every dataset a native LLaMA-Factory config names (dataset, eval_dataset) with mg-data, as
    LLaMA-Factory will (dataset_dir relative to the current directory, its default `data`). Raises InvalidRows
    (file:line for each bad row) or DataError; returns notes (datasets left to LLaMA-Factory)."""
    stage = str(args.get("stage", "sft"))
    task = DATA_TASK.get(stage)
    folder = str(args.get("dataset_dir") or "data")
    if task is None:  # not a stage: LLaMA-Factory says so itself
        return []
    if folder.startswith(HUB_DIRS):
        return [f"dataset_dir {folder}: hub datasets are read by LLaMA-Factory itself (not checked here)"]
    notes: list[str] = []
    remote = _remote_entries(os.path.join(folder, INFO_FILE))
    for key in ("dataset", "eval_dataset"):
        for name in names(args.get(key)):
            if name in remote:
                notes.append(f"{key} {name}: on a hub, read by LLaMA-Factory itself (not checked here)")
                continue
            _check(dataset_ref(folder, name), task, args.get("max_samples"), int(args.get("seed", 42)))
    return notes


def _check(ref: str, task: str, max_samples: Any, seed: int) -> None:
    rejected: list[Rejected] = []
    cut = {"max_samples": int(max_samples)} if max_samples else {}
    report = validate_file(ref, task=task, on_reject=rejected.append, show_progress=False, seed=seed, **cut)
    if rejected:
        raise InvalidRows(report, rejected)
    if report.rows == 0:
        raise BridgeError(f"{ref}: no rows (LLaMA-Factory would stop with 'Cannot find valid samples')")


def names(value: Any) -> list[str]:
    """LLaMA-Factory's `dataset: a,b` (or a YAML list) as names."""
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def _remote_entries(info_path: str) -> set[str]:
    """Entries of a dataset_info.json with no local file (LLaMA-Factory downloads them). A missing or broken
    file is left for mg-data to report."""
    try:
        with open(info_path, encoding="utf-8") as f:
            info = json.load(f)
    except (OSError, ValueError):
        return set()
    if not isinstance(info, dict):
        return set()
    return {name for name, entry in info.items() if isinstance(entry, dict) and not entry.get("file_name")}
