"""Chat templates for the generative tasks: a named template for a tokenizer that has none, and which tokens
of a conversation are trained on.

Which characters of the rendered conversation are an assistant's is decided once per template, one of:
- "markers": the template has `{% generation %}` markers; they say it.
- "trl": TRL knows the template (Qwen2.5, Qwen3, Llama 3, Gemma, Phi-3, ...) and has a training version of
  it with markers (trl.chat_template_utils.get_training_chat_template): samples are rendered with that
  version. The tokenizer keeps its own template, the one the exported model is served with.
- "render": any other template (SmolLM2's, a customer's, our named ones): assistant turn i is what rendering
  messages[:i+1] adds to messages[:i] rendered with the generation prompt. That holds only for a template
  that renders each turn the same whatever follows it; where a conversation shows it does not, the error
  says so rather than training on wrong spans.
Every way ends in character spans of one rendered text, which the tokenizer's offsets turn into labels.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

from jinja2 import TemplateError  # a dependency of trl (and of transformers' chat templates)

from mg_train.errors import ConfigError

IGNORE_INDEX = -100
TRAIN_ON = ("assistant", "last_assistant", "all")
# Wraps trained text in the preview: brackets no template or tokenizer uses, readable in a terminal and in HTML.
TRAINED_OPEN, TRAINED_CLOSE = "⟦", "⟧"

_NAMES = ("chatml", "qwen", "qwen3", "llama3", "llama2", "mistral", "gemma", "phi")
TEMPLATES: dict[str, str] = {
    name: files("mg_train").joinpath("chat_templates", f"{name}.jinja").read_text(encoding="utf-8")
    for name in _NAMES
}
# The token each named template closes an assistant turn with; None: the tokenizer's eos token.
_END_OF_TURN = {
    "chatml": "<|im_end|>",
    "qwen": "<|im_end|>",
    "qwen3": "<|im_end|>",
    "llama3": "<|eot_id|>",
    "llama2": None,
    "mistral": None,
    "gemma": "<end_of_turn>",
    "phi": "<|end|>",
}


def ensure_chat_template(tokenizer, template: str | None) -> str | None:
    """Make sure tokenizer.chat_template is set; return a one-line note for the run log, or None.

    A tokenizer with its own template keeps it (a `template:` given too is noted, not used: LLaMA-Factory
    users set it everywhere). One without takes TEMPLATES[template]."""
    choices = ", ".join(TEMPLATES)
    if tokenizer.chat_template:
        if template:
            return (
                f"template: {template} not used: the tokenizer of {_who(tokenizer)} has its own chat template"
            )
        return None
    if not template:
        raise ConfigError(
            f"the tokenizer of {_who(tokenizer)} has no chat template: set `template:` to one of {choices}",
            key="template",
        )
    if template not in TEMPLATES:
        near = difflib.get_close_matches(template, TEMPLATES, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(f"template {template!r} is not one of {choices}{hint}", key="template")
    tokenizer.chat_template = TEMPLATES[template]
    return _end_of_turn_note(tokenizer, template)


def _end_of_turn_note(tokenizer, template: str) -> str | None:
    """A named template on a base tokenizer: say so when its end-of-turn marker is not one token, since the
    model then learns it as plain text and generation cannot stop on it."""
    marker = _END_OF_TURN[template] or tokenizer.eos_token
    if marker is None:
        return f"template {template} closes turns with the eos token, and this tokenizer has none"
    pieces = tokenizer.encode(marker, add_special_tokens=False)
    if len(pieces) == 1:
        return None
    return (
        f"template {template} closes turns with {marker}, which this tokenizer splits into {len(pieces)} "
        "tokens: add it as a special token so generation can stop on it"
    )


def tokenize_conversation(
    tokenizer, conversation: dict, *, train_on: str, max_length: int
) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one conversation ({"messages": [...], "tools": [...]?}, mg-data's internal form).

    labels are input_ids on the trained tokens and -100 elsewhere. train_on: "assistant" (every assistant
    turn), "last_assistant" (the final one), "all". An assistant turn trains on its content (reasoning and
    tool calls included) and the end-of-turn token(s) after it, never on the role header. Both are cut to
    max_length tokens on the right; labels may be all -100 (no assistant turn, or cut off)."""
    if train_on not in TRAIN_ON:
        raise ConfigError(f"train_on {train_on!r} is not one of {', '.join(TRAIN_ON)}", key="train_on")
    # As transformers' apply_chat_template does: a key set to None is absent (content=None beside tool_calls).
    messages = [{k: v for k, v in m.items() if v is not None} for m in conversation["messages"]]
    tools = conversation.get("tools") or None
    plan = _plan(tokenizer, tools)
    text, spans = _text_and_spans(tokenizer, plan, messages, tools, train_on)
    _check_tools_rendered(tokenizer, text, messages, tools)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoding["input_ids"])
    labels = _labels(ids, encoding["offset_mapping"], spans)
    return ids[:max_length], labels[:max_length]


