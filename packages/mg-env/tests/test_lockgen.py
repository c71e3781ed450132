"""Locks as the project controls them, offline: lockgen's output for a wheel of our own, the strict reader,
and the builder refusing a lock that is not what its name says.

Regenerating the committed locks against PyPI is a maintainer's command, not a test (what a registry serves
changes from day to day and machine to machine): `uv run nox -s locks` (see the package README).
"""

from __future__ import annotations

import hashlib
import sys

import pytest

import mg_env
from mg_env import lockgen, locks
from mg_env.errors import EnvError

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_lockgen_locks_a_wheel_offline_and_the_build_installs_it(
    tmp_path, clean_sources, make_wheel, tiny_profile
):
    wheel = make_wheel(tmp_path / "wheels", value="locked by lockgen")
    profile = tiny_profile(tmp_path / "committed", wheel)
    # UV_OFFLINE: uv asks no index at all, so the lock can only come from the wheel folder.
    clean_sources.setenv("UV_OFFLINE", "1")
    made = lockgen.compile_lock(
        profile, "1.0", PYTHON, out_dir=tmp_path / "made", find_links=[str(tmp_path / "wheels")]
    )
    lock = locks.read(made)
    assert (lock.profile, lock.version, lock.python) == ("selftest", "1.0", PYTHON)
    assert lock.pins == {"mg-env-selftest": ("1.0", (hashlib.sha256(wheel.read_bytes()).hexdigest(),))}

    (profile.lock_dir / made.name).write_bytes(made.read_bytes())
    clean_sources.setenv("UV_FIND_LINKS", str(tmp_path / "wheels"))
    env = mg_env.build(profile, home=tmp_path / "home")
    assert env.versions() == {"mg-env-selftest": "1.0"}
    assert env.record.lock_sha256 == locks.sha256(made)


HEADER = "#    python -m mg_env.lockgen selftest --version 1.0 --python 3.11\n"
HASH = "    --hash=sha256:" + "a" * 64 + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + "pkg>=1.0 \\\n" + HASH, r"lock.txt:2: not pinned as name==version: 'pkg>=1.0 \\\\'"),
        (HEADER + "pkg==1.0\n", r"lock.txt:2: pkg==1.0 has no --hash=sha256: line"),
        (
            HEADER + "pkg==1.0 \\\n    --hash=md5:abc\n",
            r"lock.txt:3: expected `--hash=sha256:<64 hex digits>`",
        ),
        ("pkg==1.0 \\\n" + HASH, r"lock.txt:1: no `python -m mg_env.lockgen PROFILE --version V"),
        (HEADER, r"lock.txt: pins nothing"),
    ],
)
def test_read_refuses_what_uv_pip_sync_could_not_install_exactly(tmp_path, text, message):
    path = tmp_path / "lock.txt"
    path.write_text(text)
    with pytest.raises(EnvError, match=message):
        locks.read(path)


def test_build_refuses_a_lock_made_for_another_version(tmp_path, selftest):
    lock = next(selftest.lock_dir.glob("*.txt"))
    lock.write_text(lock.read_text().replace("--version 1.0", "--version 0.9"))
    with pytest.raises(EnvError, match=r"made for selftest 0\.9 \(its header\), not selftest 1\.0"):
        mg_env.build(selftest, home=tmp_path / "home")
