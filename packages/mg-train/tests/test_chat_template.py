"""mg_train.chat_template against the real text of real templates: TRL's copies of the Qwen2.5, Qwen3 and
Llama 3 templates (read from the installed trl package), SmolLM2's own, our ChatML test tokenizer's (with
{% generation %} markers), our named templates and two of a customer's own (tests/fixtures/templates).

Every check decodes the trained tokens and compares them with the text that should be trained: the
assistant's reply (reasoning and tool calls included) and the end-of-turn marker after it, never the header.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trl
from tokenizers import Tokenizer, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from mg_train.chat_template import (
    IGNORE_INDEX,
    TEMPLATES,
    _assistant_header,
    _labels,
    _plan,
    _spans_by_rendering,
    ensure_chat_template,
    tokenize_conversation,
    trained_text,
)
from mg_train.errors import ConfigError

TRL_TEMPLATES = Path(trl.__file__).parent / "chat_templates"
FIXTURES = Path(__file__).parent / "fixtures" / "templates"

LLAMA3_SPECIAL = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]

SINGLE = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]}
MULTI = {
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "Four."},
        {"role": "user", "content": "And 3 + 3?"},
        {"role": "assistant", "content": "Six."},
    ]
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "multiply",
            "description": "Multiply two numbers.",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
                "required": ["a", "b"],
            },
        },
    }
]
CALL = {"type": "function", "function": {"name": "multiply", "arguments": {"a": 2, "b": 3}}}
TOOL_CONV = {
    "messages": [
        {"role": "user", "content": "What is 2 * 3?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "name": "multiply", "content": "6"},
        {"role": "assistant", "content": "It is 6."},
    ],
    "tools": TOOLS,
}
CALL_TEXT = '<tool_call>\n{"name": "multiply", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
REASONING = {
    "messages": [
        {"role": "user", "content": "What is 2 * 3?"},
        {"role": "assistant", "content": "<think>\nmultiply them\n</think>\n\nSix."},
        {"role": "user", "content": "And 2 * 4?"},
        {"role": "assistant", "content": "<think>\nagain\n</think>\n\nEight."},
    ]
}


# --- tokenizers ------------------------------------------------------------------------------------------


def trl_template(name: str) -> str:
    return (TRL_TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


def fixture_template(name: str) -> str:
    return (FIXTURES / f"{name}.jinja").read_text(encoding="utf-8")


def chatml(chatml_tokenizer_dir, template: str | None = None):
    """The ChatML test tokenizer (<|im_start|>, <|im_end|> are tokens), with another template if given."""
    tokenizer = AutoTokenizer.from_pretrained(chatml_tokenizer_dir)
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


def llama3(chatml_tokenizer_dir, tmp_path):
    """A copy of the ChatML tokenizer with Llama 3's special tokens and template, and, as Llama 3's own, a
    post-processor that puts <|begin_of_text|> in front of every encoded text."""
    raw = Tokenizer.from_file(str(Path(chatml_tokenizer_dir) / "tokenizer.json"))
    raw.add_special_tokens(LLAMA3_SPECIAL)
    bos = ("<|begin_of_text|>", raw.token_to_id("<|begin_of_text|>"))
    raw.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="$A $B", special_tokens=[bos]),
        ]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|endoftext|>",
        chat_template=trl_template("llama3"),
        clean_up_tokenization_spaces=False,
    )
    tokenizer.save_pretrained(tmp_path / "llama3")
    return AutoTokenizer.from_pretrained(tmp_path / "llama3")


def trained(tokenizer, conversation, train_on="assistant", max_length=4096) -> list[str]:
    """The trained runs of a conversation, decoded."""
    ids, labels = tokenize_conversation(tokenizer, conversation, train_on=train_on, max_length=max_length)
    assert len(ids) == len(labels)
    assert all(label in (IGNORE_INDEX, i) for i, label in zip(ids, labels, strict=True))
    return runs(tokenizer, ids, labels)


def runs(tokenizer, ids, labels) -> list[str]:
    out, current = [], []
    for i, label in zip(ids, labels, strict=True):
        if label != IGNORE_INDEX:
            current.append(i)
        elif current:
            out.append(tokenizer.decode(current, skip_special_tokens=False))
            current = []
    if current:
        out.append(tokenizer.decode(current, skip_special_tokens=False))
    return out


def own(tokenizer) -> tuple[str, str]:
    """The tokenizer's own template and its assistant header: the render path forced on any template."""
    return tokenizer.chat_template, _assistant_header(tokenizer, tokenizer.chat_template)