def trained_text(tokenizer, input_ids: Sequence[int], labels: Sequence[int]) -> str:
    """The sample as the model sees it (special tokens included), each trained run wrapped in ⟦ ⟧."""
    return "".join(
        f"{TRAINED_OPEN}{text}{TRAINED_CLOSE}" if trained else text
        for text, trained in _runs(tokenizer, list(input_ids), list(labels))
    )


def _runs(tokenizer, ids: list[int], labels: list[int]) -> list[tuple[str, bool]]:
    """Decoded runs of consecutive trained / untrained tokens. A span boundary is a character boundary of
    the rendered text, so decoding run by run never cuts a character in two."""
    runs: list[tuple[str, bool]] = []
    start = 0
    for i in range(1, len(ids) + 1):
        if i == len(ids) or (labels[i] != IGNORE_INDEX) != (labels[start] != IGNORE_INDEX):
            runs.append(
                (tokenizer.decode(ids[start:i], skip_special_tokens=False), labels[start] != IGNORE_INDEX)
            )
            start = i
    return runs


# --- which template renders samples, and how its assistant spans are found ---------------------------------


@dataclass(frozen=True)
class _Plan:
    way: str  # "markers" | "trl" | "render"
    template: str  # the template samples are rendered with
    header: str  # the assistant header: what the generation prompt and an assistant turn both open with


# Per (template, special tokens): deciding renders probes and, for TRL, compares against its known templates.
_PLANS: dict[tuple[str, str], _Plan] = {}


def _plan(tokenizer, tools) -> _Plan:
    if not tokenizer.chat_template:
        raise ConfigError(f"the tokenizer of {_who(tokenizer)} has no chat template", key="template")
    own = tokenizer.get_chat_template(None, tools)
    key = (own, repr(sorted(tokenizer.special_tokens_map.items())))
    if key not in _PLANS:
        if _has_generation_markers(own):
            way, template = "markers", own
        else:
            training = _trl_training_template(tokenizer, own)
            way, template = ("trl", training) if training else ("render", own)
        _PLANS[key] = _Plan(way, template, _assistant_header(tokenizer, template))
    return _PLANS[key]


def _has_generation_markers(template: str) -> bool:
    # Comments dropped first: a template that only mentions {% generation %} in a comment has no markers,
    # and rendering it for them would find no span at all.
    code = re.sub(r"\{#.*?#\}", "", template, flags=re.DOTALL)
    return re.search(r"\{%-?\s*generation\s*-?%\}", code) is not None


def _trl_training_template(tokenizer, own: str) -> str | None:
    """TRL's training version of the tokenizer's template, or None when TRL does not know it."""
    from trl.chat_template_utils import get_training_chat_template  # slow to import: only when training

    default = tokenizer.chat_template
    if isinstance(default, dict):
        default = default.get("default")
    if own != default:  # a named variant (e.g. "tool_use"): TRL only knows default templates
        return None
    # ValueError: "patching is not supported for this template"; the others: a template its probes break
    try:
        return get_training_chat_template(tokenizer)
    except (ValueError, TypeError, TemplateError):
        return None


