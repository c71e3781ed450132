"""Is there a CUDA GPU? Asked of nvidia-smi, not torch: mg-env must answer without torch installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

# "1" builds CUDA profiles on a machine without a GPU (a Docker build for GPU hosts); "0" builds CPU ones.
FORCE_ENV = "MG_ENV_CUDA"


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_mib: int


def cuda_gpus() -> list[Gpu]:
    """The NVIDIA GPUs the driver sees; empty when there is no driver or no GPU."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        out = subprocess.run(
            [smi, "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if out.returncode:
        return []
    gpus = []
    for line in out.stdout.splitlines():
        name, _, memory = line.rpartition(",")
        if name.strip():
            gpus.append(Gpu(name.strip(), int(memory.strip()) if memory.strip().isdigit() else 0))
    return gpus


def cuda_wanted() -> bool:
    """Whether CUDA profiles are the ones to build here: MG_ENV_CUDA if set, else whether a GPU is present."""
    forced = os.environ.get(FORCE_ENV, "").strip().lower()
    if forced in {"1", "true", "yes"}:
        return True
    if forced in {"0", "false", "no"}:
        return False
    return bool(cuda_gpus())
