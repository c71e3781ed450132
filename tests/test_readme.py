"""The README's commands are the product's front door: run the main job exactly as written there."""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    block = re.search(r"## Two commands.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_test_command():
    main_job, test_command = readme_commands()
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def test_main_job_runs_as_written():
    main_job, _ = readme_commands()
    out = ROOT / "out" / "sft.messages.jsonl"
    out.unlink(missing_ok=True)
    proc = subprocess.run(main_job, shell=True, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4
    assert rows[0]["messages"][0] == {"role": "system", "content": "你是车载语音助手。"}
    assert "4 rows, 4 valid, 0 invalid" in proc.stderr


SETUP = ROOT / "scripts" / "setup-test-machine"


def test_readme_test_command_sets_the_machine_up_before_the_tests():
    _, test_command = readme_commands()
    steps = [step.strip() for step in test_command.split("&&")]
    assert steps == ["pip install uv", "bash scripts/setup-test-machine", "uv run nox"]


def _setup(path_dir: Path, chromium: Path) -> subprocess.CompletedProcess:
    # Only path_dir on PATH: what the script finds there (fc-list, apt-get, sudo) is all it can use.
    return subprocess.run(
        ["/bin/bash", str(SETUP)],
        env={"PATH": str(path_dir), "MG_CHROMIUM": str(chromium)},
        capture_output=True,
        text=True,
    )


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_setup_does_nothing_when_chromium_and_a_cjk_font_are_there(tmp_path):
    chromium = _executable(tmp_path / "chromium", "#!/bin/sh\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # fc-list as fontconfig answers `fc-list :lang=zh family` with a CJK font installed; no apt-get on PATH,
    # so any attempt to install would fail the script.
    _executable(bin_dir / "fc-list", "#!/bin/sh\necho 'WenQuanYi Micro Hei'\n")
    done = _setup(bin_dir, chromium)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_setup_without_apt_get_names_what_to_install(tmp_path):
    (tmp_path / "bin").mkdir()
    done = _setup(tmp_path / "bin", tmp_path / "no-chromium")
    assert done.returncode == 1
    assert done.stderr == (
        "setup-test-machine: the tests need chromium fonts-wqy-microhei fontconfig (Debian package names) "
        "and there is no apt-get here; install them, then run the tests\n"
    )


def test_readme_names_only_sessions_that_exist_and_keeps_maintainer_sessions_out_of_the_default_run():
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "-f", str(ROOT / "noxfile.py")], capture_output=True, text=True
    ).stdout
    sessions = {
        line[2:].split(" -> ")[0]: line[0] for line in listed.splitlines() if line[:2] in {"* ", "- "}
    }
    named = set(re.findall(r"uv run nox -s ([\w-]+)", (ROOT / "README.md").read_text()))
    assert named >= {"quick", "locks", "bench", "tests-mg-data"}
    assert named <= set(sessions)
    assert {name: sessions[name] for name in ("quick", "locks", "bench", "typecheck")} == {
        "quick": "-",
        "locks": "-",
        "bench": "-",
        "typecheck": "*",
    }


def test_readme_names_the_folders_the_tests_write_outside_the_checkout(monkeypatch, tmp_path):
    from mg_env.store import default_home
    from mg_testing.cache import cache_root

    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "MG_ENV_HOME", "MG_TESTING_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    readme = (ROOT / "README.md").read_text()
    for folder in (default_home(), cache_root()):
        assert f"`~/{folder.relative_to(tmp_path)}`" in readme
