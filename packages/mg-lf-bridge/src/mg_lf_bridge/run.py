"""train(mapping): one job on LLaMA-Factory itself, from an mg-train config or a native LLaMA-Factory YAML.

keys checked (translated, or the native YAML's fixes) -> output_dir checked (a previous run is continued with
--resume or replaced with overwrite_output_dir, never mixed) -> data checked by mg-data -> LLaMA-Factory's env
(built on first use) -> `llamafactory-cli train` -> run log and export, as for a native run.

The run folder (output_dir) is laid out as mg-train's, plus LLaMA-Factory's own folder:
    config.json, metrics.jsonl, tb/          the run log (mg_eval.runlog), from LLaMA-Factory's log history
    model/ (+ adapter/ for LoRA)             the exported model, with mg_export.json and the vllm serve command
    train_summary.json
    llamafactory/train.yaml                  what LLaMA-Factory ran (`llamafactory-cli train` runs it again)
    llamafactory/data/                       an mg-train config's data, as an LLaMA-Factory dataset folder
    llamafactory/output.log                  LLaMA-Factory's whole output
    llamafactory/...                         its output_dir: checkpoint-N, trainer_state.json, the adapter/model
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mg_lf_bridge import dataset, launch, native, runlog
from mg_lf_bridge.errors import BridgeError, Interrupted, LFFailed
from mg_lf_bridge.export import EXPORTED, Trained, export
from mg_lf_bridge.translate import translate
from mg_lf_bridge.versions import DEFAULT_VERSION, PROFILE, VERSIONS

LF_DIR = "llamafactory"
# What a previous run leaves in the run folder besides llamafactory/ (mg-train's run files, and ours).
RUN_FILES = ("model", "adapter", "metrics.jsonl", "samples.jsonl", "config.json", "train_summary.json", "tb")
Log = Callable[[str], None]


@dataclass
class Plan:
    """What to run: LLaMA-Factory's arguments (without data keys and output_dir) and where."""

    args: dict[str, Any]
    run_dir: Path
    config: dict[str, Any]  # the resolved config, for the run log
    resume: Any  # resume_from_checkpoint as given
    overwrite: bool
    stage: str
    # (the LLaMA-Factory data folder, log) -> the data keys; checks every row first
    write_data: Callable[[Path, Log], dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass
class Staged:
    """A job ready for LLaMA-Factory: its config file written, its data checked."""

    plan: Plan
    version: str
    config_file: Path  # llamafactory/train.yaml: what `llamafactory-cli train` runs
    args: dict[str, Any]  # what the file holds

    @property
    def lf_dir(self) -> Path:
        return self.config_file.parent


def train(
    mapping: dict[str, Any],
    *,
    source: str = "config",
    locations: dict[str, str] | None = None,
    version: str | None = None,
    launch_flags: dict[str, str] | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """Run the job on LLaMA-Factory `version` (default: the newest) and return its summary (train_summary.json).

    `locations` says where each key was given ("file.yaml:7", "flag --lr") for errors; `launch_flags` are
    mg-train's torchrun flags (nproc_per_node, nnodes, node_rank, master_addr, master_port). Raises BridgeError
    (a fix for the user), mg_train's ConfigError, mg_data's DataError/InvalidRows, LFFailed, Interrupted."""
    staged = stage(mapping, source=source, locations=locations, version=version, log=log)
    env = lf_env(staged.version, log)
    log(f"LLaMA-Factory {staged.version}: llamafactory-cli train {staged.config_file}")
    lf_dir, plan = staged.lf_dir, staged.plan
    outcome = launch.run(
        env,
        staged.config_file,
        cwd=os.getcwd(),
        extra_env=launch.launch_env(launch_flags or {}),
        log_path=lf_dir / "output.log",
    )
    history = runlog.read_history(lf_dir)
    run_config = {**plan.config, "backend": "llamafactory", "llamafactory_version": staged.version}
    if outcome.signal_name:
        if history.records:
            runlog.write_run_log(plan.run_dir, history, run_config, None)
        newest = runlog.complete_checkpoints(lf_dir)
        raise Interrupted(
            outcome.signal_name,
            step=history.global_step or None,
            checkpoint=str(newest[0]) if newest else None,
        )
    if outcome.returncode != 0:
        raise LFFailed(
            failure(outcome, lf_dir / "output.log"), exit_code=outcome.returncode, log=outcome.tail
        )
    final = runlog.final_metrics(lf_dir)
    runlog.write_run_log(plan.run_dir, history, run_config, final)
    return finish(plan, staged.args, history, final, lf_dir, staged.version, log)


def stage(
    mapping: dict[str, Any],
    *,
    source: str = "config",
    locations: dict[str, str] | None = None,
    version: str | None = None,
    log: Log = print,
) -> Staged:
    """Everything before LLaMA-Factory's env is needed: the keys checked (translated, or the native YAML's
    fixes), the run folder checked, the data checked by mg-data (and written, for an mg-train config), and
    llamafactory/train.yaml written."""
    version = check_version(version)
    where = _locator(source, locations or {})
    plan = (
        native_plan(mapping, source)
        if native.is_native(mapping)
        else mg_plan(mapping, source, where, version)
    )
    for note in plan.notes:
        log(note)
    lf_dir = plan.run_dir / LF_DIR
    resume = prepare_run_dir(plan, lf_dir, log)
    data_keys = plan.write_data(lf_dir / "data", log)
    args = {**plan.args, **data_keys, "output_dir": str(lf_dir)}
    args.pop("resume_from_checkpoint", None)
    if resume:
        args["resume_from_checkpoint"] = resume
    config_file = lf_dir / "train.yaml"
    config_file.write_text(yaml.safe_dump(args, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return Staged(plan=plan, version=version, config_file=config_file, args=args)


def check_version(version: str | None) -> str:
    version = str(version) if version is not None else DEFAULT_VERSION
    if version not in VERSIONS:
        raise BridgeError(
            f"--lf-version {version}: not one of {', '.join(VERSIONS)} (mg-env's locked releases)"
        )
    return version


def _locator(source: str, locations: dict[str, str]) -> Callable[[str], str]:
    """Where a key of ours was given: under its own name or an alias of it (LLaMA-Factory's, TRL's)."""
    from mg_train.aliases import ALIASES

    def where(key: str) -> str:
        names = [key, *(alias for alias, target in ALIASES.items() if target == key)]
        return next((locations[n] for n in names if n in locations), source)

    return where


# --- the two kinds of config ----------------------------------------------------------------------------


def mg_plan(mapping: dict[str, Any], source: str, where, version: str) -> Plan:
    """An mg-train config: parsed as mg-train parses it, translated to LLaMA-Factory's names."""
    from mg_train.config import parse

    job = parse(dict(mapping), source=source, locations={k: where(k) for k in mapping})
    translation = translate(job, version, where)

    def write_data(folder: Path, log: Log) -> dict[str, Any]:
        return dataset.write_folder(job.task, job.data.train_sources, job.data.eval_sources, folder)

    return Plan(
        args=translation.args,
        run_dir=Path(job.train.output_dir).absolute(),
        config=job.raw,
        resume=job.raw.get("resume_from_checkpoint"),
        overwrite=bool(job.train.overwrite_output_dir),
        stage=job.task,
        write_data=write_data,
        notes=[*job.notes, *translation.notes],
    )


def native_plan(mapping: dict[str, Any], source: str) -> Plan:
    """A native LLaMA-Factory YAML: kept as it is, with the fixes of native.py."""
    args = dict(mapping)
    output_dir = args.get("output_dir")
    if not output_dir:
        raise BridgeError(f"{source}: missing 'output_dir' (the run folder)")
    notes = []
    value = args.get("resume_from_checkpoint")
    if "resume_from_checkpoint" in args and native.no_resume(value) and value is not None:
        notes.append(
            f"resume_from_checkpoint: {value!r} means start fresh: dropped (LLaMA-Factory would look for "
            f"'{value}/trainer_state.json')"
        )

    def write_data(folder: Path, log: Log) -> dict[str, Any]:
        for note in dataset.check_native(args):
            log(note)
        return {}  # its own dataset and dataset_dir

    return Plan(
        args=args,
        run_dir=Path(str(output_dir)).absolute(),
        config=dict(mapping),
        resume=value,
        overwrite=bool(args.get("overwrite_output_dir")),
        stage=str(args.get("stage", "sft")),
        write_data=write_data,
        notes=notes,
    )


# --- the run folder ---------------------------------------------------------------------------------------


def prepare_run_dir(plan: Plan, lf_dir: Path, log: Log) -> str | None:
    """The checkpoint to resume from (None: start fresh). A fresh run into a folder holding a previous one is
    refused unless overwrite_output_dir, which removes the previous run first (as mg-train does natively)."""
    resume: str | None = None
    start_over = plan.overwrite
    if native.resume_wanted(plan.resume):
        newest = runlog.complete_checkpoints(lf_dir)
        if newest:
            resume = str(newest[0])
            log(f"resuming from {resume}")
        else:  # nothing to continue: what the previous run left is replaced (as mg-train does natively)
            log(f"resume: no complete checkpoint in {lf_dir}; starting from the beginning")
            start_over = True
    elif not native.no_resume(plan.resume):
        path = Path(str(plan.resume))
        if not (path / runlog.STATE_FILE).is_file():
            raise BridgeError(
                f"resume_from_checkpoint: {plan.resume} is not a checkpoint folder (no trainer_state.json)"
            )
        resume = str(path)
    found = previous_run(plan.run_dir, lf_dir)
    if found and resume is None:
        listed = ", ".join(found)
        if not start_over:
            raise BridgeError(
                f"output_dir: {plan.run_dir} holds a previous run ({listed}); continue it with --resume or set "
                "overwrite_output_dir: true to start over"
            )
        log(f"removing the previous run in {plan.run_dir} ({listed})")
        for name in found:
            path = plan.run_dir / name
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    lf_dir.mkdir(parents=True, exist_ok=True)
    return resume


def previous_run(run_dir: Path, lf_dir: Path) -> list[str]:
    """What a previous run left in the run folder (LLaMA-Factory's folder counts once it holds any output)."""
    if not run_dir.is_dir():
        return []
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if lf_dir.is_dir() and any(p.name not in ("data", "train.yaml", "output.log") for p in lf_dir.iterdir()):
        found.append(LF_DIR)
    return found


def lf_env(version: str, log: Log):
    """LLaMA-Factory's env (mg-env): built from its committed lock on first use, with progress."""
    import mg_env

    try:
        return mg_env.ensure(PROFILE, version, on_progress=lambda line: log(f"mg-env: {line}"))
    except mg_env.EnvError as e:
        raise BridgeError(str(e)) from None


def failure(outcome: launch.Outcome, log_path: Path) -> str:
    """LLaMA-Factory's own error, in one line."""
    error = launch.lf_error(outcome.tail)
    if error:
        return f"LLaMA-Factory failed: {error} (its output: {log_path})"
    code = outcome.returncode
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    last = " | ".join(launch.last_lines(outcome.tail))
    return f"LLaMA-Factory {how}" + (f": {last}" if last else "") + f" (its output: {log_path})"


# --- after training ---------------------------------------------------------------------------------------


def finish(
    plan: Plan, args: dict, history: runlog.History, final: dict, lf_dir: Path, version: str, log: Log
) -> dict:
    """Export the model like a native run, write train_summary.json, print the end of the run."""
    from mg_eval.runlog import write_json_atomic
    from mg_train.console import summary_lines

    summary: dict[str, Any] = {
        "task": plan.stage,
        "backend": "llamafactory",
        "llamafactory_version": version,
        "train_loss": history.summary.get("train_loss"),
        "global_step": history.global_step,
        "best_checkpoint": history.best_checkpoint,
        "final_step": history.global_step if final else None,
        **{f"eval_{k}": v for k, v in final.items()},
    }
    serve = adapter_serve = None
    if plan.stage in EXPORTED:
        trained = Trained(
            stage=plan.stage,
            finetuning_type=str(args.get("finetuning_type", "lora")),  # LLaMA-Factory's default method
            base_model=str(args["model_name_or_path"]),
            lf_dir=lf_dir,
            max_length=int(args.get("cutoff_len", 2048)),  # LLaMA-Factory's default cutoff_len
        )
        training = {
            "task": plan.stage,
            "backend": f"llamafactory {version}",
            "finetuning_type": trained.finetuning_type,
            "base_model": trained.base_model,
            "epochs": args.get("num_train_epochs"),
            "learning_rate": args.get("learning_rate"),
            "steps": history.global_step,
        }
        try:
            exported = export(trained, plan.run_dir, training)
        except (OSError, ValueError) as e:
            raise BridgeError(f"exporting the model LLaMA-Factory saved in {lf_dir}: {e}") from None
        summary["model_dir"] = str(exported.path)
        if exported.adapter:
            summary["adapter_dir"] = str(exported.adapter)
        serve, adapter_serve = exported.serve_command, exported.adapter_serve_command
    else:
        log(f"stage {plan.stage}: the model stays in LLaMA-Factory's layout in {lf_dir} (not exported)")
    write_json_atomic(plan.run_dir / "train_summary.json", summary)
    runtime = history.summary.get("train_runtime")
    for line in summary_lines(summary, runtime, serve, best_loaded=False, adapter_command=adapter_serve):
        log(line)
    return summary
