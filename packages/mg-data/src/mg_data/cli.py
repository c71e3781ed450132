"""The `mg-data` command: convert, validate, stats, preview, export-lf.

Every INPUT is a data file or a LLaMA-Factory dataset reference, DIR/dataset_info.json#NAME."""

from __future__ import annotations

import json
import sys

import click
from tqdm import tqdm

from mg_data import formats, pipeline, tasks
from mg_data.errors import DataError, Rejected
from mg_data.sources import input_files, open_source, prepared_rows
from mg_fs import SameFileError, exit_on_sigterm, refuse_same_files

FORMAT_CHOICE = click.Choice(list(formats.FORMATS))
TASK_CHOICE = click.Choice(list(tasks.TASKS))


def _say_reject(rejected: Rejected) -> None:
    tqdm.write(str(rejected), file=sys.stderr)


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def _refuse_same_files(input, output, output_name: str, skip_invalid: bool, rejects) -> None:
    """One line, before anything is read or written, when an output would overwrite the input."""
    rejects = pipeline.rejects_path(input, output, rejects) if skip_invalid else None
    refuse_same_files(input_files(open_source(input), "INPUT"), {output_name: output, "--rejects": rejects})


def _finish(report: pipeline.Report, skip_invalid: bool) -> None:
    click.echo(report.summary(), err=True)
    if report.rejected and not skip_invalid:
        click.echo(
            "nothing written: fix the rows above or pass --skip-invalid to write the valid rows "
            "and send the rest to a rejects file",
            err=True,
        )
        sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mg-data")
def cli() -> None:
    """Convert, check and inspect training data for MildGiraffeTrainer."""


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False))
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--to", "to", type=FORMAT_CHOICE, required=True, help="Format to write.")
@click.option(
    "--from",
    "from_",
    type=click.Choice(["auto", *formats.FORMATS]),
    default="auto",
    show_default=True,
    help="Format to read; auto detects it per row from the keys.",
)
@click.option("--skip-invalid", is_flag=True, help="Write the valid rows; send bad rows to the rejects file.")
@click.option(
    "--rejects", type=click.Path(dir_okay=False), help="Rejects file (default OUTPUT.rejects.jsonl)."
)
def convert(input, output, to, from_, skip_invalid, rejects):
    """Convert INPUT between alpaca, sharegpt and messages (pairwise rows stay pairwise).

    INPUT: .jsonl/.json/.parquet/.csv/.txt, or DIR/dataset_info.json#NAME (a LLaMA-Factory dataset)."""
    _refuse_same_files(input, output, "OUTPUT", skip_invalid, rejects)
    report = pipeline.convert_file(
        input,
        output,
        to=to,
        from_=from_,
        skip_invalid=skip_invalid,
        rejects=rejects,
        on_reject=_say_reject,
        on_warning=_say,
    )
    _finish(report, skip_invalid)


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--task", type=TASK_CHOICE, required=True, help="Schema to check the rows against.")
@click.option(
    "--from",
    "from_",
    type=click.Choice(["auto", *formats.FORMATS]),
    default="auto",
    show_default=True,
    help="Conversation format for --task sft.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the normalized examples here.")
@click.option("--skip-invalid", is_flag=True, help="Exit 0 despite bad rows; send them to the rejects file.")
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False),
    help="Rejects file (default OUTPUT or INPUT + .rejects.jsonl).",
)
def validate(input, task, from_, output, skip_invalid, rejects):
    """Check every row of INPUT against a task's schema; report each bad row as file:line."""
    _refuse_same_files(input, output, "--output", skip_invalid, rejects)
    report = pipeline.validate_file(
        input,
        task=task,
        from_=from_,
        output=output,
        skip_invalid=skip_invalid,
        rejects=rejects,
        on_reject=_say_reject,
        on_warning=_say,
    )
    _finish(report, skip_invalid)


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False))
@click.option(
    "--task",
    type=TASK_CHOICE,
    help="Read rows as this task (default: sft, or the task a LLaMA-Factory entry is for).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(input, task, as_json):
    """Rows, formats, turns, lengths and labels of INPUT."""
    from mg_data.stats import file_stats

    result = file_stats(input, task=task, on_reject=_say_reject).as_dict()
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, indent=2))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        click.echo(f"{key:<{width}}  {value}")


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False))
@click.option(
    "--tokenizer", required=True, type=click.Path(), help="HF tokenizer folder with a chat template."
)
@click.option("-n", "count", default=3, show_default=True, help="How many samples to show.")
@click.option(
    "--from", "from_", type=click.Choice(["auto", *formats.FORMATS]), default="auto", show_default=True
)
def preview(input, tokenizer, count, from_):
    """Show samples of INPUT as the model sees them; trained-on spans are marked."""
    from mg_data.preview import load_tokenizer, segments

    source = pipeline.task_source(input, "sft")
    tok = load_tokenizer(tokenizer)
    color = sys.stdout.isatty()
    normalize = pipeline.task_schema("sft", from_)
    shown = 0
    for file, line, row, error in prepared_rows(source, show_progress=False, warn=_say):
        if shown >= count:
            break
        click.echo(click.style(f"── {file}:{line} ", bold=True) + "─" * 40)
        try:
            if error:
                raise DataError(error)
            conv = normalize(row, lambda m: None)
        except (DataError, ValueError) as e:
            click.echo(f"{file}:{line}: {e}", err=True)
            continue
        for seg in segments(tok, conv):
            if color:
                click.echo(
                    click.style(seg.text, fg="green", underline=True) if seg.trained else seg.text, nl=False
                )
            else:
                click.echo(f"⟦{seg.text}⟧" if seg.trained else seg.text, nl=False)
        click.echo()
        shown += 1
    legend = "green underlined" if color else "⟦ ⟧"
    click.echo(f"trained-on spans are shown {legend}; everything else is context the loss ignores", err=True)


@cli.command("export-lf")
@click.argument("input", type=click.Path(dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option(
    "--task",
    type=click.Choice(["pt", "sft", "rm", "dpo", "kto"]),
    required=True,
    help="Read rows as this task.",
)
@click.option(
    "--name", help="Dataset name (default: INPUT's file name without its suffix, or its entry name)."
)
def export_lf(input, out_dir, task, name):
    """Write INPUT as a LLaMA-Factory dataset: OUT_DIR/NAME.jsonl and its entry in OUT_DIR/dataset_info.json
    (created, or updated keeping its other entries). Bad rows are listed as file:line and nothing is written."""
    from mg_data.llamafactory import default_name, write_dataset

    name = name or default_name(input)
    path = write_dataset(input, out_dir, name, task, on_warning=_say)
    click.echo(f"wrote {path} and dataset {name!r} in {path.parent / 'dataset_info.json'}", err=True)
    click.echo(f"use it with: dataset: {name} and dataset_dir: {path.parent}", err=True)


def run_cli(group: click.Group) -> None:
    """Run a click group so that user errors end as one line and an exit code, never a traceback.
    SIGTERM unwinds like Ctrl-C (exit 143), so temp files are removed and the old outputs stay."""
    exit_on_sigterm()
    try:
        group.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted; nothing half-written was left behind", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except pipeline.InvalidRows as e:  # already file:line lines and a summary
        click.echo(str(e), err=True)
        sys.exit(1)
    except (DataError, SameFileError) as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted; nothing half-written was left behind", err=True)
        sys.exit(130)


def main() -> None:
    run_cli(cli)