def render(tokenizer, conversation, **kwargs) -> str:
    return tokenizer.apply_chat_template(
        conversation["messages"], tools=conversation.get("tools"), tokenize=False, **kwargs
    )


# --- which way each template takes, and what a single turn trains -----------------------------------------


@pytest.mark.parametrize(
    ("template", "way", "expected"),
    [
        ("trl:qwen2_5", "trl", ["Hello there.<|im_end|>\n"]),
        ("trl:qwen3", "trl", ["<think>\n\n</think>\n\nHello there.<|im_end|>\n"]),
        # TRL's DeepSeek-R1 training template opens {% generation %} before "<｜Assistant｜>": header left out
        ("trl:deepseek_r1_distill", "trl", ["Hello there.<｜end▁of▁sentence｜>"]),
        ("trl:gemma", "trl", ["Hello there.<end_of_turn>\n"]),
        ("own", "markers", ["Hello there.<|im_end|>"]),
        ("named:chatml", "render", ["Hello there.<|im_end|>\n"]),
        ("fixture:human_bot", "render", [" Hello there.<|im_end|>\n"]),
    ],
)
def test_single_turn_trains_reply_and_end_of_turn(chatml_tokenizer_dir, template, way, expected):
    kind, _, name = template.partition(":")
    text = {"trl": trl_template, "named": TEMPLATES.get, "fixture": fixture_template}.get(kind)
    tokenizer = chatml(chatml_tokenizer_dir, text(name) if text else None)
    assert _plan(tokenizer, None).way == way
    assert trained(tokenizer, SINGLE) == expected


def test_generation_markers_only_in_a_comment_are_not_markers(chatml_tokenizer_dir):
    # human_bot.jinja's comment mentions {% generation %}: taken for markers, no span would ever be found
    assert "{% generation %}" in fixture_template("human_bot")
    tokenizer = chatml(chatml_tokenizer_dir, fixture_template("human_bot"))
    assert _plan(tokenizer, None).way == "render"


def test_markers_that_mark_no_reply_are_a_config_error(chatml_tokenizer_dir):
    template = (
        "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content + '<|im_end|>\\n' }}"
        "{% if m.role == 'nobody' %}{% generation %}{% endgeneration %}{% endif %}{% endfor %}"
    )
    tokenizer = chatml(chatml_tokenizer_dir, template)
    assert _plan(tokenizer, None).way == "markers"
    with pytest.raises(ConfigError, match="markers that mark no assistant reply") as e:
        tokenize_conversation(tokenizer, SINGLE, train_on="assistant", max_length=64)
    assert e.value.key == "template"


def test_smollm2_real_template_takes_the_render_path(smollm2_dir):
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    assert _plan(tokenizer, None).way == "render"
    assert trained(tokenizer, SINGLE) == ["Hello there.<|im_end|>\n"]
    assert trained(tokenizer, MULTI) == ["Four.<|im_end|>\n", "Six.<|im_end|>\n"]
    assert trained(tokenizer, MULTI, "last_assistant") == ["Six.<|im_end|>\n"]
    # SmolLM2's template adds its default system prompt when the conversation has none: context, not trained
    ids, labels = tokenize_conversation(tokenizer, SINGLE, train_on="assistant", max_length=4096)
    assert tokenizer.decode(ids).startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")


