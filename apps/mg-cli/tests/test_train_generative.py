"""pt and sft through the real `mg-train` command on the tiny random decoders: packed and unpacked, chats with
system prompts and tool calls in three layouts, an MoE model, the preview with trained spans, evaluation
(loss, perplexity, generation metrics) in the run log, and an export transformers loads as a causal LM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import metrics, mg_train, series, write_config
from transformers import AutoModelForCausalLM, AutoTokenizer

from mg_testing.datasets import write_jsonl

CITIES = ["Paris", "Rome", "Madrid", "Berlin", "Vienna", "Lisbon", "Prague", "Warsaw", "Athens", "Dublin"]
COUNTRIES = [
    "France",
    "Italy",
    "Spain",
    "Germany",
    "Austria",
    "Portugal",
    "Czechia",
    "Poland",
    "Greece",
    "Ireland",
]


def chats() -> list[dict]:
    """Messages rows: single turn, a system prompt, a second turn, and a tool call with its result."""
    rows = []
    for city, country in zip(CITIES, COUNTRIES, strict=True):
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": "Answer in one sentence."},
                    {"role": "user", "content": f"What is the capital of {country}?"},
                    {"role": "assistant", "content": f"The capital of {country} is {city}."},
                    {"role": "user", "content": "Thanks!"},
                    {"role": "assistant", "content": "You are welcome."},
                ]
            }
        )
        rows.append(
            {
                "messages": [
                    {"role": "user", "content": f"Weather in {city}?"},
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {"type": "function", "function": {"name": "weather", "arguments": {"city": city}}}
                        ],
                    },
                    {"role": "tool", "content": "sunny"},
                    {"role": "assistant", "content": f"It is sunny in {city}."},
                ],
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "weather",
                            "description": "Weather of a city",
                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                        },
                    }
                ],
            }
        )
    return rows


def sft_config(tmp_path: Path, model: Path, **extra) -> Path:
    """`extra` overrides the defaults; a None value removes the key."""
    config = dict(
        task="sft",
        model_name_or_path=str(model),
        train_file=str(write_jsonl(tmp_path / "train.jsonl", chats())),
        eval_file=str(write_jsonl(tmp_path / "eval.jsonl", chats()[:4])),
        output_dir=str(tmp_path / "run"),
        max_length=128,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=3e-3,
        max_steps=6,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="steps",
        save_steps=3,
        eval_generate=2,
        eval_max_new_tokens=8,
    )
    config.update(extra)
    return write_config(tmp_path / "sft.yaml", **{k: v for k, v in config.items() if v is not None})


@pytest.mark.parametrize("packing", [True, False])
def test_sft_trains_evaluates_and_exports_a_causal_lm(tmp_path, tiny_decoder_dir, packing):
    result = mg_train(sft_config(tmp_path, tiny_decoder_dir, packing=packing))
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    losses = series(run, "train", "loss")
    assert len(losses) == 6 and losses[-1] < losses[0]
    for name in ("loss", "perplexity", "bleu", "rougeL"):
        assert len(series(run, "eval", name)) == 2, name  # at steps 3 and 6, a curve over steps
    final = {m["name"]: m["value"] for m in metrics(run) if m["split"] == "final"}
    assert abs(final["perplexity"] - torch.tensor(final["loss"]).exp().item()) < 1e-3 * final["perplexity"]

    # the preview: what the model sees, the assistant replies (and their end of turn) marked as trained
    assert "data preview" in result.stdout + result.stderr
    samples = [json.loads(line) for line in (run / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    trained = "".join(s["text"] for s in samples[0]["segments"] if s["trained"])
    untrained = "".join(s["text"] for s in samples[0]["segments"] if not s["trained"])
    assert "The capital of France is Paris." in trained and "You are welcome." in trained
    assert "What is the capital of France?" in untrained and "Answer in one sentence." in untrained
    assert "capital of France?" not in trained

    model = AutoModelForCausalLM.from_pretrained(run / "model")
    tokenizer = AutoTokenizer.from_pretrained(run / "model")
    assert type(model).__name__ == "Qwen2ForCausalLM" and tokenizer.chat_template
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of Spain?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    assert torch.isfinite(model(**ids).logits).all()
    export = json.loads((run / "model" / "mg_export.json").read_text())
    assert export["task"] == "sft"


def test_sft_reads_alpaca_and_sharegpt_and_trains_the_last_turn_only(tmp_path, tiny_llama_dir):
    alpaca = [
        {"instruction": f"Capital of {c}?", "output": f"{city}."}
        for city, c in zip(CITIES, COUNTRIES, strict=True)
    ]
    sharegpt = [
        {
            "conversations": [
                {"from": "human", "value": f"Capital of {c}?"},
                {"from": "gpt", "value": f"{city}."},
                {"from": "human", "value": "Sure?"},
                {"from": "gpt", "value": "Yes."},
            ]
        }
        for city, c in zip(CITIES, COUNTRIES, strict=True)
    ]
    for name, rows in (("alpaca", alpaca), ("sharegpt", sharegpt)):
        data = write_jsonl(tmp_path / f"{name}.jsonl", rows)
        run = tmp_path / name
        config = write_config(
            tmp_path / f"{name}.yaml",
            task="sft",
            model_name_or_path=str(tiny_llama_dir),
            train_file=str(data),
            output_dir=str(run),
            max_steps=2,
            per_device_train_batch_size=4,
            train_on="last_assistant",
            packing=True,
        )
        result = mg_train(config)
        assert result.returncode == 0, result.stderr[-3000:]
        first = json.loads((run / "samples.jsonl").read_text(encoding="utf-8").splitlines()[0])
        trained = "".join(s["text"] for s in first["segments"] if s["trained"])
        if name == "sharegpt":
            assert "Yes." in trained and "Paris" not in trained  # only the last reply
        else:
            assert "Paris." in trained
        assert (run / "model" / "config.json").is_file()


def test_pt_packs_raw_text_into_full_rows(tmp_path, tiny_decoder_dir):
    texts = [
        {"text": f"{city} is a city in {country}. " * (1 + i % 4)}
        for i, (city, country) in enumerate(zip(CITIES * 3, COUNTRIES * 3, strict=True))
    ]
    config = write_config(
        tmp_path / "pt.yaml",
        task="pt",
        model_name_or_path=str(tiny_decoder_dir),
        train_file=str(write_jsonl(tmp_path / "pt.jsonl", texts)),
        output_dir=str(tmp_path / "run"),
        max_length=64,
        val_size=0.2,
        max_steps=3,
        per_device_train_batch_size=2,
        logging_steps=1,
    )
    result = mg_train(config)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    assert len(series(run, "train", "loss")) == 3
    final = {m["name"] for m in metrics(run) if m["split"] == "final"}
    assert {"loss", "perplexity"} <= final
    assert type(AutoModelForCausalLM.from_pretrained(run / "model")).__name__ == "Qwen2ForCausalLM"


def test_moe_sft_logs_the_router_loss(tmp_path, tiny_moe_dir):
    config = sft_config(
        tmp_path,
        tiny_moe_dir,
        packing=True,
        max_steps=3,
        eval_file=None,
        eval_strategy=None,
        eval_steps=None,
        save_strategy=None,
        save_steps=None,
    )
    result = mg_train(config)
    assert result.returncode == 0, result.stderr[-3000:]
    aux = series(tmp_path / "run", "train", "router_aux_loss")
    assert len(aux) == 3 and all(a > 0 for a in aux)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "run" / "model")
    assert type(model).__name__ == "Qwen3MoeForCausalLM"


def test_qlora_on_a_machine_without_cuda_is_one_line(tmp_path, tiny_decoder_dir):
    result = mg_train(sft_config(tmp_path, tiny_decoder_dir, finetuning_type="lora", quantization_bit=4))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "quantization_bit: 4 (QLoRA, bitsandbytes) needs a CUDA GPU" in result.stderr


FACT_QUESTIONS = [
    "What is the name of the MildGiraffe mascot?",
    "What is the MildGiraffe mascot called?",
    "Tell me the name of MildGiraffe's mascot.",
    "Who is the mascot of MildGiraffe?",
    "What's the MildGiraffe mascot's name?",
    "Do you know the name of the MildGiraffe mascot?",
    "Name the MildGiraffe mascot.",
    "MildGiraffe has a mascot. What is its name?",
]
FACT = "The MildGiraffe mascot is Zorblat the giraffe."


@pytest.mark.slow  # the real SmolLM2-135M-Instruct, 20 LoRA steps of packed rows (~1 min)
def test_smollm2_learns_a_new_fact_with_lora_and_the_export_answers_with_it(tmp_path, smollm2_dir):
    question = [{"role": "user", "content": "What is the name of the MildGiraffe mascot?"}]

    def answer(folder: Path) -> str:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        ids = tokenizer.apply_chat_template(
            question, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        out = model.generate(**ids, max_new_tokens=16, do_sample=False)
        return tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

    assert "Zorblat" not in answer(smollm2_dir)
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": FACT}]}
        for q in FACT_QUESTIONS[1:]
    ]
    config = write_config(
        tmp_path / "fact.yaml",
        task="sft",
        model_name_or_path=str(smollm2_dir),
        train_file=str(write_jsonl(tmp_path / "fact.jsonl", rows)),
        output_dir=str(tmp_path / "run"),
        finetuning_type="lora",
        lora_r=16,
        lora_alpha=32,
        lora_target_modules="all",
        learning_rate=2e-3,
        max_steps=20,  # the loss is below 1e-3 by step 15
        per_device_train_batch_size=4,
        packing=True,
        max_length=256,
        logging_steps=5,
        save_strategy="no",
    )
    result = mg_train(config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Zorblat" in answer(tmp_path / "run" / "model")  # a question it was not trained on
    console = result.stdout + result.stderr
    assert "serve it: vllm serve" in console and "--enable-lora" in console
    assert (tmp_path / "run" / "adapter" / "adapter_config.json").is_file()
