"""Export of generative models: a plain *ForCausalLM folder (LoRA merged) and, for LoRA, the PEFT adapter
beside it. Each is loaded back with the real loaders (transformers, peft, vLLM) and must reproduce the
in-memory model."""

import json
import shlex

import pytest
import torch
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from mg_heads.classification import load_sequence_classifier
from mg_heads.export import NEWEST_VLLM, adapter_serve_commands, export
from mg_heads.lora import apply_lora, is_lora

TEXTS = ["the cat sat on the mat", "机器学习很有趣", "hello there, how are you today?"]
# A template of our own, as mg-train sets one on a tokenizer that has none (`template: ...`).
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def batch_of(tokenizer, texts=TEXTS):
    return tokenizer(texts, return_tensors="pt", padding=True)


def logits(model, batch):
    with torch.no_grad():
        return model(**batch).logits


def lm_loss(batch):
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return lambda m: m(**batch, labels=labels).loss


def assert_same(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual.float(), expected.float(), atol=atol, rtol=0)


def read(path):
    return json.loads(path.read_text())


@pytest.fixture
def tokenizer(tiny_decoder_dir):
    tok = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    tok.chat_template = TEMPLATE
    return tok


def test_full_model_exports_a_plain_causal_lm_folder(tiny_decoder_dir, tokenizer, tmp_path, train):
    model = AutoModelForCausalLM.from_pretrained(tiny_decoder_dir)
    batch = batch_of(tokenizer)
    train(model, lm_loss(batch))
    ours = logits(model, batch)
    # The base model stops on <|endoftext|> only; the chat template ends turns with the tokenizer's eos.
    endoftext = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config.eos_token_id = endoftext

    exported = export(model, tokenizer, tmp_path / "model", task="sft", max_length=128, training={"steps": 3})
    out = exported.path
    assert model.generation_config.eos_token_id == endoftext  # the caller's model is left as it is

    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(reloaded).__name__ == "Qwen2ForCausalLM"
    assert_same(logits(reloaded, batch), ours)
    assert AutoTokenizer.from_pretrained(out).chat_template == TEMPLATE
    generation = read(out / "generation_config.json")
    assert generation["eos_token_id"] == [endoftext, tokenizer.eos_token_id]
    assert generation["pad_token_id"] == tokenizer.pad_token_id
    assert reloaded.generation_config.eos_token_id == [endoftext, tokenizer.eos_token_id]
    names = {p.name for p in out.rglob("*")}
    assert "modules.json" not in names  # vLLM would start it as an embedding model
    assert not [n for n in names if n.startswith("adapter")]
    assert read(out / "config.json")["architectures"] == ["Qwen2ForCausalLM"]

    info = read(out / "mg_export.json")
    assert info["task"] == "sft" and info["architecture"] == "Qwen2ForCausalLM"
    assert info["dtype"] == "float32" and info["chat_template"] is True
    assert info["max_length"] == 128 and info["training"] == {"steps": 3}
    assert info["lora"] is None and info["adapter"] is None and info["adapter_serve"] is None
    assert exported.serve_command == f"vllm serve {out} --runner generate --dtype float32"
    assert info["serve"]["vllm==0.8.5"]["command"] == f"vllm serve {out} --task generate --dtype float32"
    assert exported.adapter is None and exported.adapter_serve_command is None


def test_lora_exports_merged_folder_and_adapter(tiny_decoder_dir, tokenizer, tmp_path, train):
    peft_model = apply_lora(
        AutoModelForCausalLM.from_pretrained(tiny_decoder_dir),
        "sft",
        r=4,
        alpha=8,
        target_modules="all-linear",
    )
    # The head stays the pretrained lm_head: not a target and nothing trained in full.
    config = peft_model.peft_config["default"]
    assert config.task_type == "CAUSAL_LM" and not config.modules_to_save
    kinds = sorted({name.rsplit(".", 1)[-1] for name in config.target_modules})
    assert kinds == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert all("lora_" in n for n, p in peft_model.named_parameters() if p.requires_grad)
    batch = batch_of(tokenizer)
    train(peft_model, lm_loss(batch), lr=1e-2)
    ours = logits(peft_model, batch)

    run = tmp_path / "run"
    exported = export(
        peft_model, tokenizer, run / "model", task="sft", max_length=128, adapter_dir=run / "adapter"
    )
    assert is_lora(peft_model)  # merged on a copy; training can go on
    assert exported.adapter == run / "adapter"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {
        p.name for p in exported.adapter.iterdir()
    }
    assert not [p.name for p in exported.path.iterdir() if p.name.startswith("adapter")]

    merged = AutoModelForCausalLM.from_pretrained(exported.path).eval()
    assert_same(logits(merged, batch), ours)
    base = AutoModelForCausalLM.from_pretrained(tiny_decoder_dir)
    assert (logits(base, batch) - ours).abs().max() > 1e-3  # the adapter matters
    adapted = PeftModel.from_pretrained(base, exported.adapter).eval()
    assert_same(logits(adapted, batch), ours)
    assert_same(logits(adapted, batch), logits(merged, batch), atol=1e-4)
    assert AutoTokenizer.from_pretrained(exported.adapter).chat_template == TEMPLATE

    info = read(exported.path / "mg_export.json")
    assert info["lora"] == {
        "r": 4,
        "alpha": 8,
        "target_modules": kinds,
        "base_model": str(tiny_decoder_dir),
    }
    assert info["adapter"] == str(run / "adapter")
    assert info["adapter_serve"] == exported.adapter_serve
    assert exported.adapter_serve_command == (
        f"vllm serve {tiny_decoder_dir} --tokenizer {run / 'adapter'} --enable-lora "
        f"--lora-modules run={run / 'adapter'} --max-lora-rank 8 --dtype float32"
    )


