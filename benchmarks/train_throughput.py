"""Training throughput: the loaders and the step, apart and together, on the same data.

Rows (images/s; each a separate measurement after warm-up steps):

  (a) train, DataLoader + PIL, eager   the plain torch DataLoader path (--loader dataloader)
  (b) train, batched loader, eager      the device loader (decode, cut, normalise batched)
  (c) train, batched loader, compiled   (b) with torch.compile
  loader alone: batched / DataLoader    batches only, no step
  step alone: eager / compiled          forward, backward and SGD on resident tensors

The training rows come from the runs' own summaries (data wait and compute per step,
device synchronised at each step end), so they include the loader's waits.

Examples:

    python benchmarks/train_throughput.py --device cuda --synthetic 20000 --batch-size 256
    python benchmarks/train_throughput.py --device cpu --data dataset/ --steps 20 --batch-size 16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from fastunlc.training.config import TrainConfig
from fastunlc.training.crops import CropRecipe
from fastunlc.training.loader import BatchLoader, reference_loader
from fastunlc.training.model import MaskAlexNet
from fastunlc.training.run import mask_loss, open_sources, train


def time_loader(batches, count: int, warmup: int, device: torch.device) -> float:
    """Images per second over ``count`` batches after ``warmup``."""
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    began = time.perf_counter()
    size = 0
    for _ in range(count):
        size += len(next(iterator).indices)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return size / (time.perf_counter() - began)


def time_step(config: TrainConfig, compiled: bool, count: int, warmup: int) -> float:
    device = torch.device(config.device)
    model = MaskAlexNet(config.batch_norm).to(device, memory_format=torch.channels_last)
    network = torch.compile(model) if compiled else model
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    inputs = torch.randn(config.batch_size, 3, 227, 227, device=device).contiguous(
        memory_format=torch.channels_last)
    target = (torch.rand(config.batch_size, 56, 56, device=device) > 0.7).float()
    weight = torch.ones_like(target)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step() -> None:
        with autocast:
            loss = mask_loss(network(inputs), target, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    began = time.perf_counter()
    for _ in range(count):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return config.batch_size * count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=("cpu", "cuda"))
    parser.add_argument("--data", action="append", default=[], metavar="DATASET")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="N generated samples of 366×650 (the working size of a 16:9 "
                             "video) when no --data is given [max(1024, 4 × batch)]")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50, help="measured steps per row")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured steps per row")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rows", default="a,b,c,loader,step",
                        help="comma-separated subset of a, b, c, loader, step")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    rows = set(args.rows.split(","))
    base = dict(data=tuple(args.data), synthetic=args.synthetic if not args.data else 0,
                device=args.device, batch_size=args.batch_size, workers=args.workers,
                steps=args.steps + args.warmup, log_every=max(1, args.warmup),
                checkpoint_every=10**9, warmup_steps=1, synthetic_size=(366, 650))
    if base["synthetic"] == 0 and not args.data:
        base["synthetic"] = max(1024, 4 * args.batch_size)
    config = TrainConfig(**base)
    device = torch.device(config.device)
    results: dict[str, float | None] = {}

    def train_row(name: str, **changes) -> None:
        with tempfile.TemporaryDirectory() as run:
            summary = train(TrainConfig(**{**base, **changes}), Path(run) / "run",
                            progress=False)
        results[name] = summary["images_per_s"]
        results[name + " data wait share"] = summary["data_wait_share"]

    if "a" in rows:
        train_row("(a) train, DataLoader + PIL, eager", loader="dataloader")
    if "b" in rows:
        train_row("(b) train, batched loader, eager")
    if "c" in rows:
        train_row("(c) train, batched loader, compiled", compile=True)
    if "loader" in rows:
        source = open_sources(config)
        common = dict(source=source, batch_size=config.batch_size, seed=0,
                      recipe=CropRecipe(), device=device, workers=config.workers)
        results["loader alone, batched"] = time_loader(BatchLoader(**common), args.steps,
                                                       args.warmup, device)
        results["loader alone, DataLoader + PIL"] = time_loader(
            reference_loader(**common), args.steps, args.warmup, device)
    if "step" in rows:
        results["step alone, eager"] = time_step(config, False, args.steps, args.warmup)
        results["step alone, compiled"] = time_step(config, True, args.steps, args.warmup)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        f"cpu, {torch.get_num_threads()} threads")
    print(f"device: {name}; batch {config.batch_size}; {args.steps} measured steps; "
          f"data: {', '.join(args.data) or f'synthetic {config.synthetic}'}")
    print("| row | images/s |\n| --- | ---: |")
    for row, value in results.items():
        print(f"| {row} | {value:,.3f} |" if "share" in row else f"| {row} | {value:,.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": results}, indent=1))


if __name__ == "__main__":
    main()
