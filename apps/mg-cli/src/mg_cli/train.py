"""`mg-train CONFIG.yaml [--key value ...]`: YAML + flag overrides (defaults < file < flags), one config
format for every task; `--nproc-per-node N` / `--nnodes` ... relaunch under torchrun. `mg-train --help
[--task TASK] [--all]` lists the keys, generated from the config fields."""

from __future__ import annotations

import os
import shlex
import sys
import textwrap

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
                 --master-addr HOST --master-port PORT] [--backend llamafactory [--lf-version V]]
       mg-train --help [--task TASK] [--all]

Any config key can be given or overridden as a flag (--learning_rate 1e-4, --num-train-epochs=2).
Keys: mg-train's own, transformers TrainingArguments, and the aliases of TRL / LLaMA-Factory YAML.
--backend llamafactory trains on LLaMA-Factory itself (an mg-train config or a native LLaMA-Factory YAML)."""
HELP_WIDTH = 110
# Where a job trains: mg-train itself (default) or LLaMA-Factory (mg_lf_bridge), whose release --lf-version picks.
BACKENDS = ("mg-train", "llamafactory")


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
    duplicate = duplicate_key(node)
    if duplicate:
        key, first, second = duplicate
        raise UsageError(
            f"{path}:{second}: key {key!r} is given twice (lines {first} and {second}); keep one"
        )
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    return data, lines


def duplicate_key(node) -> tuple[str, int, int] | None:
    """The first key given twice in one mapping, anywhere in the document, with both lines: YAML loaders
    keep the last value and drop the other without a word."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in seen and key != "<<":
                return str(key), seen[key], line
            seen.setdefault(key, line)
            found = duplicate_key(value_node)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            found = duplicate_key(item)
            if found:
                return found
    return None


def parse_argv(argv: list[str]) -> tuple[str, dict, dict]:
    if not argv:
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


def help_request(argv: list[str]) -> tuple[str | None, bool] | None:
    """(task, all) when argv asks for help: `--help [--task TASK] [--all]`, in any order."""
    if not any(a in ("-h", "--help") for a in argv):
        return None
    task, everything = None, "--all" in argv
    for i, token in enumerate(argv):
        if token == "--task":
            if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                raise UsageError("--task needs a value")
            task = argv[i + 1]
        elif token.startswith("--task="):
            task = token.partition("=")[2]
    return task, everything


def help_text(task: str | None, everything: bool) -> str:
    """The keys mg-train reads, generated from the config fields (mg_train.config.help_groups)."""
    from mg_train.config import help_groups, task_summaries
    from mg_train.tasks import TASKS

    if task is not None and task not in TASKS:
        raise UsageError(f"--task {task}: not one of {', '.join(TASKS)}")
    out = [USAGE.split("\n\nAny config key")[0], ""]
    out += wrap(
        "Every key below can be given in CONFIG.yaml or as a flag (--learning-rate 1e-4, --num_train_epochs=2); "
        "defaults < file < flags. --resume continues from the newest checkpoint in output_dir. The names "
        "of transformers TrainingArguments, TRL and LLaMA-Factory YAML are accepted as aliases.",
        "",
    )
    out += ["", "tasks (task:, or LLaMA-Factory's stage:):"]
    width = max(map(len, TASKS))
    for name, summary in task_summaries():
        out += wrap(summary, f"  {name:<{width}}  ", " " * (width + 4))
    out += wrap("ppo: not in the pinned TRL (it has no PPO trainer); grpo trains from the same rewards", "  ")
    for title, fields in help_groups(task, everything=everything):
        out += ["", f"{title}:"]
        for f in fields:
            aliases = f"   (alias: {', '.join(f.aliases)})" if f.aliases else ""
            out.append(f"  {f.name}: {f.type} = {f.default}{aliases}")
            if f.help:
                out += wrap(f.help, " " * 6)
    out.append("")
    if task is None:
        out.append("A task's own keys: mg-train --help --task TASK (e.g. --task embed).")
    if not everything:
        out.append("Every other transformers TrainingArguments key: mg-train --help --all.")
    return "\n".join(out)


