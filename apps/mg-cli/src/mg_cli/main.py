"""`mg`: one entry point, one subcommand per package CLI."""

from __future__ import annotations

import click

from mg_data.cli import cli as data_cli
from mg_data.cli import run_cli
from mg_env.cli import cli as env_cli


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mg-cli")
def mg() -> None:
    """MildGiraffeTrainer: train, evaluate and serve vertical-task models."""


mg.add_command(data_cli, name="data")
mg.add_command(env_cli, name="env")


def main() -> None:
    run_cli(mg)
