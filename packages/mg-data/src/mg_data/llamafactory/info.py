"""dataset_info.json: its entries, read as LLaMA-Factory 0.9.5 reads them (data/parser.py, DatasetAttr).

An entry names a local file or folder (`file_name`) and how to read its rows: `formatting` (alpaca or
sharegpt), `columns` (which column holds the prompt, the messages, ...), `tags` (the keys and role names of a
sharegpt message), `ranking` (pairwise rows, for rm/dpo), `split` and `num_samples`.

Defaults as in LLaMA-Factory: with no `columns`, alpaca reads instruction/input/output and sharegpt reads
conversations; with `columns`, a column the entry does not name is not read at all (so an alpaca entry
without `"system": "system"` ignores a system column). `tags` work the same way: once given, an unnamed tag
is unset (kto_en_demo's tags name no system tag, so a system message there is not one).

Where mg-data differs, on purpose: it reads local files only, and prefers `file_name` when an entry also
names a hub (LLaMA-Factory downloads then); a key LLaMA-Factory does not know inside `columns` or `tags` is an
error (it ignores it, so a typo silently reads nothing); multimodal columns are refused (text models only).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from mg_data.conversation import type_name
from mg_data.errors import DataError

COLUMNS = (
    "prompt",
    "query",
    "response",
    "history",
    "messages",
    "system",
    "tools",
    "images",
    "videos",
    "audios",
    "chosen",
    "rejected",
    "kto_tag",
)
TAGS = (
    "role_tag",
    "content_tag",
    "user_tag",
    "assistant_tag",
    "observation_tag",
    "function_tag",
    "system_tag",
)
# DatasetAttr's defaults: what is read when an entry has no "columns" (or no "tags").
DEFAULT_COLUMNS: dict[str, str | None] = {
    **dict.fromkeys(COLUMNS),
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "messages": "conversations",
}
DEFAULT_TAGS: dict[str, str | None] = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
FORMATTINGS = ("alpaca", "sharegpt")
MEDIA = ("images", "videos", "audios")
# Where an entry says its data is when not in a local file (LLaMA-Factory's order of preference).
REMOTE = {
    "hf_hub_url": "on the Hugging Face hub",
    "ms_hub_url": "on the ModelScope hub",
    "om_hub_url": "on the Modelers hub",
    "script_url": "made by a loading script",
    "cloud_file_name": "in cloud storage",
}
# LLaMA-Factory's FILEEXT2TYPE: the suffixes it reads, and the reader `datasets` uses for each.
FILE_KINDS = {
    "json": "json",
    "jsonl": "json",
    "csv": "csv",
    "parquet": "parquet",
    "txt": "txt",
    "arrow": "arrow",
}
# `datasets`' split syntax for a local file's one split: train, train[10:20], train[:10%], train[-5:](closest)
_SPLIT = re.compile(
    r"^train(?:\[(?P<from>-?[\d_]+)?(?P<from_pct>%)?:(?P<to>-?[\d_]+)?(?P<to_pct>%)?\])?"
    r"(?:\((?P<rounding>closest|pct1_dropremainder)\))?$"
)


@dataclass(frozen=True)
class Entry:
    """One dataset of a dataset_info.json, with LLaMA-Factory's defaults applied."""

    info_path: str
    line: int  # where the entry's name is in dataset_info.json
    name: str
    file_name: str
    formatting: str = "alpaca"
    ranking: bool = False
    split: str = "train"
    num_samples: int | None = None
    columns: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_COLUMNS))
    tags: dict[str, str | None] = field(default_factory=lambda: dict(DEFAULT_TAGS))

    @property
    def where(self) -> str:
        return f"{self.info_path}:{self.line}: dataset {self.name!r}"

    def error(self, message: str) -> DataError:
        return DataError(f"{self.where}: {message}")

    @property
    def dataset_dir(self) -> str:
        return os.path.dirname(self.info_path)

    @property
    def path(self) -> str:
        """file_name under the dataset folder, as LLaMA-Factory joins them (an absolute file_name stays)."""
        return os.path.join(self.dataset_dir, self.file_name)

    def column(self, role: str) -> str | None:
        return self.columns[role]

    def split_slice(self, total: int) -> tuple[int, int]:
        """The rows [start, stop) of `total` that `split` selects, as `datasets` computes them."""
        match = _SPLIT.match(self.split)
        assert match is not None  # checked when the entry was read
        percent = bool(match["from_pct"] or match["to_pct"])
        rounding = match["rounding"] or "closest"

        def bound(text: str | None, default: int) -> int:
            if text is None:
                return default
            value = int(text.replace("_", ""))
            if not percent:
                return value
            if rounding == "closest":
                return int(round(value * total / 100.0))
            if total < 100:  # `datasets` refuses it too: whole percents of fewer than 100 rows are none
                raise self.error(f"split {self.split!r}: pct1_dropremainder needs at least 100 rows")
            return value * (total // 100)

        start, stop = bound(match["from"], 0), bound(match["to"], total)
        if start < 0:
            start = max(total + start, 0)
        if stop < 0:
            stop = max(total + stop, 0)
        return min(start, total), min(stop, total)

    def split_needs_count(self) -> bool:
        """Whether the split's rows depend on how many rows there are (percentages, negative bounds)."""
        match = _SPLIT.match(self.split)
        assert match is not None
        bounds = (match["from"] or "", match["to"] or "")
        return bool(match["from_pct"] or match["to_pct"]) or any(b.startswith("-") for b in bounds)

    def split_is_all(self) -> bool:
        return self.split == "train"


def load_entry(info_path: str, name: str) -> Entry:
    """Entry `name` of the dataset_info.json at `info_path`; every problem with it is one DataError line."""
    if not name:
        raise DataError(f"{info_path}#: no dataset name after '#' (write {info_path}#NAME)")
    info, lines = read_info(info_path)
    if name not in info:
        known = ", ".join(list(info)[:20]) + (", ..." if len(info) > 20 else "")
        raise DataError(f"{info_path}: no dataset {name!r} (it has: {known or 'none'})")
    return parse_entry(info_path, lines[name], name, info[name])


def read_info(info_path: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The entries of a dataset_info.json and the line each one's name is on."""
    try:
        with open(info_path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise DataError(f"{info_path}: no such file") from None
    except OSError as e:
        raise DataError(f"{info_path}: cannot read ({e.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{info_path}: not valid UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{info_path}:{e.lineno}: malformed JSON: {e.msg}") from None
    if not isinstance(info, dict):
        raise DataError(f"{info_path}: must hold one JSON object of datasets by name, got {type_name(info)}")
    return info, _key_lines(text)


def _key_lines(text: str) -> dict[str, int]:
    """The line of each top-level key of a JSON object already known to be valid (json gives no positions)."""
    decoder = json.JSONDecoder()
    lines: dict[str, int] = {}
    pos, line = 0, 1

    def skip(pos: int, line: int, chars: str) -> tuple[int, int]:
        while pos < len(text) and text[pos] in chars:
            line += text[pos] == "\n"
            pos += 1
        return pos, line

    pos, line = skip(pos, line, " \t\r\n{")
    while pos < len(text) and text[pos] != "}":
        key, end = decoder.raw_decode(text, pos)
        lines[key] = line  # a name given twice: json keeps the last, and so does this
        line += text.count("\n", pos, end)
        pos, line = skip(end, line, " \t\r\n:")
        _, end = decoder.raw_decode(text, pos)
        line += text.count("\n", pos, end)
        pos, line = skip(end, line, " \t\r\n,")
    return lines


def parse_entry(info_path: str, line: int, name: str, value: Any) -> Entry:
    where = f"{info_path}:{line}: dataset {name!r}"

    def fail(message: str) -> DataError:
        return DataError(f"{where}: {message}")

    if not isinstance(value, dict):
        raise fail(f"must be an object with file_name, got {type_name(value)}")
    file_name = value.get("file_name")
    if file_name is None:
        for key, place in REMOTE.items():
            if key in value:
                raise fail(
                    f"is {place} ({key} {value[key]!r}), and mg-data reads local files only: "
                    "download the data into the dataset folder and set file_name"
                )
        raise fail("has no file_name")
    if not isinstance(file_name, str) or not file_name:
        raise fail(f"file_name must be a file or folder name, got {type_name(file_name)} {file_name!r}")
    formatting = value.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        known = "LLaMA-Factory's openai formatting is not read" if formatting == "openai" else "unknown"
        raise fail(f"formatting {formatting!r}: {known}; use alpaca or sharegpt")
    ranking = value.get("ranking", False)
    if not isinstance(ranking, bool):
        raise fail(f"ranking must be true or false, got {type_name(ranking)} {ranking!r}")
    split = value.get("split", "train")
    if not isinstance(split, str) or not _SPLIT.match(split.replace(" ", "")):
        raise fail(
            f"split {split!r}: a local file has one split, train (datasets puts every file of file_name in "
            "it); use train or a slice of it such as train[:100] or train[:10%]"
        )
    num_samples = value.get("num_samples")
    if num_samples is not None and (type(num_samples) is not int or num_samples < 1):
        raise fail(f"num_samples must be a whole number of at least 1, got {num_samples!r}")
    entry = Entry(
        info_path=info_path,
        line=line,
        name=name,
        file_name=file_name,
        formatting=formatting,
        ranking=ranking,
        split=split.replace(" ", ""),
        num_samples=num_samples,
        columns=_names(value, "columns", COLUMNS, DEFAULT_COLUMNS, fail),
        tags=_names(value, "tags", TAGS, DEFAULT_TAGS, fail),
    )
    _check_columns(entry, fail)
    return entry


def _names(value: dict, key: str, known: tuple[str, ...], defaults: dict, fail) -> dict[str, str | None]:
    """`columns` or `tags`: LLaMA-Factory's defaults when absent, else exactly what the entry names."""
    if key not in value:
        return dict(defaults)
    given = value[key]
    if not isinstance(given, dict):
        raise fail(f"{key} must be an object, got {type_name(given)}")
    for name, column in given.items():
        if name not in known:
            raise fail(f"{key}.{name} is not one LLaMA-Factory reads (it reads {', '.join(known)})")
        if column is not None and (not isinstance(column, str) or not column):
            raise fail(f"{key}.{name} must be a name (a string), got {type_name(column)} {column!r}")
    return {name: given.get(name) for name in known}


def _check_columns(entry: Entry, fail) -> None:
    for media in MEDIA:
        if entry.columns[media] is not None:
            raise fail(f"columns.{media}: multimodal data is not supported (mg-data trains text models)")
    if entry.formatting == "sharegpt":
        if entry.columns["messages"] is None:
            raise fail("formatting sharegpt needs columns.messages (the column of the messages)")
        for tag in ("role_tag", "content_tag"):
            if entry.tags[tag] is None:
                raise fail(f"formatting sharegpt needs tags.{tag}")
    if entry.ranking:
        for role in ("chosen", "rejected"):
            if entry.columns[role] is None:
                raise fail(f"ranking is true, so columns.{role} must name the column of the {role} answers")
