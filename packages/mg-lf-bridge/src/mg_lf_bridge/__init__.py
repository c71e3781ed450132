"""LLaMA-Factory as a training backend: `mg-train CONFIG.yaml --backend llamafactory [--lf-version V]`.

    from mg_lf_bridge import train
    summary = train(mapping, source="sft.yaml", version="0.9.5")   # an mg-train config or a native LF YAML

runs `llamafactory-cli train` in the env mg-env builds for that release, with the data checked by mg-data
first, and leaves a run folder like a native mg-train run's (run log, exported model). See run.py.
"""

__version__ = "0.1.0"

from mg_lf_bridge.errors import BridgeError, Interrupted, LFFailed  # noqa: E402
from mg_lf_bridge.native import is_native  # noqa: E402
from mg_lf_bridge.run import train  # noqa: E402
from mg_lf_bridge.versions import DEFAULT_VERSION, VERSIONS  # noqa: E402

__all__ = [
    "DEFAULT_VERSION",
    "VERSIONS",
    "BridgeError",
    "Interrupted",
    "LFFailed",
    "__version__",
    "is_native",
    "train",
]
