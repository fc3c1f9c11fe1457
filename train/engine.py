"""Where a training process runs: one CPU/GPU, or one rank of a `torchrun` job (DDP or FSDP2).

    dist = init_distributed()           # reads torchrun's RANK / WORLD_SIZE / LOCAL_RANK
    model = wrap_model(model, dist, strategy="ddp", activation_checkpointing=False,
                       compile=False)
    with autocast(dist.device): loss = ...
    shutdown(dist)

- Single process (no WORLD_SIZE, or 1): nothing is initialised; rank 0 of 1.
- torchrun: NCCL on GPUs (one per LOCAL_RANK), gloo on CPU. `ddp` replicates the model and
  all-reduces gradients; `fsdp` shards every transformer block and the root with FSDP2
  (`fully_shard`, bf16 compute and fp32 reductions on GPU) for models whose weights,
  gradients and AdamW state do not fit one device.
- Activation checkpointing recomputes each transformer block in the backward pass (memory
  for compute); state-dict keys are unchanged (torch strips the wrapper's prefix).
- Autocast: bf16 on GPU, off (fp32) on CPU.
- `--compile`: torch.compile (inductor) after wrapping; on CPU it needs a C++ compiler,
  checked up front (`check_compile`).

Weights and optimizer state go in and out as full (unsharded) state dicts keyed by the plain
module names, whatever the wrapping (`full_model_state`, `full_optimizer_state`, ...).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from curation.errors import UsageError

STRATEGIES = ("ddp", "fsdp")


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    local_rank: int
    device: Any  # torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed() -> Dist:
    """This process's place in the job; initialises the process group under torchrun."""
    import torch
    import torch.distributed as td

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1 and not td.is_initialized():
        backend = "nccl" if cuda else "gloo"
        td.init_process_group(backend=backend, device_id=device if cuda else None)
    return Dist(rank=rank, world_size=world, local_rank=local, device=device)


def shutdown(dist: Dist) -> None:
    import torch.distributed as td

    if dist.distributed and td.is_initialized():
        td.destroy_process_group()


def barrier(dist: Dist) -> None:
    import torch.distributed as td

    if dist.distributed:
        td.barrier()


def all_gather_object(obj: Any, dist: Dist) -> list[Any]:
    """Every rank's `obj`, in rank order (a list of one outside torchrun)."""
    import torch.distributed as td

    if not dist.distributed:
        return [obj]
    out: list[Any] = [None] * dist.world_size
    td.all_gather_object(out, obj)
    return out


def mean_across_ranks(value: Any, dist: Dist) -> Any:
    """All-reduce a tensor to its mean over ranks (a host sync: call it only when logging)."""
    import torch.distributed as td

    if dist.distributed:
        value = value.clone()
        td.all_reduce(value)
        value /= dist.world_size
    return value


def _is_block(module: Any) -> bool:
    from timm.models.vision_transformer import Block

    return isinstance(module, Block)


def wrap_model(
    model: Any, dist: Dist, *, strategy: str, activation_checkpointing: bool, compile: bool
) -> Any:
    """Checkpoint, shard or replicate, then compile `model` (already on `dist.device`).

    Returns the module to call for training; `unwrap` gives back the plain one.
    """
    import torch

    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if activation_checkpointing:
        from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
            apply_activation_checkpointing,
        )

        apply_activation_checkpointing(model, check_fn=_is_block)
    if strategy == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = MixedPrecisionPolicy(
            param_dtype=torch.bfloat16 if dist.device.type == "cuda" else None,
            reduce_dtype=torch.float32,
        )
        blocks = [m for m in model.modules() if _is_block(m)]
        for block in blocks:  # each block gathers its weights just in time, frees them after
            fully_shard(block, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
    elif dist.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ids = [dist.device.index] if dist.device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    if compile:
        model = torch.compile(model)
    return model


def check_compile(device: Any) -> None:
    """`--compile` on CPU builds C++ kernels: UsageError (one line) when no compiler runs.

    Inductor looks for `$CXX`, else g++ (torch._inductor.config.cpp.cxx); without one the
    run would fail at its first step with a long traceback, after the run folder exists.
    """
    if device.type != "cpu":
        return
    from torch._inductor import config, cpp_builder, exc

    try:
        cpp_builder.get_cpp_compiler()
    except exc.InvalidCxxCompiler as err:
        tried = [c for c in config.cpp.cxx if c]
        raise UsageError(
            f"--compile on CPU needs a C++ compiler and none of {tried} runs: install g++ "
            "or set CXX, or train without --compile"
        ) from err


def unwrap(model: Any) -> Any:
    """The plain module under torch.compile and DDP (FSDP2 shards in place: itself)."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


@contextlib.contextmanager
def gradient_sync(model: Any, enabled: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on accumulation micro-steps (DDP and FSDP2)."""
    inner = getattr(model, "_orig_mod", model)
    if enabled:
        if hasattr(inner, "set_requires_gradient_sync"):
            inner.set_requires_gradient_sync(True)
        yield
    elif hasattr(inner, "no_sync"):
        with inner.no_sync():
            yield
    elif hasattr(inner, "set_requires_gradient_sync"):
        inner.set_requires_gradient_sync(False)
        yield
    else:
        yield


def autocast(device: Any) -> Any:
    """bf16 autocast on GPU; a no-op context on CPU (fp32)."""
    import torch

    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _options(**kwargs: Any) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, **kwargs)


def full_model_state(model: Any) -> dict[str, Any]:
    """Plain-named full weights on CPU (collective under FSDP; only rank 0's is complete)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(unwrap(model), options=_options(cpu_offload=True))


def full_optimizer_state(model: Any, optimizer: Any) -> dict[str, Any]:
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(unwrap(model), optimizer, options=_options(cpu_offload=True))


def load_full_model_state(model: Any, state: dict[str, Any]) -> None:
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    set_model_state_dict(unwrap(model), state, options=_options(strict=True))


def load_full_optimizer_state(model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    set_optimizer_state_dict(unwrap(model), optimizer, state, options=_options())


def memory_gb(device: Any) -> float:
    """Peak memory of this process: CUDA allocator peak, or the CPU resident-set peak."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