def test_training_wrappers_are_unwrapped(tiny_decoder_dir, tokenizer, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_decoder_dir)
    batch = batch_of(tokenizer)
    ours = logits(model, batch)
    for i, wrapped in enumerate([torch.nn.DataParallel(model), torch.compile(model)]):
        out = export(wrapped, tokenizer, tmp_path / f"m{i}", task="pt", max_length=64).path
        assert read(out / "config.json")["architectures"] == ["Qwen2ForCausalLM"]
        assert_same(logits(AutoModelForCausalLM.from_pretrained(out), batch), ours)


def test_bf16_weights_are_served_in_bf16(tiny_decoder_dir, tokenizer, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_decoder_dir, dtype=torch.bfloat16)
    exported = export(model, tokenizer, tmp_path / "m", task="grpo", max_length=64)
    assert read(exported.path / "mg_export.json")["dtype"] == "bfloat16"
    assert exported.serve[NEWEST_VLLM] == {
        "command": f"vllm serve {exported.path} --runner generate --dtype bfloat16"
    }
    assert AutoModelForCausalLM.from_pretrained(exported.path).dtype == torch.bfloat16


def test_a_tokenizer_without_pad_gets_eos_as_pad(tiny_decoder_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    tok.pad_token = None
    model = AutoModelForCausalLM.from_pretrained(tiny_decoder_dir)
    model.generation_config.pad_token_id = None
    out = export(model, tok, tmp_path / "m", task="dpo", max_length=64).path
    assert tok.pad_token is None  # the caller's tokenizer is left as it is
    assert AutoTokenizer.from_pretrained(out).pad_token == tok.eos_token
    assert read(out / "generation_config.json")["pad_token_id"] == tok.eos_token_id


def test_errors(tiny_decoder_dir, tokenizer, tmp_path):
    classifier = load_sequence_classifier(
        tiny_decoder_dir, num_labels=2, problem_type="single_label_classification"
    )
    with pytest.raises(TypeError, match="task sft exports a transformers ForCausalLM model, not Qwen2ForSeq"):
        export(classifier, tokenizer, tmp_path / "a", task="sft", max_length=64)
    model = AutoModelForCausalLM.from_pretrained(tiny_decoder_dir)
    with pytest.raises(ValueError, match="adapter_dir is for a LoRA model; this model has no adapters"):
        export(model, tokenizer, tmp_path / "b", task="sft", max_length=64, adapter_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="adapter_dir is for generative tasks"):
        export(
            classifier, tokenizer, tmp_path / "d", task="classify", max_length=64, adapter_dir=tmp_path / "e"
        )
    with pytest.raises(TypeError, match="expected a transformers model .* not Linear"):
        export(torch.nn.Linear(2, 2), tokenizer, tmp_path / "f", task="sft", max_length=64)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_adapter_serve_command_rank_and_refusals(tmp_path):
    adapter = tmp_path / "my run" / "adapter"
    commands = adapter_serve_commands(
        adapter, LoraConfig(r=16, base_model_name_or_path="Qwen/Qwen2.5-0.5B"), "bfloat16"
    )
    assert shlex.split(commands[NEWEST_VLLM]["command"]) == [
        "vllm",
        "serve",
        "Qwen/Qwen2.5-0.5B",
        "--tokenizer",
        str(adapter),
        "--enable-lora",
        "--lora-modules",
        f"my run={adapter}",
        "--max-lora-rank",
        "16",
        "--dtype",
        "bfloat16",
    ]
    for config, note in [
        (LoraConfig(r=600, base_model_name_or_path="b"), "vLLM serves LoRA ranks up to 512, not 600"),
        (LoraConfig(r=8, base_model_name_or_path="b", modules_to_save=["lm_head"]), "modules_to_save"),
        (LoraConfig(r=8), "does not name its base model"),
    ]:
        entry = adapter_serve_commands(adapter, config, "float32")[NEWEST_VLLM]
        assert entry["command"] is None and note in entry["note"]


# --- served by real vLLM (the CPU build) ------------------------------------------------------------------

CHAT = [{"role": "user", "content": "What does the cat do?"}]
NEW_TOKENS = 6


@pytest.fixture(scope="module")
def lora_export(tiny_decoder_dir, tmp_path_factory):
    """A LoRA run trained until its greedy continuations are clear-cut (so that fp32 rounding differences
    between vLLM's kernels and transformers' cannot flip an argmax), exported with its adapter."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_decoder_dir)
    texts = [
        *TEXTS,
        tokenizer.apply_chat_template([*CHAT, {"role": "assistant", "content": "It sits."}], tokenize=False),
    ]
    batch = batch_of(tokenizer, texts)
    torch.manual_seed(0)
    model = apply_lora(
        AutoModelForCausalLM.from_pretrained(tiny_decoder_dir),
        "sft",
        r=8,
        alpha=16,
        target_modules="all-linear",
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss_of = lm_loss(batch)
    for _ in range(40):
        loss_of(model).backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    run = tmp_path_factory.mktemp("vllm") / "run"
    return export(model, tokenizer, run / "model", task="sft", max_length=256, adapter_dir=run / "adapter")


def greedy(model, input_ids: list[int]) -> list[int]:
    with torch.no_grad():
        out = model.generate(
            torch.tensor([input_ids]), max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False
        )
    return out[0, len(input_ids) :].tolist()


def post(url: str, path: str, body: dict) -> dict:
    import urllib.request

    request = urllib.request.Request(
        url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def served_args(command: str, model: str) -> tuple[str, ...]:
    """The flags of an exported `vllm serve MODEL ...` command (vllm_server adds the model, host and port)."""
    words = shlex.split(command)
    assert words[:3] == ["vllm", "serve", model], words
    return (*words[3:], "--max-model-len", "256")


def served_tokens(url: str, name: str, prompt_ids: list[int]) -> list[int]:
    # min_tokens = max_tokens masks the stop tokens, as min_new_tokens does in transformers' generate.
    body = {"model": name, "prompt": prompt_ids, "max_tokens": NEW_TOKENS, "min_tokens": NEW_TOKENS}
    choice = post(url, "/v1/completions", {**body, "temperature": 0, "return_token_ids": True})["choices"][0]
    return choice["token_ids"]


@pytest.mark.vllm
@pytest.mark.network
@pytest.mark.slow
def test_merged_export_served_by_vllm_generates_as_transformers(lora_export, tmp_path):
    from mg_testing.vllm_server import vllm_server

    folder = lora_export.path
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    prompt_ids = tokenizer("the cat sat")["input_ids"]
    chat_ids = tokenizer.apply_chat_template(
        CHAT, add_generation_prompt=True, tokenize=True, return_dict=False
    )
    expected = greedy(model, prompt_ids)
    expected_chat = greedy(model, chat_ids)
    args = served_args(lora_export.serve_command, str(folder))
    with vllm_server(folder, name="merged", args=args, log=tmp_path / "vllm.log") as url:
        assert served_tokens(url, "merged", prompt_ids) == expected
        # The chat endpoint renders the exported chat template, as transformers does.
        body = {"model": "merged", "messages": CHAT, "max_tokens": NEW_TOKENS, "min_tokens": NEW_TOKENS}
        reply = post(url, "/v1/chat/completions", {**body, "temperature": 0, "return_token_ids": True})
        assert reply["prompt_token_ids"] == chat_ids
        assert reply["choices"][0]["token_ids"] == expected_chat


@pytest.mark.vllm
@pytest.mark.network
@pytest.mark.slow
def test_adapter_served_by_vllm_with_enable_lora_generates_as_the_merged_model(
    lora_export, tiny_decoder_dir, tmp_path
):
    from mg_testing.vllm_server import vllm_server

    merged = AutoModelForCausalLM.from_pretrained(lora_export.path).eval()
    tokenizer = AutoTokenizer.from_pretrained(lora_export.adapter)
    prompt_ids = tokenizer("the cat sat")["input_ids"]
    expected = greedy(merged, prompt_ids)
    base_only = greedy(AutoModelForCausalLM.from_pretrained(tiny_decoder_dir).eval(), prompt_ids)
    assert expected != base_only  # so the served adapter is what makes the tokens
    args = served_args(lora_export.adapter_serve_command, str(tiny_decoder_dir))
    with vllm_server(tiny_decoder_dir, name="base", args=args, log=tmp_path / "vllm.log") as url:
        assert served_tokens(url, "run", prompt_ids) == expected