def wrap(text: str, first: str, rest: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        HELP_WIDTH,
        initial_indent=first,
        subsequent_indent=first if rest is None else rest,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def backend_flags(argv: list[str]) -> tuple[str, str | None, list[str]]:
    """(backend, LLaMA-Factory release, argv without the two flags): they choose where the job trains, and are
    not config keys."""
    found: dict[str, str] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        flag = name.replace("_", "-")
        if flag == "--llamafactory":  # the seed's spelling (its README)
            raise UsageError(
                "--llamafactory is not a flag; train on LLaMA-Factory with --backend llamafactory"
            )
        if flag not in ("--backend", "--lf-version"):
            rest.append(argv[i])
            i += 1
            continue
        if not eq:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise UsageError(f"{flag} needs a value")
            value, i = argv[i + 1], i + 1
        found[flag] = value
        i += 1
    backend = found.get("--backend", "mg-train")
    if backend not in BACKENDS:
        raise UsageError(f"--backend {backend}: not one of {', '.join(BACKENDS)}")
    if "--lf-version" in found and backend != "llamafactory":
        raise UsageError("--lf-version picks the LLaMA-Factory release: give it with --backend llamafactory")
    return backend, found.get("--lf-version"), rest


def train_on_llamafactory(
    argv: list[str],
    config_path: str,
    settings: dict,
    where: dict[str, str],
    launch: dict,
    version: str | None,
) -> None:
    """The job on LLaMA-Factory itself (mg_lf_bridge): its errors as one line, its exit codes."""
    from mg_lf_bridge import BridgeError, Interrupted, LFFailed
    from mg_lf_bridge import train as lf_train
    from mg_train.errors import ConfigError

    try:
        lf_train(
            settings,
            source=config_path,
            locations=where,
            version=version,
            launch_flags=launch,
            log=lambda message: click.echo(message, err=True),
        )
    except (BridgeError, ConfigError) as e:
        raise UsageError(str(e)) from None
    except LFFailed as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except Interrupted as e:
        click.echo(f"{e}; resume with: {resume_command(argv)}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:  # before LLaMA-Factory started (data, env build) or while exporting
        click.echo("interrupted", err=True)
        sys.exit(130)


def resume_command(argv: list[str]) -> str:
    """This run's command line, resuming."""
    return shlex.join(["mg-train", *[a for a in argv if a != "--resume"], "--resume"])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    try:
        wanted = help_request(argv)
        if wanted is not None:
            click.echo(help_text(*wanted))
            return
        backend, lf_version, train_argv = backend_flags(argv)
        config_path, overrides, launch = parse_argv(train_argv)
        mapping, lines = read_yaml(config_path)
        if backend == "llamafactory":
            where = {k: f"{config_path}:{n}" for k, n in lines.items()}
            where.update({k: f"flag --{k.replace('_', '-')}" for k in overrides})
            train_on_llamafactory(argv, config_path, {**mapping, **overrides}, where, launch, lf_version)
            return
        from mg_train.console import quiet_notices

        quiet_notices()  # before transformers and DeepSpeed are imported (DeepSpeed's notice comes at import)
        from mg_train.config import parse
        from mg_train.errors import ConfigError

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
        from mg_train.trainer import Interrupted, TrainingStopped

        try:
            train(job, log=lambda message: click.echo(message, err=True))
        except ConfigError as e:
            raise UsageError(str(e)) from None
        except Interrupted as e:
            click.echo(f"{e}; resume with: {resume_command(argv)}", err=True)
            sys.exit(e.exit_code)
        except TrainingStopped as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:  # a second Ctrl-C: stopped at once, without saving
            click.echo(
                f"interrupted; resume from the newest checkpoint with: {resume_command(argv)}", err=True
            )
            sys.exit(130)
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
