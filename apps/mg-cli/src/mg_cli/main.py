"""`mg`: one entry point, one subcommand per package CLI."""

from __future__ import annotations

import click

from mg_data.cli import cli as data_cli
from mg_data.cli import run_cli
from mg_env.cli import cli as env_cli
from mg_eval.cli import cli as eval_cli
from mg_serve.cli import cli as serve_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mg-cli")
def mg() -> None:
    """MildGiraffeTrainer: train, evaluate and serve vertical-task models."""


mg.add_command(data_cli, name="data")
mg.add_command(env_cli, name="env")
mg.add_command(eval_cli, name="eval")
mg.add_command(serve_cli, name="serve")


@mg.command(
    name="train",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def train(args: tuple[str, ...]) -> None:
    """Train a model: mg train CONFIG.yaml [--key value ...] (the same as mg-train; --help lists the keys)."""
    from mg_cli.train import main as train_main

    train_main(list(args))


def main() -> None:
    run_cli(mg)
