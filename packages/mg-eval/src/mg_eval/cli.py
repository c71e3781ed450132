"""The `mg-eval` command: `run` scores a model folder or a served endpoint; `score` scores a file of
predictions that is already written; `report` draws runs."""

from __future__ import annotations

import json
import math
import os
from itertools import islice
from pathlib import Path
from urllib.parse import urlsplit

import click

from mg_data import DataError, iter_examples
from mg_data.cli import run_cli
from mg_eval.backends.endpoint import EndpointError, EndpointTimeout
from mg_eval.evaluate import TASKS
from mg_eval.metrics import METRICS_STYLES, MissingMetricsExtra, check_metrics_style, generation_metrics
from mg_eval.runlog import write_json_atomic


def _table(values: dict) -> str:
    width = max(len(k) for k in values)
    lines = []
    for key, value in values.items():
        text = f"{value:.4f}" if isinstance(value, float) and math.isfinite(value) else str(value)
        lines.append(f"{key:<{width}}  {text}")
    return "\n".join(lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mg-eval")
def cli() -> None:
    """Evaluate models and endpoints; draw training runs."""


@cli.command()
@click.option("--task", type=click.Choice(TASKS), required=True)
@click.option("--model", "model_dir", type=click.Path(), help="Local HF model folder.")
@click.option("--endpoint", help="Base URL of an OpenAI/vLLM-compatible server, e.g. http://127.0.0.1:8000.")
@click.option("--served-model", help="Model name on the endpoint (default: the first in /v1/models).")
@click.option(
    "--data",
    "data_file",
    required=True,
    type=click.Path(dir_okay=False),
    help="Any file mg-data reads for the task.",
)
@click.option("--limit", type=int, help="Evaluate only the first N examples.")
@click.option("--batch-size", default=16, show_default=True)
@click.option(
    "--max-length", default=512, show_default=True, help="Truncate inputs to this many tokens (local)."
)
@click.option("--max-new-tokens", default=64, show_default=True, help="Generation length for sft.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option(
    "--timeout",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to wait for each answer of --endpoint before giving up.",
)
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the metrics JSON here.")
@click.option(
    "--predictions", type=click.Path(dir_okay=False), help="Write one prediction per example (JSONL)."
)
def run(
    task,
    model_dir,
    endpoint,
    served_model,
    data_file,
    limit,
    batch_size,
    max_length,
    max_new_tokens,
    device,
    timeout,
    output,
    predictions,
):
    """Score a model on a data file; print the metrics as a table and as JSON."""
    if bool(model_dir) == bool(endpoint):
        raise click.UsageError("give exactly one of --model DIR or --endpoint URL")
    if endpoint:
        check_url(endpoint)
    # Every check that can fail comes before the (possibly long) evaluation, so its metrics are never lost.
    refuse_same(data_file, output, predictions)
    for flag, path in (("--output", output), ("--predictions", predictions)):
        if path:
            ensure_parent(flag, Path(path))
    examples = list(
        islice(iter_examples(data_file, task), limit)
    )  # every row is checked before a model loads
    from mg_eval.evaluate import evaluate

    try:
        backend = open_backend(model_dir, endpoint, served_model, device, batch_size, max_length, timeout)
        where = model_dir or f"{endpoint} (model {backend.model}, --timeout {timeout:g} s per request)"
        click.echo(f"evaluating {len(examples)} {task} examples on {where}", err=True)
        result = evaluate(task, backend, examples, max_new_tokens=max_new_tokens)
    except EndpointTimeout as e:
        raise Failed(
            f"{e}; the server is stalled or slow: check it, or wait longer with --timeout SECONDS"
        ) from None
    except EndpointError as e:
        raise Failed(str(e)) from None
    summary = {
        "task": task,
        "model": model_dir or f"{endpoint} ({backend.model})",
        "examples": len(examples),
        **result.metrics,
    }
    click.echo(_table(summary))
    click.echo(json.dumps(summary, ensure_ascii=False))
    if output:
        write_json_atomic(Path(output), summary)
    if predictions:
        from mg_data.io import write_rows

        write_rows(predictions, result.predictions)


class Failed(click.ClickException):
    """A failure outside the user's files (a server that does not answer): `error: ...`, exit 1."""

    exit_code = 1

    def show(self, file=None) -> None:
        click.echo(f"error: {self.message}", err=True)


def check_url(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DataError(f"--endpoint {endpoint}: not an http(s) URL; give one like http://127.0.0.1:8000")


def refuse_same(data_file: str, output: str | None, predictions: str | None) -> None:
    from mg_fs import SameFileError, refuse_same_files

    try:
        refuse_same_files({"--data": data_file}, {"--output": output, "--predictions": predictions})
    except SameFileError as e:
        raise DataError(str(e)) from None


def ensure_parent(flag: str, path: Path) -> None:
    """Create the folder an output goes into, now rather than after the evaluation."""
    existing = next(p for p in [path.parent, *path.parent.parents] if p.exists())
    if not existing.is_dir():
        raise DataError(f"{flag} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK):
        raise DataError(f"{flag} {path}: the folder {existing} is not writable")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"{flag} {path}: cannot create its folder {path.parent} ({e.strerror})") from None


def open_backend(model_dir, endpoint, served_model, device, batch_size, max_length, timeout):
    if endpoint:
        from mg_eval.backends.endpoint import Endpoint

        return Endpoint(endpoint, model=served_model, batch_size=batch_size, timeout=timeout)
    from mg_eval.backends.local import LocalModel, MissingExtra

    try:
        return LocalModel(model_dir, device=device, batch_size=batch_size, max_length=max_length)
    except (FileNotFoundError, MissingExtra) as e:
        raise DataError(str(e)) from None


# The columns a predictions file may name its pair by: ours (`mg-eval run --predictions` writes these) and
# LLaMA-Factory's generated_predictions.jsonl (which also has `prompt`; other columns are ignored).
PAIR_COLUMNS = (("prediction", "reference"), ("predict", "label"))


@cli.command()
@click.argument("predictions_file", metavar="PREDICTIONS", type=click.Path(dir_okay=False))
@click.option(
    "--metrics-style",
    type=click.Choice(METRICS_STYLES),
    default="sacrebleu",
    show_default=True,
    help="sacrebleu: corpus BLEU, chrF, ROUGE; llamafactory: LLaMA-Factory's per-sample BLEU-4 and ROUGE "
    "on jieba words (the llamafactory-metrics extra).",
)
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the metrics JSON here.")
def score(predictions_file, metrics_style, output):
    """Score a file of predictions (JSONL, JSON or Parquet) against its references without generating.

    Each row holds `prediction` and `reference`, or LLaMA-Factory's `predict` and `label` (its
    generated_predictions.jsonl as it is). Prints the metrics as a table and as JSON.
    """
    from mg_fs import refuse_same_files

    try:
        check_metrics_style(metrics_style)
    except MissingMetricsExtra as e:
        raise DataError(str(e)) from None
    refuse_same_files({"PREDICTIONS": predictions_file}, {"--output": output})
    if output:
        ensure_parent("--output", Path(output))
    predictions, references = read_pairs(predictions_file)
    summary = {
        "predictions": predictions_file,
        "metrics_style": metrics_style,
        "examples": len(predictions),
        **generation_metrics(predictions, references, style=metrics_style),
    }
    click.echo(_table(summary))
    click.echo(json.dumps(summary, ensure_ascii=False))
    if output:
        write_json_atomic(Path(output), summary)


def read_pairs(path: str) -> tuple[list[str], list[str]]:
    """Every row's prediction and reference; the first bad row ends it as `PATH:LINE: why`."""
    from mg_data.io import iter_rows

    predictions, references = [], []
    for line, row, error in iter_rows(path):
        try:
            if error:
                raise ValueError(error)
            prediction, reference = row_pair(row)
        except ValueError as e:
            raise DataError(f"{path}:{line}: {e}") from None
        predictions.append(prediction)
        references.append(reference)
    if not predictions:
        raise DataError(f"{path}: no rows to score")
    return predictions, references


def row_pair(row) -> tuple[str, str]:
    if not isinstance(row, dict):
        raise ValueError(f"a row is a JSON object with prediction and reference, not {type(row).__name__}")
    for names in PAIR_COLUMNS:
        if any(name in row for name in names):
            prediction, reference = (row_text(row, name) for name in names)
            return prediction, reference
    found = ", ".join(row) or "none"
    raise ValueError(
        f"no prediction: a row needs prediction and reference (or LLaMA-Factory's predict and label); "
        f"its columns: {found}"
    )


def row_text(row: dict, name: str) -> str:
    if name not in row:
        raise ValueError(f"no {name} column")
    value = row[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string: {json.dumps(value, ensure_ascii=False)[:60]}")
    return value


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False))
@click.option(
    "--png-dir", type=click.Path(file_okay=False), help="Where the PNG curves go (default: beside the HTML)."
)
@click.option("--title", help="Page title.")
def report(run_dirs, output, png_dir, title):
    """Draw one or more runs into ONE self-contained HTML file (plus PNGs of the main curves)."""
    from mg_eval.report import write_report

    try:
        path = write_report(list(run_dirs), output, png_dir=png_dir, title=title)
    except (FileNotFoundError, ValueError) as e:  # not a run dir, or a broken config.json / record
        raise DataError(str(e)) from None
    click.echo(f"wrote {path}", err=True)


def main() -> None:
    run_cli(cli)
