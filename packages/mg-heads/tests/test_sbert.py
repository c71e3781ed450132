import json

import pytest

from mg_heads.sbert import read_layout, write_layout


def write(path, name, data):
    path.joinpath(name).parent.mkdir(parents=True, exist_ok=True)
    path.joinpath(name).write_text(json.dumps(data))


def modules(*kinds):
    paths = {"Transformer": "", "Pooling": "1_Pooling", "Normalize": "2_Normalize", "Dense": "2_Dense"}
    return [
        {"idx": i, "name": str(i), "path": paths[k], "type": f"sentence_transformers.models.{k}"}
        for i, k in enumerate(kinds)
    ]


def test_reads_what_it_writes(tmp_path):
    write_layout(tmp_path, hidden_size=8, pooling="last", normalize=True, max_length=16, versions={})
    layout = read_layout(tmp_path)
    assert (layout.transformer_path, layout.pooling, layout.normalize, layout.max_length) == (
        "",
        "last",
        True,
        16,
    )
    assert (tmp_path / "2_Normalize").is_dir()


def test_reads_the_newer_string_pooling_mode(tmp_path):
    write(tmp_path, "modules.json", modules("Transformer", "Pooling"))
    write(tmp_path, "1_Pooling/config.json", {"embedding_dimension": 8, "pooling_mode": "cls"})
    layout = read_layout(tmp_path)
    assert (layout.pooling, layout.normalize, layout.max_length) == ("cls", False, None)


@pytest.mark.parametrize(
    ("kinds", "pooling", "match"),
    [
        (("Transformer", "Pooling", "Dense"), {"pooling_mode_mean_tokens": True}, "Dense is not supported"),
        (("Transformer", "Pooling"), {"pooling_mode_max_tokens": True}, "not one of"),
        (
            ("Transformer", "Pooling"),
            {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True},
            "not one",
        ),
        (("Transformer",), {}, "needs a Transformer and a Pooling"),
    ],
)
def test_refuses_what_it_cannot_reproduce(tmp_path, kinds, pooling, match):
    write(tmp_path, "modules.json", modules(*kinds))
    write(tmp_path, "1_Pooling/config.json", pooling)
    with pytest.raises(ValueError, match=match):
        read_layout(tmp_path)
