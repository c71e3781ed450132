"""OpenAI/vLLM-compatible HTTP API with an embedded torch engine and a vLLM engine.

`create_app(model_dir)` (the ASGI app), `router(engine)` (to mount in your FastAPI app) and
`load_engine(model_dir)` (the Python API without HTTP) are imported on first use: `import mg_serve` stays
light (no torch, no FastAPI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mg_serve.app import create_app, router
    from mg_serve.engine import Engine, TorchEngine, load_engine

_LAZY = {
    "create_app": "mg_serve.app",
    "router": "mg_serve.app",
    "Engine": "mg_serve.engine",
    "TorchEngine": "mg_serve.engine",
    "load_engine": "mg_serve.engine",
}
__all__ = ["Engine", "TorchEngine", "__version__", "create_app", "load_engine", "router"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mg_serve' has no attribute {name!r}")
