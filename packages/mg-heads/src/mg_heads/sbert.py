"""Read and write the sentence-transformers folder layout (modules.json, 1_Pooling, 2_Normalize, ...).

Written with the classic `sentence_transformers.models.*` type names and `pooling_mode_*` booleans: every
reader we target understands them (sentence-transformers 2.x to 6.x, vLLM 0.8.5 and 0.33). vLLM 0.8.5
takes the FIRST key of 1_Pooling/config.json whose value is true as the pooling mode (0.33 the last one it
recognises), so exactly one key is true: the mode. `include_prompt` (true by default) is left out for that
reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRANSFORMER = "sentence_transformers.models.Transformer"
POOLING = "sentence_transformers.models.Pooling"
NORMALIZE = "sentence_transformers.models.Normalize"

# Our pooling name -> the sentence-transformers mode (1_Pooling key `pooling_mode_<...>`).
ST_MODE = {"cls": "cls_token", "mean": "mean_tokens", "last": "lasttoken"}
# The keys sentence-transformers writes, in its order; only ours are ever set.
ST_MODE_KEYS = [
    "pooling_mode_cls_token",
    "pooling_mode_mean_tokens",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
]
# The newer string form (`"pooling_mode": "mean"`, sentence-transformers >= 5) -> ours.
ST_MODE_NAMES = {"cls": "cls", "mean": "mean", "lasttoken": "last"}


@dataclass
class SbertLayout:
    """What a sentence-transformers folder says about its embedding model."""

    transformer_path: str
    pooling: str
    normalize: bool
    max_length: int | None


def is_sbert_folder(path: str | Path) -> bool:
    return (Path(path) / "modules.json").is_file()


def read_layout(path: str | Path) -> SbertLayout:
    """Parse modules.json + the pooling config; raise on modules we cannot reproduce (Dense, max pooling, ...)."""
    path = Path(path)
    modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
    transformer_path, pooling, normalize = None, None, False
    for module in modules:
        kind = module["type"].rsplit(".", 1)[-1]
        if kind == "Transformer":
            transformer_path = module["path"]
        elif kind == "Pooling":
            pooling = _read_pooling(path / module["path"] / "config.json")
        elif kind == "Normalize":
            normalize = True
        else:
            raise ValueError(f"{path}: sentence-transformers module {module['type']} is not supported")
    if transformer_path is None or pooling is None:
        raise ValueError(f"{path}/modules.json needs a Transformer and a Pooling module")
    max_length = None
    sbert_config = path / transformer_path / "sentence_bert_config.json"
    if sbert_config.is_file():
        max_length = json.loads(sbert_config.read_text(encoding="utf-8")).get("max_seq_length")
    return SbertLayout(transformer_path, pooling, normalize, max_length)


def _read_pooling(config_file: Path) -> str:
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if isinstance(config.get("pooling_mode"), str):
        modes = [config["pooling_mode"]]
    else:
        modes = [key.removeprefix("pooling_mode_") for key in ST_MODE_KEYS if config.get(key)]
    names = {st: ours for ours, st in ST_MODE.items()} | ST_MODE_NAMES
    if len(modes) != 1 or modes[0] not in names:
        raise ValueError(f"{config_file}: pooling {modes} is not one of cls, mean, lasttoken")
    return names[modes[0]]


def write_layout(
    out_dir: Path,
    *,
    hidden_size: int,
    pooling: str,
    normalize: bool,
    max_length: int | None,
    versions: dict[str, str],
    matryoshka_dims: list[int] | None = None,
) -> None:
    """Write modules.json, 1_Pooling/config.json, 2_Normalize/ (when normalized),
    sentence_bert_config.json and config_sentence_transformers.json into `out_dir`."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": TRANSFORMER},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": POOLING},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": NORMALIZE})
        # Normalize has no files; sentence-transformers still creates its folder.
        (out_dir / "2_Normalize").mkdir(exist_ok=True)
    _write_json(out_dir / "modules.json", modules)

    pooling_config = {"word_embedding_dimension": hidden_size}
    pooling_config |= {key: key == f"pooling_mode_{ST_MODE[pooling]}" for key in ST_MODE_KEYS}
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    _write_json(out_dir / "1_Pooling" / "config.json", pooling_config)

    _write_json(out_dir / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False})
    st_config: dict[str, Any] = {
        "model_type": "SentenceTransformer",
        "__version__": versions,
        "prompts": {},
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    if matryoshka_dims:
        st_config["matryoshka_dimensions"] = list(matryoshka_dims)
    _write_json(out_dir / "config_sentence_transformers.json", st_config)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
