"""The build machinery, with real uv builds of a one-file wheel: sources, lock, failure, drift, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import mg_env
from mg_env import doctor, store
from mg_env.errors import BuildFailed
from mg_env.profiles import Profile


def _value(env: mg_env.Env) -> str:
    done = env.run(
        ["python", "-c", "import mg_env_selftest; print(mg_env_selftest.VALUE)"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def test_pip_find_links_variable_reaches_uv(selftest, tmp_path):
    env = mg_env.build(selftest, home=tmp_path / "home")
    assert _value(env) == f"built in {tmp_path.name}"
    assert env.record.sources["origin"] == "pip"
    assert env.record.sources["find_links"] == [str(tmp_path / "wheels")]
    assert env.lock_status() == "ok"
    # Built once, reused after: the same build folder comes back.
    assert mg_env.ensure(selftest, home=tmp_path / "home").path == env.path


def test_pip_conf_find_links_reaches_uv(tmp_path, clean_sources, make_wheel, tiny_profile):
    wheel = make_wheel(tmp_path / "wheels", value="from pip.conf")
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {tmp_path / 'wheels'}\n")
    clean_sources.setenv("PIP_CONFIG_FILE", str(conf))
    env = mg_env.build(tiny_profile(tmp_path / "locks", wheel), home=tmp_path / "home")
    assert _value(env) == "from pip.conf"
    assert env.record.sources["from"] == [str(conf)]


def test_without_pip_config_uv_does_not_find_the_wheel(tmp_path, clean_sources, make_wheel, tiny_profile):
    # The control for the two tests above: uv alone does not look where pip was told to.
    profile = tiny_profile(tmp_path / "locks", make_wheel(tmp_path / "wheels"))
    home = tmp_path / "home"
    with pytest.raises(BuildFailed, match="uv pip sync failed for selftest-1.0.*mg-env-selftest"):
        mg_env.build(profile, home=home)
    assert store.Store(home).build_dirs("selftest-1.0") == []  # a failed build leaves nothing behind


def test_uv_settings_take_precedence_over_pip(tmp_path, clean_sources, make_wheel, tiny_profile):
    wheel = make_wheel(tmp_path / "wheels")
    clean_sources.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    clean_sources.setenv("UV_FIND_LINKS", str(tmp_path / "wheels"))
    env = mg_env.build(tiny_profile(tmp_path / "locks", wheel), home=tmp_path / "home")
    assert env.record.sources["origin"] == "uv"
    assert _value(env) == "hello"


def test_failed_check_keeps_the_old_env(selftest, tmp_path):
    home = tmp_path / "home"
    old = mg_env.build(selftest, home=home)
    broken = Profile(**{**selftest.__dict__, "check": ("{python}", "-c", "raise SystemExit('broken env')")})
    with pytest.raises(BuildFailed, match="failed its check \\(broken env\\)"):
        mg_env.build(broken, force=True, home=home)
    current = mg_env.get(selftest, home=home)
    assert current.path == old.path
    assert _value(current) == f"built in {tmp_path.name}"
    assert store.Store(home).build_dirs("selftest-1.0") == [old.path]


def test_changed_lock_is_drift_and_ensure_rebuilds(selftest, tmp_path):
    home = tmp_path / "home"
    first = mg_env.ensure(selftest, home=home)
    lock = selftest.lock_dir / first.record.lock
    lock.write_text(lock.read_text() + "# a newer mg-env release changed this lock\n")
    assert mg_env.get(selftest, home=home).lock_status() == "drift"

    second = mg_env.ensure(selftest, home=home)
    assert second.path != first.path and second.lock_status() == "ok"
    # The build it replaced stays (a server started from it may still import from it) until the next one.
    third = mg_env.build(selftest, force=True, home=home)
    assert store.Store(home).build_dirs("selftest-1.0") == sorted([second.path, third.path])


def test_doctor_flags_drift(selftest, tmp_path):
    home = tmp_path / "home"
    env = mg_env.build(selftest, home=home)
    (selftest.lock_dir / env.record.lock).write_text("# changed\n")
    # A made-up profile is unknown to doctor's lookup, so the drift shows as no-lock; the shipped profiles'
    # drift is the same comparison (Env.lock_status), tested above.
    report = doctor.report(home)
    assert [e["lock_status"] for e in report["envs"]] == ["no-lock"]
    assert any("selftest-1.0" in p and "mg-env build selftest --version 1.0" in p for p in report["problems"])


_BUILDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import mg_env
    from mg_env.profiles import Profile
    profile = Profile(name="selftest", summary="", requirement="mg-env-selftest=={version}", versions=("1.0",),
                      default_version="1.0", lock_dir=Path(sys.argv[1]),
                      check=("{python}", "-c", "import time; time.sleep(4)"))
    env = mg_env.build(profile, home=sys.argv[2], on_progress=lambda m: print(m, flush=True))
    print("PATH", env.path, flush=True)
    """
)


def test_two_builds_at_once_build_once(selftest, tmp_path):
    home = tmp_path / "home"
    cmd = [sys.executable, "-c", _BUILDER, str(selftest.lock_dir), str(home)]
    # The check sleeps 4 s: whichever process takes the lock first is still building when the other asks.
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    built = [o for o in outs if "[1/4]" in o]
    waited = [o for o in outs if "waiting for another build of selftest-1.0" in o]
    assert len(built) == 1 and len(waited) == 1, outs
    assert "reusing it" in waited[0]
    paths = {line for o in outs for line in o.splitlines() if line.startswith("PATH ")}
    assert len(paths) == 1
    assert len(store.Store(home).build_dirs("selftest-1.0")) == 1


def test_record_is_json_with_the_lock_hash(selftest, tmp_path):
    env = mg_env.build(selftest, home=tmp_path / "home")
    record = json.loads((env.path / store.RECORD).read_text())
    from mg_env import locks

    assert record["lock_sha256"] == locks.sha256(selftest.lock_dir / record["lock"])
    assert record["profile"] == "selftest" and record["version"] == "1.0"
    assert os.path.islink(env.link) and env.link.resolve() == env.path
