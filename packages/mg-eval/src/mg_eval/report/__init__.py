"""Training reports: one self-contained HTML page (curves of every run overlaid, final metrics, data preview,
configs) plus PNGs of the main curves, from one or more run directories (see mg_eval.runlog).

    from mg_eval.report import write_report
    write_report(["runs/a", "runs/b"], "report.html")   # also report_png/*.png
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path

from mg_eval.report.charts import Chart, render
from mg_eval.report.content import config_rows, final_table, label_runs, plan_charts, sample_groups
from mg_eval.report.html import render_page
from mg_eval.runlog import METRICS, Run, read_run
from mg_fs import write_bytes_atomic

__all__ = ["NotARunError", "write_report"]


class NotARunError(FileNotFoundError):
    """A path given as a run directory is not one (missing, or no metrics.jsonl)."""


def write_report(
    run_dirs: Sequence[str | os.PathLike],
    out_html: str | os.PathLike,
    *,
    png_dir: str | os.PathLike | None = None,
    title: str | None = None,
) -> Path:
    """Write the report to out_html (atomically) and the main curves as PNGs into png_dir (default: a folder
    "<out_html stem>_png" beside it). Returns the HTML path. Raises NotARunError naming a bad directory."""
    if isinstance(run_dirs, str | os.PathLike):
        run_dirs = [run_dirs]
    if not run_dirs:
        raise ValueError("write_report: no run directories given")
    runs = label_runs([load_run(d) for d in run_dirs])
    out = Path(out_html)
    pngs = Path(png_dir) if png_dir is not None else out.with_name(f"{out.stem}_png")

    charts: list[Chart] = [render(spec, f"c{i}") for i, spec in enumerate(plan_charts(runs))]
    pngs.mkdir(parents=True, exist_ok=True)
    for chart in charts:
        write_bytes_atomic(pngs / chart.filename, chart.png)

    names = [r.name for r in runs]
    page = render_page(
        title=title or f"Training report: {' vs '.join(names) if len(names) <= 4 else f'{len(names)} runs'}",
        subtitle=f"{len(runs)} run{'s' if len(runs) != 1 else ''} · {len(charts)} charts · "
        f"generated {time.strftime('%Y-%m-%d %H:%M:%S')} · PNGs in {pngs}",
        runs=runs,
        charts=charts,
        final=final_table(runs),
        config=config_rows(runs),
        samples=sample_groups(runs),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out, page.encode("utf-8"))
    return out


def load_run(run_dir: str | os.PathLike) -> Run:
    path = Path(run_dir)
    if not path.is_dir():
        raise NotARunError(f"{path}: no such run directory")
    if not (path / METRICS).is_file():
        raise NotARunError(f"{path}: not a run directory (no {METRICS})")
    try:
        return read_run(path)
    except (ValueError, TypeError) as e:  # a hand-edited config.json or a record with unknown fields
        kind = "invalid JSON" if isinstance(e, json.JSONDecodeError) else "unreadable run log"
        raise ValueError(f"{path}: {kind}: {e}") from e
