"""grpo: reinforcement learning from rewards (GRPO, TRL's GRPOTrainer); no value model, no reference copy.

For each prompt the model writes num_generations completions; the rewards named in `reward_funcs` score them
(Python functions, or a reward model exported by mg-train's rm task: see mg_train.tasks.rewards) and each
completion is pushed up or down by its reward relative to its group. Rows are mg-data's {prompt, **columns}:
every other column (a reference `answer`, ...) reaches each reward function as a keyword argument. Generation
uses transformers' generate unless use_vllm is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trl

from mg_train.errors import ConfigError
from mg_train.guards import Guards
from mg_train.tasks import rewards as reward_entries
from mg_train.tasks.dpo import build_trainer, export, to_dataset
from mg_train.tasks.generative import GenerativeConfig, build_causal_lm, prepare_tokenizer, segments

__all__ = ["Config", "build_model", "export", "prepare", "prepare_tokenizer", "preview", "trainer"]

# Per machine when not given: TRL's own defaults on a GPU; on a CPU, where generate is ~100x slower, a group and
# a length that keep a step in seconds on a small model.
GPU_GENERATIONS, GPU_COMPLETION = 8, 512
CPU_GENERATIONS, CPU_COMPLETION = 4, 64


@dataclass
class Config(GenerativeConfig, trl.GRPOConfig):  # type: ignore[misc]  # see dpo.Config
    # TRL's default, which TaskConfig (before GRPOConfig in the MRO) would replace by TrainingArguments' 5e-5.
    learning_rate: float = field(default=1e-6, metadata={"help": "The initial learning rate for AdamW."})
    reward_funcs: str | list[str] = field(
        default_factory=list,
        metadata={
            "help": "The rewards (required; summed, weighted by reward_weights): path/to/rewards.py:fn (a relative "
            "path is read from the current directory, like train_file), package.module:fn, or a folder exported "
            "by mg-train's rm task. A function gets prompts, completions, completion_ids and every data column "
            "as keyword arguments and returns one float per completion."
        },
    )
    num_generations: int | None = field(
        default=None,
        metadata={
            "help": f"Completions per prompt (a group; >= 2). null: {GPU_GENERATIONS} on a GPU (TRL's default), "
            f"{CPU_GENERATIONS} on a CPU. The generation batch (per_device_train_batch_size x processes x "
            "steps_per_generation) must be a multiple of it."
        },
    )
    max_completion_length: int | None = field(
        default=None,
        metadata={
            "help": f"Most tokens generated per completion. null: {GPU_COMPLETION} on a GPU (TRL's default), "
            f"{CPU_COMPLETION} on a CPU."
        },
    )
    trust_remote_code: bool = field(default=False, init=False)  # ModelArgs has it (and refuses true)

    def __post_init__(self):
        if isinstance(self.reward_funcs, str):
            self.reward_funcs = [self.reward_funcs]
        if not self.reward_funcs:
            raise ConfigError(
                "reward_funcs is required for task grpo: path/to/rewards.py:fn, package.module:fn or a folder "
                "exported by mg-train's rm task",
                key="reward_funcs",
            )
        if self.num_generations is None or self.max_completion_length is None:
            gpu = _on_gpu(self)
            if self.num_generations is None:
                self.num_generations = GPU_GENERATIONS if gpu else CPU_GENERATIONS
            if self.max_completion_length is None:
                self.max_completion_length = GPU_COMPLETION if gpu else CPU_COMPLETION
        super().__post_init__()


def _on_gpu(config) -> bool:
    import torch

    return torch.cuda.is_available() and not config.use_cpu


@dataclass
class TaskData:
    rewards: list  # callables and reward_entries.RewardModel, in the order of reward_funcs
    conversational: bool  # the prompts are message lists (rendered with the chat template)


def prepare(job, train, eval_) -> TaskData:
    """The reward entries, checked before the model is loaded (a bad one is a ConfigError naming it)."""
    columns = {key for row in train + eval_ for key in row if key != "prompt"}
    rewards = reward_entries.load(job.train.reward_funcs, columns)
    return TaskData(rewards=rewards, conversational=isinstance(train[0]["prompt"], list))


def build_model(job, data, tokenizer):
    return build_causal_lm(job)


def prompt_ids(tokenizer, example: dict) -> list[int]:
    """The prompt as the model continues it: the chat template with the generation prompt, or the plain text."""
    prompt = example["prompt"]
    if isinstance(prompt, list):
        out = tokenizer.apply_chat_template(
            prompt, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(out["input_ids"])
    return tokenizer(prompt)["input_ids"]


def preview(job, data, tokenizer, examples: list[dict]) -> list[dict]:
    args = job.train
    scored = ", ".join(_name(r) for r in data.rewards)
    out = []
    for ex in examples:
        ids = prompt_ids(tokenizer, ex)
        columns = sorted(k for k in ex if k != "prompt")
        extra = f"; columns passed to the rewards: {', '.join(columns)}" if columns else ""
        out.append(
            {
                "segments": segments(tokenizer, ids, [-100] * len(ids)),
                "label": f"prompt of {len(ids)} tokens; the model writes {args.num_generations} completions of up to "
                f"{args.max_completion_length} tokens, scored by {scored}{extra}",
            }
        )
    return out


def _name(reward) -> str:
    if isinstance(reward, reward_entries.RewardModel):
        return f"the reward model {reward.path}"
    return getattr(reward, "__name__", type(reward).__name__)


class GRPOTrainer(Guards, trl.GRPOTrainer):
    pass


def trainer(job, data, *, model, tokenizer, train, eval_, callbacks, log):
    funcs, processors = [], []
    for reward in data.rewards:
        if isinstance(reward, reward_entries.RewardModel):
            rm, rm_tokenizer = reward_entries.load_reward_model(reward, conversational=data.conversational)
            funcs.append(rm)
            processors.append(rm_tokenizer)
        else:
            funcs.append(reward)
            processors.append(None)
    return build_trainer(
        GRPOTrainer,
        job,
        model=model,
        reward_funcs=funcs,
        reward_processing_classes=processors,
        args=job.train,
        processing_class=tokenizer,
        train_dataset=to_dataset(train, job.data.train_file, json_columns=()),
        eval_dataset=to_dataset(eval_, job.data.eval_file or job.data.train_file, json_columns=())
        if eval_
        else None,
        callbacks=callbacks,
    )
