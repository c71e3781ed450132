"""Every check CI runs. `uv run nox` runs them all; `uv run nox -s tests-mg-data` runs one.

Each `tests-<member>` session gets a fresh venv holding ONLY that member, its extras and its test group,
installed from uv.lock, so an import the member forgot to declare fails here.
"""

from __future__ import annotations

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