def test_llama3_takes_trl_path_and_has_one_bos(chatml_tokenizer_dir, tmp_path):
    tokenizer = llama3(chatml_tokenizer_dir, tmp_path)
    bos = tokenizer.convert_tokens_to_ids("<|begin_of_text|>")
    assert (
        tokenizer("Hi")["input_ids"][0] == bos
    )  # the tokenizer adds BOS on its own: a double BOS could happen
    assert _plan(tokenizer, None).way == "trl"
    ids, labels = tokenize_conversation(tokenizer, MULTI, train_on="assistant", max_length=4096)
    assert ids.count(bos) == 1 and ids[0] == bos
    assert runs(tokenizer, ids, labels) == ["Four.<|eot_id|>", "Six.<|eot_id|>"]
    assert tokenizer.decode(ids) == render(tokenizer, MULTI)


# --- multi-turn, system prompts, train_on ------------------------------------------------------------------


@pytest.mark.parametrize("template", ["trl:qwen2_5", "named:chatml", "named:qwen", "fixture:human_bot"])
def test_multi_turn_with_system_prompt(chatml_tokenizer_dir, template):
    kind, _, name = template.partition(":")
    tokenizer = chatml(chatml_tokenizer_dir, trl_template(name) if kind == "trl" else None)
    if kind == "named":
        tokenizer.chat_template = TEMPLATES[name]
    if kind == "fixture":
        tokenizer.chat_template = fixture_template(name)
    lead = " " if kind == "fixture" else ""
    end = "<|im_end|>\n"
    assert trained(tokenizer, MULTI) == [f"{lead}Four.{end}", f"{lead}Six.{end}"]
    assert trained(tokenizer, MULTI, "last_assistant") == [f"{lead}Six.{end}"]
    ids, labels = tokenize_conversation(tokenizer, MULTI, train_on="all", max_length=4096)
    assert labels == ids
    text = tokenizer.decode(ids)
    assert text == render(tokenizer, MULTI)
    assert "You are terse." in text  # the system prompt is in the input, untrained
    assert not any("terse" in run for run in trained(tokenizer, MULTI))


def test_named_qwen_template_adds_qwens_default_system_prompt(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir, TEMPLATES["qwen"])
    assert render(tokenizer, SINGLE).startswith(
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    )


def test_last_assistant_with_no_assistant_turn_trains_nothing(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir, trl_template("qwen2_5"))
    conversation = {"messages": [{"role": "user", "content": "Hi"}]}
    _, labels = tokenize_conversation(tokenizer, conversation, train_on="last_assistant", max_length=64)
    assert set(labels) == {IGNORE_INDEX}


def test_unknown_train_on_is_a_config_error(chatml_tokenizer_dir):
    with pytest.raises(ConfigError, match="train_on 'everything' is not one of") as e:
        tokenize_conversation(chatml(chatml_tokenizer_dir), SINGLE, train_on="everything", max_length=64)
    assert e.value.key == "train_on"


# --- tool calls ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "think"),
    [
        ("trl:qwen2_5", ""),
        ("trl:qwen3", "<think>\n\n</think>\n\n"),
        ("named:chatml", ""),
        ("named:qwen", ""),
        ("named:qwen3", "<think>\n\n</think>\n\n"),
        ("own", ""),
    ],
)
def test_tool_calls_train_the_call_and_final_reply_not_the_result(chatml_tokenizer_dir, template, think):
    kind, _, name = template.partition(":")
    tokenizer = chatml(chatml_tokenizer_dir)
    if kind == "trl":
        tokenizer.chat_template = trl_template(name)
    elif kind == "named":
        tokenizer.chat_template = TEMPLATES[name]
    # Our ChatML test tokenizer's markers close the span on <|im_end|>, TRL's and the render path after "\n"
    end = "<|im_end|>" if kind == "own" else "<|im_end|>\n"
    assert trained(tokenizer, TOOL_CONV) == [f"{think}{CALL_TEXT}{end}", f"{think}It is 6.{end}"]
    ids, _ = tokenize_conversation(tokenizer, TOOL_CONV, train_on="assistant", max_length=4096)
    text = tokenizer.decode(ids)
    assert '"name": "multiply"' in text.split("<|im_start|>user")[0]  # the tools list, in the system turn
    assert "<tool_response>\n6\n</tool_response>" in text
    assert trained(tokenizer, TOOL_CONV, "last_assistant") == [f"{think}It is 6.{end}"]


