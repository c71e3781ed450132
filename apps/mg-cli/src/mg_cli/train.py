"""`mg-train CONFIG.yaml [--key value ...]`: YAML + flag overrides (defaults < file < flags), one config
format for every task; `--nproc-per-node N` / `--nnodes` ... relaunch under torchrun."""

from __future__ import annotations

import os
import sys

import click
import yaml

from mg_data import DataError
from mg_data.pipeline import InvalidRows

LAUNCH_FLAGS = {
    "--nproc-per-node": "nproc_per_node",
    "--nnodes": "nnodes",
    "--node-rank": "node_rank",
    "--master-addr": "master_addr",
    "--master-port": "master_port",
}
USAGE = """usage: mg-train CONFIG.yaml [--key value ...] [--resume] [--nproc-per-node N] [--nnodes N --node-rank R
                 --master-addr HOST --master-port PORT]

Any config key can be given or overridden as a flag (--learning_rate 1e-4, --num_train_epochs=2).
Keys: mg-train's own, transformers TrainingArguments, and the aliases of TRL / LLaMA-Factory YAML."""


class UsageError(Exception):
    pass


def read_yaml(path: str) -> tuple[dict, dict[str, int]]:
    """The mapping and the line of each top-level key (for file:line errors)."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such config file")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else path
        raise UsageError(f"{where}: invalid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise UsageError(f"{path}: the config must be a mapping of key: value")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    return data, lines


def parse_argv(argv: list[str]) -> tuple[str, dict, dict]:
    if not argv or argv[0] in ("-h", "--help"):
        raise UsageError(USAGE)
    config_path, rest = argv[0], argv[1:]
    overrides, launch = {}, {}
    i = 0
    while i < len(rest):
        token = rest[i]
        if not token.startswith("--"):
            raise UsageError(f"unexpected argument {token!r}; flags look like --key value")
        key, eq, value = token[2:].partition("=")
        if token == "--resume":
            overrides["resume_from_checkpoint"] = "auto"
            i += 1
            continue
        if not eq:
            if i + 1 >= len(rest) or rest[i + 1].startswith("--"):
                raise UsageError(f"--{key} needs a value")
            value = rest[i + 1]
            i += 1
        i += 1
        flag = "--" + key.replace("_", "-")
        if flag in LAUNCH_FLAGS:
            launch[LAUNCH_FLAGS[flag]] = value
        else:
            overrides[key.replace("-", "_")] = flag_value(value)
    return config_path, overrides, launch


def flag_value(text: str):
    """A flag's value read as YAML (numbers, lists, null), except that only true/false are booleans: YAML 1.1
    reads `--save-strategy no` (a transformers value) as False."""
    if text == "":
        return ""
    value = yaml.safe_load(text)
    if isinstance(value, bool) and text.strip().lower() not in ("true", "false"):
        return text
    return value


def torchrun_command(argv: list[str], launch: dict) -> list[str]:
    """torchrun re-running this command in every process, without the launch flags.

    One node without --master-addr/--master-port: `--standalone` (a rendezvous on a free port, so two runs
    on one machine do not collide on 29500). Several nodes: static rendezvous at master addr:port."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc-per-node={launch.get('nproc_per_node', 1)}",
    ]
    if int(launch.get("nnodes", 1)) == 1 and "master_addr" not in launch and "master_port" not in launch:
        cmd.append("--standalone")
    else:
        cmd += [f"--nnodes={launch.get('nnodes', 1)}", f"--node-rank={launch.get('node_rank', 0)}"]
        if "master_addr" in launch:
            cmd.append(f"--master-addr={launch['master_addr']}")
        cmd.append(f"--master-port={launch.get('master_port', 29500)}")
    kept, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0].replace("_", "-")
        if name in LAUNCH_FLAGS:
            skip = "=" not in token
            continue
        kept.append(token)
    return [*cmd, "-m", "mg_cli.train", *kept]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        config_path, overrides, launch = parse_argv(argv)
        mapping, lines = read_yaml(config_path)
        from mg_train.config import ConfigError, parse

        try:
            where = {k: f"{config_path}:{n}" for k, n in lines.items()}
            where.update({k: f"flag --{k.replace('_', '-')}" for k in overrides})
            job = parse({**mapping, **overrides}, source=config_path, locations=where)
        except ConfigError as e:
            raise UsageError(str(e)) from None
        multi = int(launch.get("nproc_per_node", 1)) > 1 or int(launch.get("nnodes", 1)) > 1
        if multi and "LOCAL_RANK" not in os.environ:
            # Become torchrun (same pid): a signal to mg-train reaches torchrun, which stops the workers.
            cmd = torchrun_command(argv, launch)
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(cmd[0], cmd)
        from mg_train.run import train

        try:
            train(job, log=lambda message: click.echo(message, err=True))
        except ConfigError as e:
            raise UsageError(str(e)) from None
    except UsageError as e:
        click.echo(str(e) if str(e) == USAGE else f"error: {e}", err=True)
        sys.exit(2)
    except InvalidRows as e:
        click.echo(str(e), err=True)
        sys.exit(1)
    except DataError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
