"""What a model folder is, read from its files alone (no torch): the CLI checks MODEL_DIR with this before
anything heavy is imported, so a wrong path fails in a blink."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GENERATIVE_TASKS = ("pt", "sft", "dpo", "kto", "grpo", "ppo")
SEQ_CLS_TASKS = ("classify", "rm", "rerank", "score")
EXPORT_FILE = "mg_export.json"


class FolderError(ValueError):
    """MODEL_DIR is not a folder we can serve; the message is one line that says why."""


@dataclass(frozen=True)
class FolderInfo:
    task: str
    kind: str  # "embed", "seq_cls" or "generate"


def inspect_folder(model_dir: str | Path) -> FolderInfo:
    """What `model_dir` holds: the task of its mg_export.json, else what its files say (modules.json: an
    embedder; *ForSequenceClassification: a classifier; *ForCausalLM: a generator; a base *Model: an
    embedder with mg-heads' default pooling)."""
    path = Path(model_dir)
    if not path.is_dir():
        raise FolderError(f"{model_dir}: no such folder")
    if not (path / "config.json").is_file():
        raise FolderError(f"{model_dir}: not a model folder (no config.json)")
    export_file = path / EXPORT_FILE
    if export_file.is_file():
        try:
            task = json.loads(export_file.read_text(encoding="utf-8"))["task"]
        except (ValueError, KeyError) as e:
            raise FolderError(f"{export_file}: unreadable ({type(e).__name__}: {e})") from None
        if task == "embed":
            return FolderInfo(task, "embed")
        if task in SEQ_CLS_TASKS:
            return FolderInfo(task, "seq_cls")
        if task in GENERATIVE_TASKS:
            return FolderInfo(task, "generate")
        raise FolderError(f"{export_file}: unknown task {task!r}")
    if (path / "modules.json").is_file():
        return FolderInfo("embed", "embed")
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except ValueError as e:
        raise FolderError(f"{path / 'config.json'}: not JSON ({e})") from None
    archs = config.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return FolderInfo("classify", "seq_cls")
    if any(a.endswith(("ForCausalLM", "ForConditionalGeneration")) for a in archs):
        return FolderInfo("sft", "generate")
    if any(a.endswith("Model") for a in archs):
        return FolderInfo("embed", "embed")
    raise FolderError(
        f"{path / 'config.json'}: architectures {archs} is neither an embedding model (*Model), "
        "a classifier (*ForSequenceClassification) nor a causal LM (*ForCausalLM)"
    )
