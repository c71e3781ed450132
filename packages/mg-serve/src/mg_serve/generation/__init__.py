"""Generation in mg-serve: /v1/chat/completions and /v1/completions on the torch engine.

engine = load_generate_engine("runs/sft/export")      # the Python API: engine.chat(messages), .complete(...)
app.include_router(router)                            # serves app.state.engine
app.include_router(make_router(lambda request: my_engine))
"""

from mg_serve.generation.engine import (
    Choice,
    Delta,
    GenerateEngine,
    SamplingParams,
    load_generate_engine,
)
from mg_serve.generation.routes import app_engine, make_router, router

__all__ = [
    "Choice",
    "Delta",
    "GenerateEngine",
    "SamplingParams",
    "app_engine",
    "load_generate_engine",
    "make_router",
    "router",
]
