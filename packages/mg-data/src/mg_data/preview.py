"""A conversation as the model sees it: the tokenizer's chat template applied, the trained-on spans
(assistant replies the loss is computed on) marked. Needs `mg-data[template]` (transformers, no torch)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mg_data.errors import DataError


@dataclass(frozen=True)
class Segment:
    text: str
    trained: bool


def load_tokenizer(path: str | os.PathLike):
    if not os.path.isdir(path):
        raise DataError(f"--tokenizer {path}: not a folder")
    # "PyTorch was not found" is expected here: preview needs a tokenizer, never a model.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise DataError("preview needs transformers: pip install 'mg-data[template]'") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError) as e:
        raise DataError(f"--tokenizer {path}: cannot load a tokenizer ({e})") from None
    if not tokenizer.chat_template:
        raise DataError(f"--tokenizer {path}: the tokenizer has no chat_template")
    return tokenizer


def segments(tokenizer, conv: dict) -> list[Segment]:
    """The rendered conversation cut into runs of trained and untrained text.

    A template with `{% generation %}` markers says itself which tokens are the assistant's. For one
    without, each assistant reply is found by rendering the conversation up to it with and without the
    reply: what the reply adds is trained on (the usual prefix rule).
    """
    messages, tools = conv["messages"], conv.get("tools")
    if "{% generation %}" in tokenizer.chat_template or "{%- generation %}" in tokenizer.chat_template:
        out = tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        ids, mask = out["input_ids"], out["assistant_masks"]
        runs: list[Segment] = []
        start = 0
        for i in range(1, len(ids) + 1):
            if i == len(ids) or mask[i] != mask[start]:
                runs.append(Segment(tokenizer.decode(ids[start:i]), bool(mask[start])))
                start = i
        return runs
    return _prefix_segments(tokenizer, messages, tools)


def _prefix_segments(tokenizer, messages: list[dict], tools) -> list[Segment]:
    def render(msgs, gen):
        return tokenizer.apply_chat_template(msgs, tools=tools, tokenize=False, add_generation_prompt=gen)

    result, done = [], ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render(messages[:i], True)
        after = render(messages[: i + 1], False)
        if not (before.startswith(done) and after.startswith(before)):
            raise DataError(
                "the chat template does not render conversations prefix by prefix; cannot mark spans"
            )
        result += [Segment(before[len(done) :], False), Segment(after[len(before) :], True)]
        done = after
    full = render(messages, False)
    result.append(Segment(full[len(done) :], False))
    return [s for s in result if s.text]
