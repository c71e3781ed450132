"""LLaMA-Factory 0.9.5's own loader (data/parser.py, loader.py, converter.py), run in the env mg-env builds,
reads our fixture entries and the folders write_dataset exports exactly as mg-data reads them."""

import json
import os

import lf_data
import pytest
from lf_data import EXPECTED, make_dataset_dir

import mg_data as api
import mg_env
from mg_data.conversation import split_system
from mg_data.formats import sharegpt
from mg_data.llamafactory import dataset_ref, write_dataset

# slow: the env's imports take ~30 s; network: building the env on a fresh machine downloads from PyPI.
pytestmark = [pytest.mark.slow, pytest.mark.network]

# Loads each (dataset_dir, name, max_samples) with LLaMA-Factory's _load_single_dataset (file or folder,
# split, num_samples, max_samples, then its alpaca/sharegpt converter) and writes the aligned rows as JSON.
LOADER = r"""
import importlib.util, json, sys, types

# Only llamafactory.data's own modules: its __init__ also imports the chat templates and the multimodal
# plugin (torchaudio), which reading data does not use.
package = types.ModuleType("llamafactory.data")
package.__path__ = [importlib.util.find_spec("llamafactory").submodule_search_locations[0] + "/data"]
sys.modules["llamafactory.data"] = package

import transformers
from transformers import Seq2SeqTrainingArguments
from llamafactory.hparams import DataArguments, ModelArguments
from llamafactory.data.parser import get_dataset_list
from llamafactory.data.loader import _load_single_dataset

jobs, work = json.loads(sys.argv[1]), sys.argv[2]
training_args = Seq2SeqTrainingArguments(output_dir=work)
result = {}
for dataset_dir, name, max_samples in jobs:
    transformers.set_seed(42)  # what LLaMA-Factory's argument parsing does before any data is loaded
    data_args = DataArguments(dataset_dir=dataset_dir, max_samples=max_samples)
    attr = get_dataset_list([name], dataset_dir)[0]
    rows = _load_single_dataset(attr, ModelArguments(model_name_or_path="unused"), data_args, training_args)
    keys = ("_prompt", "_response", "_system", "_tools")
    result[f"{dataset_dir}#{name}#{max_samples}"] = [{k: row[k] for k in keys} for row in rows]
with open(work + "/aligned.json", "w") as f:
    json.dump(result, f, ensure_ascii=False)
"""

LF_ROLE = {"human": "user", "gpt": "assistant", "function_call": "function", "observation": "observation"}
EMPTY = {"role": "assistant", "content": ""}


def lf_turns(messages: list[dict]) -> list[dict]:
    """Our messages as LLaMA-Factory's aligned ones: sharegpt's turns, its role names."""
    turns = sharegpt.from_conversation({"messages": messages})["conversations"]
    return [{"role": LF_ROLE[t["from"]], "content": t["value"]} for t in turns]


def aligned(task: str, example: dict) -> dict:
    """Our normalized example as LLaMA-Factory's converter output (_prompt, _response, _system, _tools)."""
    tools = json.dumps(example["tools"], ensure_ascii=False) if example.get("tools") else ""
    if task == "pt":
        return {
            "_prompt": [{"role": "user", "content": example["text"]}],
            "_response": [],
            "_system": "",
            "_tools": "",
        }
    if task == "sft":
        system, turns = split_system(example["messages"])
        converted = lf_turns(turns)
        return {
            "_prompt": converted[:-1],
            "_response": converted[-1:],
            "_system": system or "",
            "_tools": tools,
        }
    system, prompt = split_system(example["prompt"])
    if task == "kto":
        answer = lf_turns(example["completion"])
        response = answer + [EMPTY] if example["label"] else [EMPTY] + answer
    else:
        response = lf_turns(example["chosen"]) + lf_turns(example["rejected"])
    return {"_prompt": lf_turns(prompt), "_response": response, "_system": system or "", "_tools": tools}


def test_llamafactory_reads_our_entries_and_exports_as_we_do(tmp_path):
    info = make_dataset_dir(tmp_path / "data")
    (info.parent / "parts" / ".DS_Store").unlink()  # LLaMA-Factory would stop on it (mg-data skips it)
    out = tmp_path / "exported"
    for name, (task, _) in EXPECTED.items():
        write_dataset(dataset_ref(info.parent, name), out, name, task)
    ours: dict[str, list] = {}
    jobs = []
    for folder in (info.parent, out):
        for name, (task, _) in EXPECTED.items():
            jobs.append([str(folder), name, None])
            ours[f"{folder}#{name}#None"] = [
                aligned(task, ex) for ex in api.iter_examples(dataset_ref(folder, name), task)
            ]
    for name, max_samples in [("sampled", None), ("sliced", None), ("sampled", 3), ("alpaca_columns", 1)]:
        jobs.append([str(info.parent), name, max_samples])
        examples = api.iter_examples(dataset_ref(info.parent, name), "sft", max_samples=max_samples)
        ours[f"{info.parent}#{name}#{max_samples}"] = [aligned("sft", ex) for ex in examples]

    env = mg_env.ensure("llamafactory", version="0.9.5")
    work = tmp_path / "work"
    work.mkdir()
    offline = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = env.run(
        [env.python, "-c", LOADER, json.dumps(jobs), str(work)],
        env={**os.environ, **offline},
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads((work / "aligned.json").read_text(encoding="utf-8"))

    assert theirs.keys() == ours.keys()
    for key, rows in theirs.items():
        # A row without the system (or tools) column reads as None there, which LLaMA-Factory takes as none.
        rows = [{**row, "_system": row["_system"] or "", "_tools": row["_tools"] or ""} for row in rows]
        if key.endswith("#txt#None") and str(info.parent) in key:
            # LLaMA-Factory reads the blank line as an empty text; mg-data reads no text there.
            rows = [row for row in rows if row["_prompt"][0]["content"]]
        if "#folder#" in key:
            # LLaMA-Factory reads a folder's files in os.listdir's order; mg-data in name order.
            rows, ours[key] = sorted(rows, key=json.dumps), sorted(ours[key], key=json.dumps)
        assert rows == ours[key], key
    assert len(theirs[f"{info.parent}#sampled#None"]) == lf_data.INFO["sampled"]["num_samples"]
