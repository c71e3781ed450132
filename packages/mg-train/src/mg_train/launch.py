"""Multi-process training on a machine without CUDA (torchrun + gloo), with or without DeepSpeed.

`mg-train --nproc-per-node N` relaunches itself under torchrun; each process then builds the HF Trainer. On
a CPU-only machine accelerate (which the Trainer runs on) gets that wrong in two ways:

- plain DDP: without `use_cpu` accelerate calls the run single-process (`DistributedType.NO`), so every
  process trains alone on all the data. `use_cpu=True` makes it a gloo `MULTI_CPU` run.
- DeepSpeed: the Trainer cannot combine `use_cpu` with a DeepSpeed config (accelerate skips DeepSpeed when
  `cpu=True`), and without it accelerate finds no backend and reports every process as process 0 of 1
  (the same mis-detection as `accelerate launch --use_deepspeed` on CPU), while DeepSpeed itself has
  initialized a correct gloo group. We copy world size and ranks from that group into accelerate's state.
"""

from __future__ import annotations

import dataclasses
import os


def distributed_args(args):
    """The TrainingArguments to train with in this process: `args` itself, or a copy fixed for CPU torchrun."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return args
    import torch

    if torch.cuda.is_available():
        return args
    if not args.deepspeed:
        if args.use_cpu:
            return args
        # A copy re-runs __post_init__, so accelerate's state is set up again, now as a gloo MULTI_CPU run.
        return dataclasses.replace(args, use_cpu=True, ddp_backend=args.ddp_backend or "gloo")
    if args.use_cpu:
        from mg_train.errors import ConfigError

        raise ConfigError(
            "use_cpu turns DeepSpeed off in the HF Trainer; leave use_cpu out (without CUDA mg-train runs "
            "DeepSpeed over gloo by itself)"
        )
    _repair_deepspeed_cpu_state(args)
    return args


def _repair_deepspeed_cpu_state(args) -> None:
    import torch.distributed as dist
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    args.device  # noqa: B018  (sets up accelerate's state and DeepSpeed's process group if not yet done)
    state = PartialState()
    if state.distributed_type != DistributedType.DEEPSPEED or not dist.is_initialized():
        raise RuntimeError(
            f"DeepSpeed under torchrun on CPU: expected accelerate's DeepSpeed state and an initialized "
            f"process group, got {state.distributed_type} (initialized: {dist.is_initialized()})"
        )
    if state.num_processes == dist.get_world_size():
        return  # a fixed accelerate
    state.backend = dist.get_backend()
    state.num_processes = dist.get_world_size()
    state.process_index = dist.get_rank()
    state.local_process_index = int(os.environ.get("LOCAL_RANK", "0"))