def _assistant_header(tokenizer, template: str) -> str:
    """What the generation prompt and a rendered assistant turn have in common at their start: the header
    the model is given at inference. DeepSeek-R1's prompt is "<｜Assistant｜><think>" and a newline, but its
    turns open with "<｜Assistant｜>" alone; "" for templates with no generation prompt (Llama 2's)."""
    probe = [{"role": "user", "content": "Hi"}]
    bare = _render(tokenizer, template, probe, None)[0]
    prompt = _render(tokenizer, template, probe, None, prompt=True)[0]
    turn = _render(tokenizer, template, [*probe, {"role": "assistant", "content": "Zq"}], None)[0]
    if not (prompt.startswith(bare) and turn.startswith(bare)):
        return ""
    return prompt[len(bare) : len(bare) + _common_prefix(prompt[len(bare) :], turn[len(bare) :])]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _text_and_spans(tokenizer, plan: _Plan, messages, tools, train_on: str):
    if train_on == "all":
        text = _render(tokenizer, plan.template, messages, tools)[0]
        return text, [(0, len(text))]
    if plan.way == "render":
        last_only = train_on == "last_assistant"
        return _spans_by_rendering(
            tokenizer, plan.template, plan.header, messages, tools, last_only=last_only
        )
    text, spans = _render(tokenizer, plan.template, messages, tools, spans=True)
    if not spans and _last_assistant(messages) is not None:
        raise ConfigError(
            f"the chat template of {_who(tokenizer)} has {{% generation %}} markers that mark no assistant "
            "reply of this conversation: fix the markers",
            key="template",
        )
    spans = [_after_header(text, start, end, plan.header) for start, end in spans]
    if train_on == "last_assistant":
        turn = _last_assistant(messages)
        if turn is None:
            return text, []
        # Without the generation prompt: it may say more than the turn shows (DeepSeek-R1's "<think>"), and
        # the header at the span's start was cut above.
        before = _render(tokenizer, plan.template, messages[:turn], tools)[0]
        if not text.startswith(before):
            raise _not_prefix(tokenizer, turn, later=False)
        spans = [(max(start, len(before)), end) for start, end in spans if end > len(before)]
    return text, spans


def _spans_by_rendering(tokenizer, template: str, header: str, messages, tools, *, last_only: bool):
    """Assistant turn i is what rendering messages[:i+1] adds to messages[:i], less the generation prompt
    (or, where the prompt says more than the turn shows, the header they share); provided each render is a
    prefix of the next and of the whole conversation's (checked on every conversation)."""
    full = _render(tokenizer, template, messages, tools)[0]
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if last_only:
        turns = turns[-1:]
    spans = []
    for i in turns:
        before = _render(tokenizer, template, messages[:i], tools)[0]
        prompt = _render(tokenizer, template, messages[:i], tools, prompt=True)[0]
        upto = _render(tokenizer, template, messages[: i + 1], tools)[0]
        if not full.startswith(upto):
            raise _not_prefix(tokenizer, i, later=True, last_only=last_only)
        if not (prompt.startswith(before) and upto.startswith(before)):
            raise _not_prefix(tokenizer, i, later=False)
        prompt, turn = prompt[len(before) :], upto[len(before) :]
        # DeepSeek-R1's prompt ends "<think>" and a newline, which a turn without reasoning does not show:
        # then only the header they share stays untrained (a reply may start like the rest of the prompt).
        cue = prompt if turn.startswith(prompt) else header
        if not turn.startswith(cue):
            raise _not_prefix(tokenizer, i, later=False)
        spans.append((len(before) + len(cue), len(upto)))
    return full, spans


