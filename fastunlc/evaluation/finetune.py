"""What the classification and segmentation transfers fine-tune with alike: the SGD
schedule (:class:`Schedule`) and its command-line options, the order of the training
samples, image reading, the data loader, and the loop that trains, checkpoints and
resumes (:func:`fine_tune`).

Randomness: iteration ``i``'s samples come from a permutation of the training set per
epoch, ``default_rng([seed, epoch])`` (:class:`SampleOrder`), and its dropout from
``torch.manual_seed`` of ``(seed, i)`` (:func:`iteration_seed`); whatever else a task
draws (classification's crops and flips) comes from seeds of its own. A resumed run
thus computes exactly what an uninterrupted one does.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import InputError
from . import runs
from .trunk import keep_frozen_in_eval


@dataclass(frozen=True)
class Schedule:
    """How a transfer run fine-tunes: iterations, batch and SGD.

    Attributes
    ----------
    iterations : int
        SGD steps (0: evaluate the initial network).
    batch_size : int
        Images per step.
    lr : float
        Learning rate of the first step.
    lr_step, lr_gamma : int, float
        The rate is multiplied by ``lr_gamma`` every ``lr_step`` steps (0: fixed).
    momentum, weight_decay : float
        SGD's.
    seed : int
        Seeds the sample order, the crops, dropout and new layers' weights.
    """

    iterations: int
    batch_size: int
    lr: float
    lr_step: int
    lr_gamma: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0

    def __post_init__(self) -> None:
        checks = (("iterations", self.iterations >= 0, ">= 0"),
                  ("batch_size", self.batch_size >= 1, ">= 1"),
                  ("lr", self.lr > 0, "> 0"), ("lr_step", self.lr_step >= 0, ">= 0"),
                  ("lr_gamma", 0 < self.lr_gamma <= 1, "in (0, 1]"),
                  ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
                  ("weight_decay", self.weight_decay >= 0, ">= 0"))
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)}")

    def lr_at(self, iteration: int) -> float:
        if not self.lr_step:
            return self.lr
        return self.lr * self.lr_gamma ** (iteration // self.lr_step)

    def replace(self, **changes: Any) -> Schedule:
        """A copy with the given fields changed (``None`` values ignored)."""
        values = asdict(self)
        values.update({k: v for k, v in changes.items() if v is not None})
        return Schedule(**values)


SCHEDULE_FIELDS = tuple(f.name for f in fields(Schedule))
"""The names of :class:`Schedule`'s fields, which are also its options' ``dest``."""


def iteration_seed(seed: int, iteration: int) -> int:
    """The torch seed of iteration ``iteration`` (its dropout masks)."""
    return int(np.random.SeedSequence([seed, iteration, 1]).generate_state(1)[0])


class SampleOrder:
    """Which training sample fills each slot: a fresh permutation of ``n`` samples per
    epoch, ``default_rng([seed, epoch])``, read in order from position 0."""

    def __init__(self, n: int, seed: int) -> None:
        if n < 1:
            raise ValueError("no training sample")
        self.n, self.seed = n, seed
        self._epoch, self._permutation = -1, np.empty(0, np.int64)

    def __call__(self, position: int) -> tuple[int, int]:
        """``(epoch, sample index)`` of slot ``position`` (0, 1, …)."""
        epoch = position // self.n
        if epoch != self._epoch:
            self._epoch = epoch
            self._permutation = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return epoch, int(self._permutation[position % self.n])


def load_image(path: Path, shorter: int | None = None) -> torch.Tensor:
    """``(3, h, w)`` uint8 RGB of the image at ``path``, resized (bilinear, antialiased)
    so that its shorter side is ``shorter`` pixels when given.

    Raises InputError for a missing or undecodable file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if shorter is not None:
                scale = shorter / min(image.size)
                size = (max(shorter, round(image.width * scale)),
                        max(shorter, round(image.height * scale)))
                image = image.resize(size, Image.BILINEAR)
            array = np.asarray(image, np.uint8)
    except FileNotFoundError:
        raise InputError(path, "missing image") from None
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(path, f"not a readable image ({type(err).__name__})") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def loader(dataset: torch.utils.data.Dataset, indices: Iterable[int], workers: int,
           device: torch.device) -> torch.utils.data.DataLoader:
    """Items ``indices`` of ``dataset`` in order, each as the dataset returns it, read by
    ``workers`` processes (0: in this one)."""
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=list(indices),
                                       num_workers=workers, pin_memory=device.type == "cuda")


