"""The `mg-env` command (also `mg env`): build, list, run, remove, doctor."""

from __future__ import annotations

import json
import os
import sys
import time

import click

from mg_env import builder, envs, profiles
from mg_env import doctor as doctor_mod
from mg_env.errors import EnvError


class UserError(click.ClickException):
    """An EnvError as click shows it: `error: <one line>` and exit code 2, like `mg data`."""

    exit_code = 2

    def show(self, file=None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    # Turned into a ClickException here, not in main(), so that `mg env ...` (mounted in another group,
    # run by another main) prints the same one line.
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EnvError as e:
            raise UserError(str(e)) from e


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mg-env")
def cli() -> None:
    """Backend environments built with uv from committed locks (LLaMA-Factory, vLLM), and a doctor.

    Envs live in $MG_ENV_HOME (default ~/.local/share/mg-env). uv gets pip's index settings
    (pip.conf, PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS) unless UV_* settings are given.
    """


_VERSION = click.option("--version", "version", help="Profile version (default: the profile's newest).")


@cli.command()
@click.argument("profile")
@_VERSION
@click.option("--force", is_flag=True, help="Rebuild even when an env from the same lock exists.")
def build(profile, version, force):
    """Build PROFILE's env from its committed lock (reused after; `vllm` is `vllm-cpu` without a CUDA GPU)."""
    env = builder.build(profile, version, force=force, on_progress=_say)
    click.echo(f"{env.name} ready: {env.link} (python {env.record.python})")


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_(as_json):
    """Every profile and version, and which are built."""
    built = {e.name: e for e in envs.list_envs()}
    rows = []
    for prof in profiles.PROFILES.values():
        for version in prof.versions:
            env = built.pop(envs.env_name(prof.name, version), None)
            rows.append(_row(prof.name, version, env, default=version == prof.default_version))
    rows += [_row(e.record.profile, e.version, e, default=False) for e in built.values()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("PROFILE", "VERSION", "STATE", "PYTHON", "BUILT", "PACKAGES")
    table = [header] + [
        (
            r["profile"],
            r["version"] + (" *" if r["default"] else ""),
            r["state"],
            r["python"] or "",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(r["built_at"])) if r["built_at"] else "",
            ", ".join(f"{k} {v}" for k, v in (r["packages"] or {}).items() if v and k != r["profile"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo(
        "* default version; state: built, drift (its lock changed since: `mg-env build` rebuilds it), -",
        err=True,
    )


def _row(profile: str, version: str, env: envs.Env | None, default: bool) -> dict:
    return {
        "profile": profile,
        "version": version,
        "default": default,
        "state": "-" if env is None else {"ok": "built"}.get(env.lock_status(), env.lock_status()),
        "python": env.record.python if env else None,
        "built_at": env.record.built_at if env else None,
        "path": str(env.path) if env else None,
        "packages": env.key_versions() if env else None,
    }


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("profile")
@_VERSION
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
def run(profile, version, cmd):
    """Run CMD in PROFILE's env: mg-env run llamafactory -- llamafactory-cli version"""
    if cmd and cmd[0] == "--":  # click keeps the separator when options pass through unparsed
        cmd = cmd[1:]
    env = envs.get(profile, version)
    argv = env.argv(cmd)
    try:
        # exec, not a child: signals, the exit code and stdin reach the command as if it were run directly.
        os.execvpe(argv[0], argv, env.environ())
    except FileNotFoundError:
        raise EnvError(f"{cmd[0]}: no such command in {env.name} ({env.bin}) or on PATH") from None


@cli.command()
@click.argument("profile")
@_VERSION
def remove(profile, version):
    """Remove PROFILE's env (every version unless --version is given)."""
    removed = envs.remove(profile, version)
    if not removed:
        raise EnvError(f"nothing to remove: no {profile}{' ' + version if version else ''} env is built")
    for name in removed:
        click.echo(f"removed {name}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def doctor(as_json):
    """Python, torch/CUDA, GPUs, GPU libraries, index in use, disk, and every built env (with drift)."""
    rep = doctor_mod.report()
    click.echo(json.dumps(rep, indent=2) if as_json else doctor_mod.render(rep))


def main() -> None:
    """Run the command so that a user error ends as one line and an exit code, never a traceback."""
    try:
        code = cli.main(standalone_mode=False)  # an int only from ctx.exit(n): --help, --version
    except click.ClickException as e:  # EnvError arrives here as UserError (see _Group)
        e.show()
        sys.exit(e.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        # A build interrupted midway leaves the old env as it was; its half-made folder goes at the next build.
        click.echo("interrupted; the env you had is unchanged", err=True)
        sys.exit(130)
    except EnvError as e:  # raised outside a command (e.g. while click resolves the group)
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    sys.exit(main())
