"""The training run: sources, loader, step, checkpoints, logs and the profile.

A run folder holds::

    config.json        the run's TrainConfig
    checkpoint.pt      the latest checkpoint (model, optimiser, loader position, RNG
                       states of every rank, config), replaced atomically every
                       ``checkpoint_every`` steps; loaded with ``weights_only=True``
    weights.pt         the model's state dict under plain layer names (conv1 … fc7, mask),
                       written with each checkpoint
    log.csv            one row per ``log_every`` steps: loss, learning rate, images/s,
                       data wait and compute per step, peak memory
    tensorboard/       the same scalars for TensorBoard
    profile/           with ``--profile``: a torch.profiler trace TensorBoard opens
    summary.json       the run's throughput, time split, peak memory, FLOPs and MFU

Every step ends with a device synchronisation, so a step's time splits honestly into
*data wait* (blocked on the loader) and *compute* (forward, backward, optimiser).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ..files import atomic_path, atomic_write
from .config import TrainConfig
from .loader import BatchLoader, SampleOrder, reference_loader
from .model import MaskAlexNet, plain_state_dict, training_flops_per_image
from .sources import BuiltSource, ConcatSource, Source, SyntheticSource

CHECKPOINT = "checkpoint.pt"
WEIGHTS = "weights.pt"
LOG_FIELDS = ("step", "epoch", "loss", "lr", "images_per_s", "data_wait_ms", "compute_ms",
              "peak_memory_mb")
RESUMABLE_CHANGES = ("steps", "compile", "workers", "prefetch", "keep_in_memory",
                     "log_every", "checkpoint_every", "loader")
"""Config fields a resumed run may change: none of them changes the batches or the step."""

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12,
                   "A800": 312e12, "L40S": 362e12, "B200": 2250e12}
"""Dense bfloat16 tensor-core peak of GPUs by name (their data sheets), for MFU."""


class RunError(RuntimeError):
    """A run folder or a resumed run that does not fit the command."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in a ``torchrun`` job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @classmethod
    def from_environment(cls) -> Ranks:
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def open_sources(config: TrainConfig) -> Source:
    """The run's data as one source, in the order data, COCO, synthetic."""
    sources: list[Source] = [BuiltSource(path) for path in config.data]
    if config.coco:
        from .coco import CocoSource

        sources.append(CocoSource(config.coco, split=config.coco_split,
                                  fraction=config.coco_fraction, seed=config.seed,
                                  degrade_kernel=config.coco_degrade_kernel,
                                  truncate_fraction=config.coco_truncate))
    if config.synthetic:
        sources.append(SyntheticSource(config.synthetic, config.synthetic_size, seed=config.seed))
    return sources[0] if len(sources) == 1 else ConcatSource(sources)


def mask_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
              ) -> torch.Tensor:
    """The paper's loss: logistic loss summed over each mask's non-ignored pixels,
    averaged over the batch. All ``(B, 56, 56)``; computed in float32."""
    return F.binary_cross_entropy_with_logits(logits.float(), target, weight=weight,
                                              reduction="sum") / logits.shape[0]


def peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak of ``device`` in FLOP/s when known, else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_FLOPS.items() if key in name), None)


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """torch's RNG states, the CPU's and ``device``'s when it is a GPU (a checkpoint's
    part that makes a resumed run draw what an uninterrupted one draws)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def _gather(value: Any, ranks: Ranks) -> list[Any]:
    if ranks.world == 1:
        return [value]
    out: list[Any] = [None] * ranks.world
    dist.all_gather_object(out, value)
    return out


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary name, then rename: a reader never sees half a file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Log:
    """``log.csv`` and TensorBoard scalars of rank 0; a resumed run drops the rows after
    its checkpoint so that the log reads as one run."""

    def __init__(self, run: Path, start: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = run / "log.csv"
        rows = []
        if start and self.path.is_file():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        text = io.StringIO()
        writer = csv.DictWriter(text, LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.path, text.getvalue())
        self._file = open(self.path, "a", newline="")
        self._csv = csv.DictWriter(self._file, LOG_FIELDS)
        self.board = SummaryWriter(str(run / "tensorboard"), purge_step=start or None)

    def write(self, row: dict[str, Any]) -> None:
        self._csv.writerow(row)
        self._file.flush()
        for name in LOG_FIELDS[2:]:
            self.board.add_scalar(f"train/{name}", row[name], row["step"])

    def close(self) -> None:
        self._file.close()
        self.board.close()


def prepare_run(run: Path, config: TrainConfig, resume: bool, changed: dict[str, Any]
                ) -> tuple[TrainConfig, dict[str, Any] | None]:
    """The config a run goes on with and its checkpoint (None for a new run).

    A new run needs a folder without a checkpoint. A resumed one takes the checkpoint's
    config; ``changed`` (the fields the command line set) may alter only
    :data:`RESUMABLE_CHANGES`.

    Raises RunError with a one-line reason otherwise.
    """
    checkpoint_path = run / CHECKPOINT
    if not resume:
        if checkpoint_path.exists():
            raise RunError(f"{run}: holds a run already; pass --resume to continue it or "
                           "choose another --out")
        return config, None
    if not checkpoint_path.is_file():
        raise RunError(f"{run}: no {CHECKPOINT} to resume from")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunError(f"{checkpoint_path}: unreadable checkpoint ({err})") from None
    saved = TrainConfig.from_dict(checkpoint["config"])
    conflicts = [name for name, value in changed.items()
                 if name not in RESUMABLE_CHANGES and getattr(saved, name) != getattr(
                     TrainConfig.from_dict({**saved.to_dict(), name: value}), name)]
    if conflicts:
        raise RunError(f"{run}: --resume keeps the run's config; {', '.join(conflicts)} "
                       f"differ (only {', '.join(RESUMABLE_CHANGES)} may change)")
    merged = TrainConfig.from_dict({**saved.to_dict(),
                                    **{k: v for k, v in changed.items()
                                       if k in RESUMABLE_CHANGES}})
    if merged.steps <= checkpoint["step"] and merged.steps != saved.steps:
        raise RunError(f"{run}: steps={merged.steps} is not beyond the checkpoint's step "
                       f"{checkpoint['step']}")
    return merged, checkpoint


def train(config: TrainConfig, run: str | os.PathLike[str], resume: bool = False,
          changed: dict[str, Any] | None = None, profile: bool = False,
          peak_tflops: float | None = None, progress: bool = True) -> dict[str, Any]:
    """Train, checkpoint and log into the folder ``run``; returns the run's summary.

    Under ``torchrun`` every rank calls this; rank 0 writes the files. ``changed`` are the
    config fields the command line set (checked against a resumed run's config).

    Raises
    ------
    RunError, fastunlc.errors.InputError, fastunlc.training.loader.LoaderError, ValueError
        With one-line reasons: a run folder in use, missing or corrupt data, too few
        shards for the ranks.
    """
    run = Path(run)
    ranks = Ranks.from_environment()
    config, checkpoint = prepare_run(run, config, resume, changed or {})
    if config.device == "cuda" and not torch.cuda.is_available():
        raise RunError("device=cuda, but torch sees no GPU; pass --device cpu")
    device = (torch.device("cuda", ranks.local) if config.device == "cuda"
              else torch.device("cpu"))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if ranks.world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        return _train(config, run, ranks, device, checkpoint, profile, peak_tflops, progress)
    finally:
        if ranks.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(config: TrainConfig, run: Path, ranks: Ranks, device: torch.device,
           checkpoint: dict[str, Any] | None, profile: bool, peak_tflops: float | None,
           progress: bool) -> dict[str, Any]:
    from tqdm import tqdm

    source = open_sources(config)
    start = checkpoint["step"] if checkpoint else 0
    if checkpoint and checkpoint["world"] != ranks.world:
        raise RunError(f"{run}: the checkpoint was written by {checkpoint['world']} rank(s), "
                       f"this job has {ranks.world}; resume with the same number")
    with torch.random.fork_rng(devices=[]):  # counted on a throw-away copy
        flops_per_image = training_flops_per_image(MaskAlexNet(config.batch_norm))
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = MaskAlexNet(config.batch_norm, config.dropout)
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    if checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
        set_rng_state(checkpoint["rng"][ranks.rank], device)
    else:
        # Dropout masks differ between ranks, as the batches do.
        torch.manual_seed(int(np.random.SeedSequence([config.seed, ranks.rank, 2])
                              .generate_state(1)[0]))
    network = model
    if ranks.world > 1:
        network = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        network = torch.compile(network)

    position = checkpoint["loader"]["position"] if checkpoint else 0
    loader_args = dict(source=source, batch_size=config.batch_size, seed=config.seed,
                       recipe=config.crop_recipe(), device=device, rank=ranks.rank,
                       world=ranks.world, workers=config.workers, window=config.window,
                       channels_last=config.channels_last, position=position)
    if config.loader == "gpu":
        loader = BatchLoader(**loader_args, prefetch=config.prefetch,
                             keep_in_memory=config.keep_in_memory)
        rank_samples = loader.order.length
        batches = iter(loader)
    else:
        batches = reference_loader(**loader_args)
        rank_samples = SampleOrder(source, config.seed, ranks.rank, ranks.world,
                                   config.window).length

    leader = ranks.rank == 0
    if leader:
        run.mkdir(parents=True, exist_ok=True)
        atomic_write(run / "config.json", json.dumps(config.to_dict(), indent=1) + "\n")
        log = Log(run, start)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if config.bf16 and device.type == "cuda" else contextlib.nullcontext())
    profiler = _profiler(run, device) if profile and leader else None
    bar = tqdm(total=config.steps, initial=start, unit="step", disable=not (progress and
                                                                            leader))
    images_per_step = config.batch_size * ranks.world
    window = {"loss": torch.zeros((), device=device), "wait": 0.0, "compute": 0.0, "n": 0}
    totals = {"wait": 0.0, "compute": 0.0, "steps": 0}
    # The first steps (compilation, the first reads) are left out of the summary's rates.
    warm_from = start + min(config.log_every, max(0, config.steps - start - 1))
    network.train()
    began = time.perf_counter()
    for step in range(start, config.steps):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(step)
        with autocast:
            logits = network(batch.inputs)
        loss = mask_loss(logits, batch.target, batch.weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window["loss"] += loss.detach()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t2 = time.perf_counter()
        window["wait"] += t1 - t0
        window["compute"] += t2 - t1
        window["n"] += 1
        if step >= warm_from:
            totals["wait"] += t1 - t0
            totals["compute"] += t2 - t1
            totals["steps"] += 1
        if profiler is not None:
            profiler.step()
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            n = window["n"]
            mean_loss = float(window["loss"]) / n
            rate = images_per_step * n / (window["wait"] + window["compute"])
            if leader:
                log.write({"step": done, "epoch": (batch.position - 1) // rank_samples,
                           "loss": round(mean_loss, 5), "lr": config.lr_at(step),
                           "images_per_s": round(rate, 1),
                           "data_wait_ms": round(1e3 * window["wait"] / n, 3),
                           "compute_ms": round(1e3 * window["compute"] / n, 3),
                           "peak_memory_mb": round(_peak_memory_mb(device), 1)})
            bar.set_postfix(loss=f"{mean_loss:.1f}", img_s=f"{rate:,.0f}")
            window = {"loss": torch.zeros((), device=device), "wait": 0.0, "compute": 0.0,
                      "n": 0}
        bar.update(1)
        if done % config.checkpoint_every == 0 or done == config.steps:
            _checkpoint(run, model, optimizer, config, done, batch.position, ranks, device)
    bar.close()
    if profiler is not None:
        profiler.stop()
    elapsed = time.perf_counter() - began
    summary = _summary(config, ranks, device, totals, flops_per_image, peak_tflops,
                       elapsed, config.steps - start)
    digests = _gather(weights_digest(model), ranks)
    summary["ranks_in_sync"] = len(set(digests)) == 1
    if leader:
        log.close()
        atomic_write(run / "summary.json", json.dumps(summary, indent=1) + "\n")
    return summary


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters, byte for byte: equal on every rank of a DDP job
    whose replicas agree. (BatchNorm's running statistics are left out: each rank updates
    its own in the last forward pass, and DDP's next forward would broadcast rank 0's;
    the checkpoint holds rank 0's.)"""
    digest = hashlib.sha256()
    for name, value in model.named_parameters():
        digest.update(name.encode())
        digest.update(value.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _profiler(run: Path, device: torch.device) -> torch.profiler.profile:
    """A torch.profiler trace of steps 3-6 (after two to settle), for TensorBoard."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    profiler = torch.profiler.profile(
        activities=activities, schedule=torch.profiler.schedule(wait=1, warmup=1, active=4,
                                                                repeat=1),
        on_trace_ready=torch.profiler.tensorboard_trace_handler(str(run / "profile")),
        record_shapes=True, profile_memory=True)
    profiler.start()
    return profiler


def _checkpoint(run: Path, model: MaskAlexNet, optimizer: torch.optim.Optimizer,
                config: TrainConfig, step: int, position: int, ranks: Ranks,
                device: torch.device) -> None:
    rng = _gather(rng_state(device), ranks)
    if ranks.rank == 0:
        weights = plain_state_dict(model)
        save_atomic({"step": step, "model": weights, "optimizer": optimizer.state_dict(),
                     "config": config.to_dict(), "loader": {"position": position},
                     "rng": [{k: v.cpu() for k, v in r.items()} for r in rng],
                     "world": ranks.world}, run / CHECKPOINT)
        save_atomic(weights, run / WEIGHTS)
    if ranks.world > 1:
        dist.barrier()


def _summary(config: TrainConfig, ranks: Ranks, device: torch.device, totals: dict,
             flops_per_image: int, peak_tflops: float | None, elapsed: float, steps: int
             ) -> dict[str, Any]:
    measured = max(1, totals["steps"])
    step_s = (totals["wait"] + totals["compute"]) / measured
    rate = config.batch_size * ranks.world / step_s if totals["steps"] else None
    peak = peak_tflops * 1e12 if peak_tflops else peak_flops(device)
    achieved = flops_per_image * rate if rate else None
    return {
        "device": (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"cpu ({torch.get_num_threads()} threads)"),
        "ranks": ranks.world, "batch_size": config.batch_size, "steps": steps,
        "steps_measured": totals["steps"], "seconds": round(elapsed, 2),
        "images_per_s": round(rate, 1) if rate else None,
        "step_ms": round(1e3 * step_s, 3),
        "data_wait_ms": round(1e3 * totals["wait"] / measured, 3),
        "compute_ms": round(1e3 * totals["compute"] / measured, 3),
        "data_wait_share": round(totals["wait"] / max(1e-12, totals["wait"] +
                                                      totals["compute"]), 4),
        "peak_memory_mb": round(_peak_memory_mb(device), 1),
        "memory_kind": "GPU (max allocated)" if device.type == "cuda" else "host (peak RSS)",
        "training_flops_per_image": flops_per_image,
        "achieved_tflops": round(achieved / 1e12 / ranks.world, 3) if achieved else None,
        "mfu": round(achieved / ranks.world / peak, 4) if achieved and peak else None,
        "peak_tflops": peak / 1e12 if peak else None,
    }
