"""The README's commands are the product's front door: run the main job exactly as written there."""

import json
import re
import subprocess
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
