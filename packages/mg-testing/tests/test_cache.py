import json
import subprocess
import sys
import textwrap

import pytest

from mg_testing.cache import BUILD_MARKER, CACHE_ENV, cache_root, cached_build


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


def test_cache_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "mg-testing"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "mg-testing"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "explicit"))
    assert cache_root() == tmp_path / "explicit"


def test_builds_once_then_reuses(cache):
    calls = []

    def build(folder):
        calls.append(folder)
        (folder / "weights.txt").write_text("built")

    first = cached_build("demo-v1", build)
    second = cached_build("demo-v1", build)
    assert first == second == cache / "demo-v1"
    assert len(calls) == 1
    assert calls[0] != first, "the builder writes into a temp dir, renamed into place when done"
    assert (first / "weights.txt").read_text() == "built"
    assert json.loads((first / BUILD_MARKER).read_text())["key"] == "demo-v1"
    assert not list(cache.glob(".demo-v1.tmp-*"))


def test_failed_build_leaves_nothing_and_is_retried(cache):
    def broken(folder):
        (folder / "half.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cached_build("demo-v1", broken)
    assert not (cache / "demo-v1").exists()
    assert not list(cache.glob(".demo-v1.tmp-*"))

    folder = cached_build("demo-v1", lambda folder: (folder / "ok.txt").write_text("ok"))
    assert (folder / "ok.txt").is_file()
    assert not (folder / "half.txt").exists()


def test_leftovers_of_a_killed_build_are_removed(cache):
    cache.mkdir()
    (cache / ".demo-v1.tmp-killed").mkdir()
    (cache / ".demo-v1.tmp-killed" / "partial.bin").write_bytes(b"\0")
    cached_build("demo-v1", lambda folder: None)
    assert not (cache / ".demo-v1.tmp-killed").exists()


def test_concurrent_processes_build_once(cache, tmp_path):
    log = tmp_path / "builds.log"
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from mg_testing.cache import cached_build

        def build(folder):
            with open({str(log)!r}, "a") as handle:
                handle.write("built\\n")
            time.sleep(1.0)  # long enough that the other process arrives mid-build
            (folder / "weights.txt").write_text("done")

        folder = cached_build("shared-v1", build)
        print(folder, (folder / "weights.txt").read_text())
        """
    )
    env = {**__import__("os").environ, CACHE_ENV: str(cache)}
    workers = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    outputs = [worker.communicate(timeout=60)[0].strip() for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    assert outputs == [f"{cache / 'shared-v1'} done"] * 3
    assert log.read_text() == "built\n"