def test_templates_without_tool_format_refuse_tool_conversations(chatml_tokenizer_dir, tmp_path, smollm2_dir):
    # Llama 3's and SmolLM2's templates render no tool calls nor tools: training on them would teach replies
    # to results of calls the model never sees.
    for tokenizer in (llama3(chatml_tokenizer_dir, tmp_path), AutoTokenizer.from_pretrained(smollm2_dir)):
        with pytest.raises(
            ConfigError, match="does not render tool multiply, messages\\[1\\] tool call"
        ) as e:
            tokenize_conversation(tokenizer, TOOL_CONV, train_on="assistant", max_length=4096)
        assert e.value.key == "template"
    for name in ("llama2", "mistral", "gemma", "phi"):
        tokenizer = chatml(chatml_tokenizer_dir, TEMPLATES[name])
        with pytest.raises(ConfigError, match=f"the {name} template has no tool format"):
            tokenize_conversation(tokenizer, TOOL_CONV, train_on="assistant", max_length=4096)


# --- Qwen3 reasoning ------------------------------------------------------------------------------------------


def test_qwen3_trains_the_reasoning_of_every_turn_as_its_training_template_shows_it(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir, trl_template("qwen3"))
    # Qwen3's own template keeps only the final turn's reasoning (what the model sees at inference) ...
    inference = render(tokenizer, REASONING)
    assert "multiply them" not in inference and "<think>\nagain\n</think>" in inference
    # ... so it is not prefix-preserving, and TRL's training version renders every turn's reasoning: the
    # model is trained on exactly what it is shown, earlier reasoning included.
    ids, labels = tokenize_conversation(tokenizer, REASONING, train_on="assistant", max_length=4096)
    shown = tokenizer.decode(ids)
    assert shown == render(tokenizer, REASONING, chat_template=trl_template("qwen3_training"))
    assert runs(tokenizer, ids, labels) == [
        "<think>\nmultiply them\n</think>\n\nSix.<|im_end|>\n",
        "<think>\nagain\n</think>\n\nEight.<|im_end|>\n",
    ]
    assert trained(tokenizer, REASONING, "last_assistant") == [
        "<think>\nagain\n</think>\n\nEight.<|im_end|>\n"
    ]


def test_qwen3_own_template_by_rendering_trains_the_final_turn_only(chatml_tokenizer_dir):
    """The render path on Qwen3's own template: every turn cannot be found (earlier reasoning is dropped
    once a user message follows), the final one can, as at inference."""
    tokenizer = chatml(chatml_tokenizer_dir, trl_template("qwen3"))
    with pytest.raises(ConfigError, match="train_on: last_assistant") as e:
        _spans_by_rendering(tokenizer, *own(tokenizer), REASONING["messages"], None, last_only=False)
    assert e.value.key == "train_on"
    text, spans = _spans_by_rendering(tokenizer, *own(tokenizer), REASONING["messages"], None, last_only=True)
    assert text == render(tokenizer, REASONING)
    assert [text[s:e] for s, e in spans] == ["<think>\nagain\n</think>\n\nEight.<|im_end|>\n"]


def test_not_prefix_preserving_template_is_refused_for_every_turn(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir, fixture_template("drops_earlier_reasoning"))
    assert _plan(tokenizer, None).way == "render"
    with pytest.raises(
        ConfigError, match=r"renders assistant turn messages\[1\] differently once later"
    ) as e:
        tokenize_conversation(tokenizer, REASONING, train_on="assistant", max_length=4096)
    assert e.value.key == "train_on" and "\n" not in str(e.value)
    assert trained(tokenizer, REASONING, "last_assistant") == [
        "<think>\nagain\n</think>\n\nEight.<|im_end|>\n"
    ]


