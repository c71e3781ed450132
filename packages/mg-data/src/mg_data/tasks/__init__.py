"""Task schemas: each module turns a row in any layout it reads into the task's normalized example,
or raises RowError. `normalize(row, warn)`; `warn(message)` reports a tolerated oddity (once per file)."""

from __future__ import annotations

from mg_data.errors import DataError
from mg_data.tasks import classify, embed, pairwise, pt, rerank, score, sft

TASKS = {
    "pt": pt,
    "sft": sft,
    "classify": classify,
    "rm": pairwise,
    "dpo": pairwise,
    "embed": embed,
    "rerank": rerank,
    "score": score,
}


def get(name: str):
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None