def _not_prefix(tokenizer, turn: int, *, later: bool, last_only: bool = True) -> ConfigError:
    """The conversation does not render prefix by prefix around assistant turn messages[turn]."""
    if later:
        what = (
            f"renders assistant turn messages[{turn}] differently once later messages follow it (templates "
            "that drop the reasoning of earlier turns do this)"
        )
    else:
        what = (
            f"renders the messages before assistant turn messages[{turn}] differently once that turn follows"
        )
    if last_only:
        advice = "fix the chat template so that each turn renders the same whatever follows it"
    else:
        advice = (
            "use train_on: last_assistant (the final reply, rendered as at inference), or a chat template "
            "that renders each turn the same whatever follows it"
        )
    return ConfigError(
        f"the chat template of {_who(tokenizer)} {what}, so the tokens to train cannot be found: {advice}",
        key="train_on" if later and not last_only else "template",
    )


def _after_header(text: str, start: int, end: int, header: str) -> tuple[int, int]:
    """Move a span's start past the assistant header when the span holds part of it: some training
    templates open {% generation %} inside the header (TRL's Qwen2.5 one before its newline, DeepSeek-R1's
    before "<｜Assistant｜>"), and the header is the prompt at inference, never something the model learns
    to produce. Only a whole header counts, so a reply that starts like one is left alone."""
    if not header:
        return start, end
    at = text.rfind(header, max(0, start - len(header) + 1), start + len(header))
    if at == -1:
        return start, end
    return min(at + len(header), end), end


def _last_assistant(messages) -> int | None:
    turns = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    return turns[-1] if turns else None


def _render(tokenizer, template: str, messages, tools, *, prompt: bool = False, spans: bool = False):
    """(text, generation spans) of messages rendered as apply_chat_template renders them."""
    from transformers.utils.chat_template_utils import render_jinja_template

    try:
        texts, indices = render_jinja_template(  # type: ignore[str-unpack]  # returns (texts, spans)
            conversations=[messages],
            tools=tools,
            chat_template=template,
            add_generation_prompt=prompt,
            return_assistant_tokens_mask=spans,
            **tokenizer.special_tokens_map,
        )
    except (TemplateError, TypeError) as e:  # raise_exception() in the template, or a bad operand
        raise ConfigError(
            f"the chat template of {_who(tokenizer)} cannot render this conversation: {e}", key="template"
        ) from None
    return texts[0], [tuple(s) for s in indices[0]] if spans else []


def _check_tools_rendered(tokenizer, text: str, messages, tools) -> None:
    """A template that ignores tools, tool calls or tool results would train the model on a conversation
    it never sees that way (e.g. Llama 3's and SmolLM2's render no tool calls): refuse it."""
    dropped = [f"tool {_name(t)}" for t in tools or [] if _name(t) not in text]
    for i, m in enumerate(messages):
        dropped += [
            f"messages[{i}] tool call {_name(c)}" for c in m.get("tool_calls") or [] if _name(c) not in text
        ]
        if m["role"] == "tool" and not _shows(text, m.get("content", "").strip()):
            dropped.append(f"messages[{i}] tool result")
    if dropped:
        raise ConfigError(
            f"the chat template of {_who(tokenizer)} does not render {', '.join(dropped[:3])}: it has no "
            "tool format; use a model or template that renders tools (named templates: chatml, qwen, qwen3, "
            "llama3)",
            key="template",
        )


def _shows(text: str, content: str) -> bool:
    # Some templates (Mistral's) write a tool result as a JSON string: escaped quotes and newlines.
    return content in text or json.dumps(content, ensure_ascii=False)[1:-1] in text


def _name(tool_or_call: dict) -> str:
    return (tool_or_call.get("function") or tool_or_call).get("name", "")


def _labels(ids: list[int], offsets, spans) -> list[int]:
    """ids on every token overlapping a span, -100 elsewhere (spans and offsets are both in order).

    Overlap rather than containment, as transformers' assistant mask does: a token straddling a boundary
    carries part of the reply."""
    labels = [IGNORE_INDEX] * len(ids)
    spans = [s for s in spans if s[1] > s[0]]
    j = 0
    for t, (start, end) in enumerate(offsets):
        while j < len(spans) and start >= spans[j][1]:
            j += 1
        if j == len(spans):
            break
        if end > spans[j][0] and end > start:
            labels[t] = ids[t]
    return labels


def _who(tokenizer) -> str:
    return getattr(tokenizer, "name_or_path", "") or "this model"