def test_template_that_rewrites_earlier_messages_for_a_reply_is_refused(chatml_tokenizer_dir):
    # upper-cases a user message once something follows it: the render before the reply is no prefix
    template = (
        "{% for m in messages %}{% if m.role == 'user' %}"
        "{{ '<|im_start|>user\\n' + (m.content if loop.last else m.content | upper) + '<|im_end|>\\n' }}"
        "{% else %}{{ '<|im_start|>assistant\\n' + m.content + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    tokenizer = chatml(chatml_tokenizer_dir, template)
    for train_on in ("assistant", "last_assistant"):
        with pytest.raises(
            ConfigError, match=r"renders the messages before assistant turn messages\[1\]"
        ) as e:
            tokenize_conversation(tokenizer, SINGLE, train_on=train_on, max_length=64)
        assert e.value.key == "template"


def test_named_qwen3_template_keeps_reasoning_in_every_turn(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir, TEMPLATES["qwen3"])
    with_field = {
        "messages": [
            {"role": "user", "content": "What is 2 * 3?"},
            {"role": "assistant", "content": "Six.", "reasoning_content": "multiply them"},
            {"role": "user", "content": "And 2 * 4?"},
            {"role": "assistant", "content": "<think>\nagain\n</think>\n\nEight."},
        ]
    }
    assert trained(tokenizer, with_field) == [
        "<think>\nmultiply them\n</think>\n\nSix.<|im_end|>\n",
        "<think>\nagain\n</think>\n\nEight.<|im_end|>\n",
    ]


# --- both ways agree where both apply ----------------------------------------------------------------------


def labels_by_rendering(tokenizer, conversation) -> tuple[list[int], list[int]]:
    messages, tools = conversation["messages"], conversation.get("tools")
    text, spans = _spans_by_rendering(tokenizer, *own(tokenizer), messages, tools, last_only=False)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return encoding["input_ids"], _labels(encoding["input_ids"], encoding["offset_mapping"], spans)


@pytest.mark.parametrize(
    ("template", "conversation"),
    [
        ("qwen2_5", SINGLE),
        ("qwen2_5", MULTI),
        ("qwen2_5", TOOL_CONV),
        # the generation prompt says "<｜Assistant｜><think>" and a newline, a turn opens with the header alone
        ("deepseek_r1_distill", MULTI),
    ],
    ids=["qwen2_5-single", "qwen2_5-multi", "qwen2_5-tools", "deepseek_r1-multi"],
)
def test_trl_and_render_paths_agree(chatml_tokenizer_dir, template, conversation):
    tokenizer = chatml(chatml_tokenizer_dir, trl_template(template))
    assert _plan(tokenizer, conversation.get("tools")).way == "trl"
    by_trl = tokenize_conversation(tokenizer, conversation, train_on="assistant", max_length=4096)
    assert by_trl == labels_by_rendering(tokenizer, conversation)
    last = runs(
        tokenizer, *tokenize_conversation(tokenizer, conversation, train_on="last_assistant", max_length=4096)
    )
    assert last == runs(tokenizer, *by_trl)[-1:]
    assert any(label != IGNORE_INDEX for label in by_trl[1])


def test_trl_and_render_paths_agree_on_llama3(chatml_tokenizer_dir, tmp_path):
    tokenizer = llama3(chatml_tokenizer_dir, tmp_path)
    by_trl = tokenize_conversation(tokenizer, MULTI, train_on="assistant", max_length=4096)
    assert by_trl == labels_by_rendering(tokenizer, MULTI)


# --- Chinese, truncation, preview ------------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["trl:qwen2_5", "named:chatml"])
def test_chinese_reply_is_trained_whole(chatml_tokenizer_dir, template, smollm2_dir):
    kind, _, name = template.partition(":")
    tokenizer = chatml(chatml_tokenizer_dir, trl_template(name) if kind == "trl" else TEMPLATES[name])
    conversation = {
        "messages": [
            {"role": "system", "content": "你是一个乐于助人的助手。"},
            {"role": "user", "content": "今天天气怎么样？"},
            {"role": "assistant", "content": "今天天气很好，适合出去散步。"},
        ]
    }
    assert trained(tokenizer, conversation) == ["今天天气很好，适合出去散步。<|im_end|>\n"]
    smollm2 = AutoTokenizer.from_pretrained(smollm2_dir)  # byte-level: Chinese characters span several tokens
    assert trained(smollm2, conversation) == ["今天天气很好，适合出去散步。<|im_end|>\n"]


def test_truncation_cuts_the_right_side(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir, trl_template("qwen2_5"))
    full_ids, full_labels = tokenize_conversation(tokenizer, MULTI, train_on="assistant", max_length=4096)
    ids, labels = tokenize_conversation(tokenizer, MULTI, train_on="assistant", max_length=len(full_ids) - 3)
    assert (ids, labels) == (full_ids[:-3], full_labels[:-3])
    assert len(ids) == len(full_ids) - 3


def test_trained_text_marks_trained_spans(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir, trl_template("qwen2_5"))
    ids, labels = tokenize_conversation(tokenizer, SINGLE, train_on="assistant", max_length=4096)
    assert trained_text(tokenizer, ids, labels) == (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n⟦Hello there.<|im_end|>\n⟧"
    )


# --- named templates ------------------------------------------------------------------------------------------


# What each named template trains for the reply "{}", eos being <|im_end|> in the ChatML test tokenizer.
NAMED_REPLY = {
    "chatml": "{}<|im_end|>\n",
    "qwen": "{}<|im_end|>\n",
    "qwen3": "<think>\n\n</think>\n\n{}<|im_end|>\n",
    "llama3": "{}<|eot_id|>",
    "llama2": " {} <|im_end|>",  # Llama 2's "[/INST] {answer} </s>"
    "mistral": " {}<|im_end|>",
    "gemma": "{}<end_of_turn>\n",
    "phi": "{}<|end|>\n",
}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_named_template_is_prefix_preserving_and_trains_reply_and_end(chatml_tokenizer_dir, name):
    tokenizer = chatml(chatml_tokenizer_dir, TEMPLATES[name])
    assert _plan(tokenizer, None).way == "render"
    reply = NAMED_REPLY[name]
    assert trained(tokenizer, MULTI) == [reply.format("Four."), reply.format("Six.")]
    assert trained(tokenizer, MULTI, "last_assistant") == [reply.format("Six.")]
    ids, _ = tokenize_conversation(tokenizer, MULTI, train_on="all", max_length=4096)
    assert "You are terse." in tokenizer.decode(ids)  # every named template keeps the system prompt


# --- ensure_chat_template ------------------------------------------------------------------------------------


def test_own_template_is_kept_and_a_given_template_noted(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir)
    own = tokenizer.chat_template
    note = ensure_chat_template(tokenizer, "qwen")
    assert tokenizer.chat_template == own
    assert "template: qwen not used" in note and "own chat template" in note and "\n" not in note
    assert ensure_chat_template(tokenizer, None) is None


def test_named_template_is_set_on_a_tokenizer_without_one(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir)
    tokenizer.chat_template = None
    assert ensure_chat_template(tokenizer, "chatml") is None  # <|im_end|> is one token here
    assert tokenizer.chat_template == TEMPLATES["chatml"]
    assert trained(tokenizer, SINGLE) == ["Hello there.<|im_end|>\n"]


def test_named_template_whose_end_marker_is_not_a_token_is_noted(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir)
    tokenizer.chat_template = None
    note = ensure_chat_template(tokenizer, "llama3")
    assert tokenizer.chat_template == TEMPLATES["llama3"]
    assert "<|eot_id|>" in note and "special token" in note


def test_unknown_template_name_is_a_config_error(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir)
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="template 'qwen2' is not one of chatml, qwen, qwen3") as e:
        ensure_chat_template(tokenizer, "qwen2")
    assert e.value.key == "template" and "did you mean qwen" in str(e.value)


def test_no_template_anywhere_is_a_config_error(chatml_tokenizer_dir):
    tokenizer = chatml(chatml_tokenizer_dir)
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="has no chat template: set `template:` to one of chatml") as e:
        ensure_chat_template(tokenizer, None)
    assert e.value.key == "template"


def test_templates_table_is_small_and_shipped_as_package_data():
    assert set(TEMPLATES) == {"chatml", "qwen", "qwen3", "llama3", "llama2", "mistral", "gemma", "phi"}
    # loaded from mg_train/chat_templates/*.jinja; a wheel built from the package folder carries them
    assert all(text.startswith("{#- mg-train's") for text in TEMPLATES.values())
