"""Preview with a real tokenizer (trained locally by mg-testing) and its ChatML template."""

import shutil

from conftest import mg_data, write_jsonl

from mg_data.formats import alpaca
from mg_data.preview import load_tokenizer, segments

CONV = alpaca.to_conversation(
    {
        "system": "你是客服。",
        "history": [["你好", "您好！"]],
        "prompt": "我要退货",
        "response": "好的，请提供订单号。",
    }
)


def test_generation_markers_mark_exactly_the_replies(chatml_tokenizer_dir):
    tok = load_tokenizer(chatml_tokenizer_dir)
    segs = segments(tok, CONV)
    assert "".join(s.text for s in segs) == tok.apply_chat_template(CONV["messages"], tokenize=False)
    assert [s.text for s in segs if s.trained] == ["您好！<|im_end|>", "好的，请提供订单号。<|im_end|>"]


def test_template_without_markers_falls_back_to_prefix_rendering(chatml_tokenizer_dir, tmp_path):
    folder = tmp_path / "tok"
    shutil.copytree(chatml_tokenizer_dir, folder)
    tok = load_tokenizer(folder)
    with_markers = segments(tok, CONV)
    for marker in ("{% generation %}", "{% endgeneration %}", "{%- generation %}", "{%- endgeneration %}"):
        tok.chat_template = tok.chat_template.replace(marker, "")
    plain = segments(tok, CONV)
    assert "".join(s.text for s in plain) == "".join(s.text for s in with_markers)
    # Without markers the template decides what follows the reply; the reply text itself is trained either way.
    trained = [s.text for s in plain if s.trained]
    assert [t.split("<|im_end|>")[0] for t in trained] == ["您好！", "好的，请提供订单号。"]


def test_preview_command_marks_trained_spans(chatml_tokenizer_dir, tmp_path, samples):
    src = write_jsonl(tmp_path / "d.jsonl", samples["alpaca"][:2])
    r = mg_data("preview", src, "--tokenizer", chatml_tokenizer_dir, "-n", "1")
    assert r.returncode == 0, r.stderr
    assert "<|im_start|>user\n好闷啊，打开车窗<|im_end|>" in r.stdout
    assert "⟦好的，已为您打开车窗。<|im_end|>⟧" in r.stdout
    assert "把下面的句子" not in r.stdout  # -n 1


def test_preview_bad_tokenizer_is_one_line(tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "response": "a"}])
    r = mg_data("preview", src, "--tokenizer", tmp_path / "nope")
    assert r.returncode == 2 and r.stderr.strip() == f"error: --tokenizer {tmp_path / 'nope'}: not a folder"
