"""The real `mg-train` command and readers of what it leaves behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def write_config(path: Path, **config) -> Path:
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


def mg_train(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mg_cli.train", *map(str, args)], capture_output=True, text=True, **kwargs
    )


def metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def series(run_dir: Path, split: str, name: str) -> list[float]:
    return [m["value"] for m in metrics(run_dir) if m["split"] == split and m["name"] == name]