def fine_tune(model: nn.Module, parameters: list[nn.Parameter], schedule: Schedule,
              batches: Iterable[Any], backward: Callable[[Any], torch.Tensor], run: Path,
              checkpoint: dict[str, Any] | None, checkpoint_every: int, progress: bool,
              desc: str) -> None:
    """SGD on ``parameters`` for the iterations left after ``checkpoint``.

    ``batches`` yields the batches of those iterations in order; ``backward(batch)``
    computes the loss, calls its ``backward()`` and returns it detached. ``model`` (with
    a ``trunk`` whose frozen layers stay in eval mode) has the checkpoint's weights
    already; the optimizer state comes from it here. ``RUN/checkpoint.pt`` is written
    every ``checkpoint_every`` iterations and at the end."""
    from tqdm import tqdm

    start = checkpoint["iteration"] if checkpoint else 0
    optimizer = torch.optim.SGD(parameters, lr=schedule.lr, momentum=schedule.momentum,
                                weight_decay=schedule.weight_decay)
    if checkpoint:
        optimizer.load_state_dict(checkpoint["optimizer"])
    model.train()
    keep_frozen_in_eval(model.trunk)
    bar = tqdm(total=schedule.iterations, initial=start, unit="it", desc=desc,
               disable=not progress)
    for iteration, batch in zip(range(start, schedule.iterations), batches, strict=True):
        for group in optimizer.param_groups:
            group["lr"] = schedule.lr_at(iteration)
        torch.manual_seed(iteration_seed(schedule.seed, iteration))
        optimizer.zero_grad(set_to_none=True)
        loss = backward(batch)
        optimizer.step()
        done = iteration + 1
        if done % 10 == 0 or done == schedule.iterations:
            bar.set_postfix(loss=f"{float(loss):.4f}", lr=f"{schedule.lr_at(iteration):.2g}")
        bar.update(1)
        if done % checkpoint_every == 0 or done == schedule.iterations:
            runs.save_checkpoint(run, {
                "iteration": done, "optimizer": optimizer.state_dict(),
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}})
    bar.close()


def add_schedule_arguments(parser: argparse.ArgumentParser, defaults: Schedule) -> None:
    """Add the options of a :class:`Schedule`, each None unless given (``defaults``, the
    program's, show in the help; :func:`schedule_from_args` fills them in)."""
    parser.add_argument("--iterations", type=int,
                        help=f"SGD steps (default {defaults.iterations:,})")
    parser.add_argument("--batch-size", type=int,
                        help=f"images per step (default {defaults.batch_size})")
    parser.add_argument("--lr", type=float, help=f"learning rate (default {defaults.lr:g})")
    parser.add_argument("--lr-step", type=int,
                        help=f"iterations between decays, 0 for a fixed rate (default "
                             f"{defaults.lr_step:,})")
    parser.add_argument("--lr-gamma", type=float,
                        help=f"factor of each decay (default {defaults.lr_gamma:g})")
    parser.add_argument("--momentum", type=float, help=f"default {defaults.momentum:g}")
    parser.add_argument("--weight-decay", type=float,
                        help=f"default {defaults.weight_decay:g}")
    parser.add_argument("--seed", type=int, help=f"default {defaults.seed}")


def schedule_from_args(args: argparse.Namespace, defaults: Schedule) -> Schedule:
    """``defaults`` with the options given (:func:`add_schedule_arguments`)."""
    return defaults.replace(**{name: getattr(args, name) for name in SCHEDULE_FIELDS})
