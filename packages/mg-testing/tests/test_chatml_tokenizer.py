import random

import pytest
from transformers import AutoTokenizer

from mg_testing.corpus import CHINESE, chinese_characters
from mg_testing.tokenizers import build_chatml_tokenizer


@pytest.fixture(scope="module")
def tokenizer(chatml_tokenizer_dir):
    return AutoTokenizer.from_pretrained(chatml_tokenizer_dir)


ROUND_TRIP_TEXTS = [
    "您好，我想查询一下订单的物流状态。",
    "Hello, where is my order #20240315-8812? It's late.",
    "退款 refund 混合 mixed 文本 text, with  two spaces .",
    "Lines\nand\n\nblank lines\tand tabs ",
    # Not in the corpus: rare characters and emoji fall back to bytes and must still round-trip.
    "龘靐齉 😀 café naïve",
]


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_decode_of_encode_is_the_original_text(tokenizer, text):
    ids = tokenizer.encode(text)
    assert tokenizer.decode(ids) == text


def test_special_tokens_and_vocab_size(tokenizer):
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.bos_token is None
    assert set(tokenizer.all_special_tokens) == {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
    assert tokenizer.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"]) == [0, 1, 2]
    assert 1000 <= len(tokenizer) <= 2000
    # Plain encoding adds nothing: no bos, no eos.
    assert tokenizer.encode("hello") == tokenizer.convert_tokens_to_ids(tokenizer.tokenize("hello"))


def test_special_tokens_in_text_are_single_tokens(tokenizer):
    ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[-1] == tokenizer.eos_token_id


def test_chinese_characters_are_real_tokens(tokenizer):
    for sentence in CHINESE:
        pieces = [tokenizer.decode([token_id]) for token_id in tokenizer.encode(sentence)]
        # Every token is one or more whole characters, none a fragment of a character's UTF-8 bytes.
        assert "\ufffd" not in "".join(pieces), (sentence, pieces)
        assert "".join(pieces) == sentence
    # Words merge: fewer tokens than characters.
    assert len(tokenizer.encode("您好，我想查询订单的物流状态。")) < len("您好，我想查询订单的物流状态。")


def test_every_corpus_character_is_a_token_and_stays_whole_in_any_order(tokenizer):
    characters = chinese_characters()
    for char in characters:
        assert len(tokenizer.encode(char)) == 1, char
    shuffled = random.Random(0)
    for _ in range(200):
        text = "".join(shuffled.choices(characters, k=12))
        pieces = [tokenizer.decode([token_id]) for token_id in tokenizer.encode(text)]
        assert "".join(pieces) == text, pieces


CONVERSATION = [
    {"role": "system", "content": "You are a customer service assistant."},
    {"role": "user", "content": "我的包裹在哪里？"},
    {"role": "assistant", "content": "您的包裹已经发出，预计三天内送达。"},
    {"role": "user", "content": "Thanks! Can I change the address?"},
    {"role": "assistant", "content": "Yes, as long as it has not shipped."},
]


def test_chat_template_renders_chatml(tokenizer):
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou are a customer service assistant.<|im_end|>\n"
        "<|im_start|>user\n我的包裹在哪里？<|im_end|>\n"
        "<|im_start|>assistant\n您的包裹已经发出，预计三天内送达。<|im_end|>\n"
        "<|im_start|>user\nThanks! Can I change the address?<|im_end|>\n"
        "<|im_start|>assistant\nYes, as long as it has not shipped.<|im_end|>\n"
    )


def test_generation_prompt_opens_an_assistant_turn(tokenizer):
    text = tokenizer.apply_chat_template(CONVERSATION[:2], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\n我的包裹在哪里？<|im_end|>\n<|im_start|>assistant\n")
    # No default system prompt is injected.
    no_system = tokenizer.apply_chat_template(CONVERSATION[1:2], tokenize=False)
    assert no_system == "<|im_start|>user\n我的包裹在哪里？<|im_end|>\n"


def masked_runs(input_ids, mask):
    """The token ids of each maximal run of mask == 1, in order."""
    runs, current = [], []
    for token_id, flag in zip(input_ids, mask, strict=True):
        if flag:
            current.append(token_id)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def test_assistant_mask_covers_exactly_assistant_content_and_im_end(tokenizer):
    encoded = tokenizer.apply_chat_template(CONVERSATION, return_assistant_tokens_mask=True, return_dict=True)
    runs = masked_runs(encoded["input_ids"], encoded["assistant_masks"])
    assert [tokenizer.decode(run) for run in runs] == [
        "您的包裹已经发出，预计三天内送达。<|im_end|>",
        "Yes, as long as it has not shipped.<|im_end|>",
    ]
    # The unmasked rest is everything else: the template text around the two answers.
    unmasked = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if not m]
    assert tokenizer.decode(unmasked).count("<|im_start|>assistant\n") == 2


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_order_status",
            "description": "Look up the shipping status of an order.",
            "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        },
    }
]

TOOL_CONVERSATION = [
    {"role": "user", "content": "订单A1001到哪了？"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": "get_order_status", "arguments": {"order_id": "A1001"}}}
        ],
    },
    {"role": "tool", "content": '{"status": "已发货"}'},
    {"role": "assistant", "content": "您的订单已经发货了。"},
]


def test_tool_calls_and_results_render_like_qwen(tokenizer):
    text = tokenizer.apply_chat_template(TOOL_CONVERSATION, tools=TOOLS, tokenize=False)
    assert text.startswith("<|im_start|>system\n# Tools\n")
    assert '"name": "get_order_status"' in text.split("<|im_end|>")[0]
    assert (
        "<|im_start|>assistant\n<tool_call>\n"
        '{"name": "get_order_status", "arguments": {"order_id": "A1001"}}\n</tool_call><|im_end|>\n'
        '<|im_start|>user\n<tool_response>\n{"status": "已发货"}\n</tool_response><|im_end|>\n'
    ) in text


def test_assistant_mask_covers_tool_calls(tokenizer):
    encoded = tokenizer.apply_chat_template(
        TOOL_CONVERSATION, tools=TOOLS, return_assistant_tokens_mask=True, return_dict=True
    )
    runs = masked_runs(encoded["input_ids"], encoded["assistant_masks"])
    assert [tokenizer.decode(run) for run in runs] == [
        '<tool_call>\n{"name": "get_order_status", "arguments": {"order_id": "A1001"}}\n</tool_call><|im_end|>',
        "您的订单已经发货了。<|im_end|>",
    ]


def test_unknown_role_is_an_error(tokenizer):
    with pytest.raises(Exception, match="Unknown role"):
        tokenizer.apply_chat_template([{"role": "narrator", "content": "x"}], tokenize=False)


def test_build_is_reproducible(tmp_path):
    first = build_chatml_tokenizer(tmp_path / "first")
    second = build_chatml_tokenizer(tmp_path / "second")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
