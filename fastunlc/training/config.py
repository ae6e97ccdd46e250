"""The training run's configuration: one typed, validated record, saved with every
checkpoint, read from a JSON file and overridden from the command line.

Defaults are the recipe this project trains with (the paper states the network, the
crops and the loss, not the optimiser): SGD with momentum 0.9 and weight decay 5·10⁻⁴,
batch 256, learning rate 0.001 after a linear warm-up of 1,000 steps (the loss is a sum
over 3,136 cells, so its gradient is that many times a per-pixel mean's), then a cosine
decay to zero at ``steps``. The loss is summed over a mask's non-ignored pixels and
averaged over the batch (the paper's logistic loss).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .crops import CropRecipe


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run is made of (see the module for the recipe).

    Data: ``data`` (built dataset folders), ``coco`` (a COCO folder) with ``coco_split``,
    ``coco_fraction`` (of its images), ``coco_degrade_kernel`` (px, erode or dilate at
    random; 0 off) and ``coco_truncate`` (fraction of the box area cut from one side;
    0 off); ``synthetic`` (that many generated samples, for tests and benchmarks).
    """

    data: tuple[str, ...] = ()
    coco: str | None = None
    coco_split: str = "train2017"
    coco_fraction: float = 1.0
    coco_degrade_kernel: int = 0
    coco_truncate: float = 0.0
    synthetic: int = 0
    synthetic_size: tuple[int, int] = (240, 320)
    steps: int = 100_000
    batch_size: int = 256
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 1000
    batch_norm: bool = True
    dropout: float = 0.5
    seed: int = 0
    device: str = "cuda"
    compile: bool = False
    bf16: bool = True
    channels_last: bool = True
    loader: str = "gpu"
    workers: int = 4
    window: int = 4
    prefetch: int = 3
    keep_in_memory: bool = False
    checkpoint_every: int = 1000
    log_every: int = 20
    recipe: dict[str, float] = field(default_factory=lambda: asdict(CropRecipe()))

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", tuple(str(d) for d in self.data))
        object.__setattr__(self, "synthetic_size", tuple(int(v) for v in self.synthetic_size))
        if len(self.synthetic_size) != 2 or min(self.synthetic_size) < 16:
            raise ValueError(f"synthetic_size must be two sides >= 16 px, got "
                             f"{self.synthetic_size}")
        positive = ("steps", "batch_size", "workers", "window", "prefetch",
                    "checkpoint_every", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "synthetic", "coco_degrade_kernel"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name, ok, expected in (
                ("lr", self.lr > 0 and math.isfinite(self.lr), "a positive number"),
                ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
                ("weight_decay", self.weight_decay >= 0, ">= 0"),
                ("dropout", 0 <= self.dropout < 1, "in [0, 1)"),
                ("coco_fraction", 0 < self.coco_fraction <= 1, "in (0, 1]"),
                ("coco_truncate", 0 <= self.coco_truncate < 1, "in [0, 1)"),
                ("device", self.device in ("cpu", "cuda"), "cpu or cuda"),
                ("loader", self.loader in LOADERS, " or ".join(LOADERS))):
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)!r}")
        if not (self.data or self.coco or self.synthetic):
            raise ValueError("no training data: give --data DATASET, --coco DIR or "
                             "--synthetic N")
        self.crop_recipe()  # validates the recipe's values

    def crop_recipe(self) -> CropRecipe:
        unknown = set(self.recipe) - {f.name for f in fields(CropRecipe)}
        if unknown:
            raise ValueError(f"recipe: unknown field(s) {', '.join(sorted(unknown))}")
        return CropRecipe(**self.recipe)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["data"] = list(self.data)
        out["synthetic_size"] = list(self.synthetic_size)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based): linear warm-up, cosine decay."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.steps - self.warmup_steps)
        return 0.5 * self.lr * (1 + math.cos(math.pi * min(1.0, (step - self.warmup_steps)
                                                            / span)))


LOADERS = {"gpu": "the batched loader: decodes, cuts and normalises whole batches on the "
                  "device (also runs on the CPU)",
           "dataloader": "the plain torch DataLoader: per-sample PIL decoding in worker "
                         "processes (the reference path)"}

_HELP = {
    "data": "a dataset folder written by `fastunlc build` (repeatable)",
    "coco": "a COCO folder (annotations/instances_SPLIT.json, SPLIT/*.jpg): instance masks, "
            "class labels discarded",
    "coco_split": "COCO split to read", "coco_fraction": "fraction of COCO's images to use",
    "coco_degrade_kernel": "erode or dilate each COCO mask with this kernel (px; 0: off)",
    "coco_truncate": "cut this fraction of the box area from one side of each COCO mask",
    "synthetic": "add this many generated samples (tests, benchmarks)",
    "synthetic_size": "height and width of the generated samples, px",
    "steps": "optimiser steps in all", "batch_size": "images per step and rank",
    "lr": "peak learning rate", "momentum": "SGD momentum", "weight_decay": "L2 weight decay",
    "warmup_steps": "linear warm-up steps", "batch_norm": "BatchNorm after each convolution",
    "dropout": "dropout before fc6, fc7 and the mask layer", "seed": "seed of everything random",
    "device": "cpu or cuda", "compile": "torch.compile the model",
    "bf16": "bfloat16 autocast (CUDA only)", "channels_last": "channels-last memory format",
    "loader": "; ".join(f"{k}: {v}" for k, v in LOADERS.items()),
    "workers": "reader threads (gpu loader) or worker processes (dataloader)",
    "window": "shards shuffled together", "prefetch": "batches prepared ahead",
    "keep_in_memory": "keep the compressed dataset in host memory after the first epoch",
    "checkpoint_every": "write a checkpoint every N steps", "log_every": "log every N steps",
    "recipe": "crop recipe as JSON (object_span, scale_jitter, shift_jitter, flip, "
              "negative_below, positive_above)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per field, defaulting to None (unset), so that a config file's value
    stays unless the command line names it."""
    group = parser.add_argument_group("run configuration (defaults in brackets; a --config "
                                      "file's values apply unless a flag is given)")
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = TrainConfig.__dataclass_fields__[f.name]
        shown = default.default if f.name != "recipe" else "DeepMask's"
        text = f"{_HELP[f.name]} [{shown if shown != () else 'none'}]"
        if f.type in ("bool",):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                               help=text)
        elif f.name == "data":
            group.add_argument(flag, action="append", metavar="DATASET", default=None,
                               help=text)
        elif f.name == "synthetic_size":
            group.add_argument(flag, type=int, nargs=2, metavar=("H", "W"), default=None,
                               help=text)
        elif f.name == "recipe":
            group.add_argument(flag, type=json.loads, metavar="JSON", default=None, help=text)
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            group.add_argument(flag, type=kind, default=None, help=text,
                               metavar=f.name.upper())


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the command line set."""
    return {f.name: getattr(args, f.name) for f in fields(TrainConfig)
            if getattr(args, f.name, None) is not None}


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """Defaults, then the JSON file ``path`` (a bare object of fields, or a run's
    ``config.json``), then ``overrides``.

    Raises ValueError with a one-line reason for an unreadable file or a bad value."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not a readable JSON config ({err})") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: a config file holds a JSON object of fields")
    values.update(overrides)
    return TrainConfig.from_dict(values)
