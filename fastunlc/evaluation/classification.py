"""Image classification on the trunk: PASCAL VOC 2007 (20 classes, multi-label) and
Stanford 40 Actions (40 classes, one per image), the paper's section 6.

The network is the trunk (conv1 … fc7, with its dropout before fc6 and fc7) and a new
linear fc8 after a dropout, initialised ``N(0, 0.01²)`` with zero bias: 20 outputs and
a logistic loss per class for VOC 2007, the entries of "difficult"-only classes (label
0) left out of the loss; 40 outputs and softmax cross-entropy for Stanford 40.

Recipe (the defaults; batch, iterations and learning-rate schedule are those of
Krähenbühl et al. 2016's VOC 2007 classification code, which also jitters the scale and
uses a weight decay of 1e-6): images resized so that their shorter side is 256 px;
training on random 227 × 227 crops flipped horizontally half the time, 16 per batch,
for 80,000 iterations; SGD, momentum 0.9, weight decay 5e-4 (the trunk's own training
value), learning rate 0.001 halved every 10,000 iterations; testing on 10 crops (the
four corners and the centre, and their mirror images), whose outputs are averaged
(:func:`ten_crop_scores`). VOC trains on ``trainval`` and tests on ``test``; Stanford
40 on its train and test lists.

Metrics (:mod:`.ranking`): per-class AP, ``map`` its mean (the mean precision at each
positive, as Krähenbühl et al.'s protocol reports) and ``map_11point`` (VOC 2007's
devkit), over the classes with a positive test image; Stanford 40 adds the accuracy of
each class and ``mean_accuracy``, their mean.

Randomness: iteration ``i``'s images come from a permutation of the training set per
epoch, ``default_rng([seed, epoch])``; each image's crop and flip from
``default_rng([seed, epoch, index])``; dropout from ``torch.manual_seed`` of
``(seed, i)``. A resumed run thus computes exactly what an uninterrupted one does. The
fine-tuning loop here (:func:`fine_tune`) is also :mod:`.segmentation`'s.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..training.crops import normalise
from ..training.model import INPUT_SIZE, MaskAlexNet
from . import runs, stanford40, voc
from .ranking import class_aps, one_vs_rest
from .trunk import FREEZE_CHOICES, freeze_trunk, keep_frozen_in_eval, load_trunk_weights

RESIZE = 256
"""Shorter side, in pixels, that classification images are resized to."""


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


SCHEDULE = Schedule(iterations=80_000, batch_size=16, lr=0.001, lr_step=10_000, lr_gamma=0.5)
"""Classification's defaults (see the module)."""
SCHEDULE_FIELDS = tuple(f.name for f in fields(Schedule))


@dataclass(frozen=True)
class Task:
    """A classification benchmark read from its folder.

    Attributes
    ----------
    name : str
        ``"voc07"`` or ``"stanford40"``.
    source : str
        The folder it was read from.
    classes : tuple of str
    train_images, test_images : list of Path
    train_labels, test_labels : ndarray
        ``(n, C)`` int8 1 / 0 (ignored) / -1 for a multi-label task, ``(n,)`` int64
        class indices for a single-label one.
    """

    name: str
    source: str
    classes: tuple[str, ...]
    train_images: list[Path]
    train_labels: np.ndarray
    test_images: list[Path]
    test_labels: np.ndarray

    @property
    def multilabel(self) -> bool:
        return self.train_labels.ndim == 2


def voc07_task(devkit: str | os.PathLike[str]) -> Task:
    """VOC 2007 ``trainval`` → ``test`` from ``devkit/VOC2007``, labels as the devkit's
    classification lists give them (:func:`.voc.image_labels`).

    Raises InputError naming a missing list, annotation or image."""
    root = voc.voc_folder(devkit, "2007")

    def split(name: str) -> tuple[list[Path], np.ndarray]:
        ids = voc.image_ids(root, name)
        labels = np.stack([voc.image_labels(voc.read_annotation(root, i)) for i in ids])
        return [voc.image_path(root, i) for i in ids], labels

    train, test = split("trainval"), split("test")
    return Task("voc07", str(devkit), voc.VOC_CLASSES, *train, *test)


def stanford40_task(folder: str | os.PathLike[str]) -> Task:
    """Stanford 40 Actions' train and test lists (:mod:`.stanford40`).

    Raises InputError naming what is missing."""
    root = stanford40.stanford40_folder(folder)
    actions = stanford40.read_actions(root)
    train = stanford40.read_split(root, "train", actions)
    test = stanford40.read_split(root, "test", actions)
    return Task("stanford40", str(folder), tuple(actions), *train, *test)


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


class TrainBatches(torch.utils.data.Dataset):
    """Item ``i``: iteration ``i``'s batch, ``(B, 3, 227, 227)`` uint8 crops and their
    labels (``(B, C)`` int8 or ``(B,)`` int64), as the module describes."""

    def __init__(self, task: Task, schedule: Schedule, resize: int = RESIZE) -> None:
        self.images, self.labels = task.train_images, torch.from_numpy(task.train_labels)
        self.batch_size, self.seed, self.resize = schedule.batch_size, schedule.seed, resize
        self.length = schedule.iterations
        self.order = SampleOrder(len(self.images), schedule.seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, iteration: int) -> tuple[torch.Tensor, torch.Tensor]:
        crops, picked = [], []
        for slot in range(self.batch_size):
            epoch, index = self.order(iteration * self.batch_size + slot)
            image = load_image(self.images[index], self.resize)
            rng = np.random.default_rng([self.seed, epoch, index])
            y = int(rng.integers(0, image.shape[1] - INPUT_SIZE + 1))
            x = int(rng.integers(0, image.shape[2] - INPUT_SIZE + 1))
            crop = image[:, y:y + INPUT_SIZE, x:x + INPUT_SIZE]
            crops.append(crop.flip(-1) if rng.random() < 0.5 else crop)
            picked.append(index)
        return torch.stack(crops), self.labels[picked]


class TestImages(torch.utils.data.Dataset):
    """Item ``k``: test image ``k`` resized (``(3, h, w)`` uint8)."""

    def __init__(self, images: list[Path], resize: int = RESIZE) -> None:
        self.images, self.resize = images, resize

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, k: int) -> torch.Tensor:
        return load_image(self.images[k], self.resize)


class Classifier(nn.Module):
    """The trunk (its mask head removed) and a new fc8: ``(B, 3, 227, 227)`` normalised
    images → ``(B, classes)`` logits."""

    def __init__(self, trunk: MaskAlexNet, classes: int, seed: int = 0) -> None:
        super().__init__()
        del trunk.mask
        self.trunk = trunk
        self.fc8 = nn.Linear(4096, classes)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nn.init.normal_(self.fc8.weight, std=0.01)
        nn.init.zeros_(self.fc8.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc8(self.trunk.drop(self.trunk.features(x, "fc7")))


def ten_crop_scores(model: nn.Module, image: torch.Tensor, crop: int = INPUT_SIZE
                    ) -> torch.Tensor:
    """The mean of ``model``'s outputs over ten ``crop × crop`` crops of ``image``: its
    four corners, its centre (offsets ``(H - crop) // 2``, ``(W - crop) // 2``) and the
    mirror images of these five.

    ``image`` is ``(3, H, W)`` float, normalised, on the model's device, with
    ``H, W >= crop``; returns ``(C,)``. The model's mode is left as it is (call
    ``model.eval()`` first for test scores)."""
    _, height, width = image.shape
    if height < crop or width < crop:
        raise ValueError(f"image must be at least {crop} x {crop}, got {height} x {width}")
    dy, dx = height - crop, width - crop
    corners = ((0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2))
    crops = torch.stack([image[:, y:y + crop, x:x + crop] for y, x in corners])
    with torch.no_grad():
        return model(torch.cat([crops, crops.flip(-1)])).mean(0)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean logistic loss over the non-ignored entries of ``(B, C)`` int8 labels
    (1 / 0 ignored / -1), or softmax cross-entropy for ``(B,)`` class indices."""
    if labels.ndim == 1:
        return F.cross_entropy(logits, labels)
    weight = (labels != 0).float()
    loss = F.binary_cross_entropy_with_logits(logits, (labels > 0).float(), weight,
                                              reduction="sum")
    return loss / weight.sum().clamp(min=1)


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


def add_fine_tune_arguments(parser: argparse.ArgumentParser, defaults: Schedule) -> None:
    """The options of ``eval/classification.py`` and ``eval/segmentation.py`` (their
    weights, freezing, run folder and :class:`Schedule`; ``defaults`` for the help)."""
    parser.add_argument("--weights", required=True, metavar="PATH|random",
                        help="a train/ run folder, a .pt state dict (plain or torchvision "
                             "AlexNet names) or 'random'")
    parser.add_argument("--freeze", choices=FREEZE_CHOICES, default="none",
                        help="last trunk layer kept fixed (default: none)")
    parser.add_argument("--out", required=True, metavar="RUN", help="the run folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint.pt (same options)")
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
    parser.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                        help="write checkpoint.pt every N iterations (default 1000)")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        help="default: cuda when torch sees a GPU")
    parser.add_argument("--workers", type=int, default=4,
                        help="image-reading processes (default 4; 0: in this one)")
    parser.add_argument("--keep-checkpoint", action="store_true",
                        help="keep checkpoint.pt when the run finishes (default: deleted; "
                             "results.json is the finished run)")
    parser.add_argument("--label", default="",
                        help="the initialisation's name in eval/table.py's report "
                             "(default: the weights' file or run-folder name)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def schedule_from_args(args: argparse.Namespace, defaults: Schedule) -> Schedule:
    """``defaults`` with the options given (:func:`add_fine_tune_arguments`)."""
    return defaults.replace(**{name: getattr(args, name) for name in SCHEDULE_FIELDS})


def loader(dataset: torch.utils.data.Dataset, indices: Iterable[int], workers: int,
           device: torch.device) -> torch.utils.data.DataLoader:
    """Items ``indices`` of ``dataset`` in order, each as the dataset returns it, read by
    ``workers`` processes (0: in this one)."""
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=list(indices),
                                       num_workers=workers, pin_memory=device.type == "cuda")


@torch.no_grad()
def test_scores(model: Classifier, task: Task, device: torch.device, resize: int = RESIZE,
                workers: int = 0, progress: bool = False) -> np.ndarray:
    """``(n, C)`` float32 10-crop scores of the test images."""
    from tqdm import tqdm

    model.eval()
    images = loader(TestImages(task.test_images, resize), range(len(task.test_images)),
                    workers, device)
    out = []
    for image in tqdm(images, total=len(task.test_images), unit="img", desc="test",
                      disable=not progress):
        x = normalise(image.to(device, non_blocking=True).float()[None])[0]
        out.append(ten_crop_scores(model, x).float().cpu())
    return torch.stack(out).numpy()


def _number(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


def classification_metrics(task: Task, scores: np.ndarray
                           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's metrics and one row per class from ``(n, C)`` test scores."""
    labels = (task.test_labels if task.multilabel
              else one_vs_rest(task.test_labels, len(task.classes)))
    area, eleven = class_aps(scores, labels), class_aps(scores, labels, use_07=True)
    scored = ~np.isnan(area)
    metrics: dict[str, Any] = {
        "map": _number(area[scored].mean()) if scored.any() else None,
        "map_11point": _number(eleven[scored].mean()) if scored.any() else None,
        "classes_scored": int(scored.sum()), "test_images": len(scores)}
    rows = [{"class": name, "positives": int((labels[:, k] > 0).sum()),
             "ap": _number(area[k]), "ap_11point": _number(eleven[k])}
            for k, name in enumerate(task.classes)]
    if not task.multilabel:
        predicted = scores.argmax(1)
        accuracy = np.array([(predicted[task.test_labels == k] == k).mean()
                             if (task.test_labels == k).any() else np.nan
                             for k in range(len(task.classes))])
        metrics["mean_accuracy"] = _number(np.nanmean(accuracy))
        metrics["accuracy"] = _number((predicted == task.test_labels).mean())
        for row, value in zip(rows, accuracy, strict=True):
            row["accuracy"] = _number(value)
    return metrics, rows


def run_classification(task: Task, weights: str, freeze: str, out: str | os.PathLike[str], *,
                       schedule: Schedule = SCHEDULE, resize: int = RESIZE,
                       resume: bool = False, device: str | None = "cpu", workers: int = 0,
                       checkpoint_every: int = 1000, progress: bool = True, label: str = "",
                       keep_checkpoint: bool = False
                       ) -> dict[str, Any]:
    """Fine-tune on ``task``'s training images, score its test images, write ``out``'s
    results (:func:`.runs.write_results`, task ``"classification"``); returns them.

    ``resume`` continues ``out``'s run from its checkpoint (its config must be this
    one). Raises InputError for unusable data, weights or run folder, ValueError for
    bad settings."""
    began = time.perf_counter()
    if resize < INPUT_SIZE:
        raise ValueError(f"resize must be >= {INPUT_SIZE} (the crop), got {resize}")
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    target = runs.resolve_device(device)
    config = {"dataset": task.name, "data": task.source, "weights": str(weights),
              "freeze": freeze, "resize": resize, "label": label, **asdict(schedule)}
    trunk, loaded = load_trunk_weights(weights, seed=schedule.seed)
    run = runs.start_run(out, config, resume)
    checkpoint = runs.load_checkpoint(run) if resume else None
    model = Classifier(trunk, len(task.classes), seed=schedule.seed)
    parameters = [*freeze_trunk(model.trunk, freeze), *model.fc8.parameters()]
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
    model.to(target)

    def backward(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        crops, labels = (t.to(target, non_blocking=True) for t in batch)
        loss = classification_loss(model(normalise(crops.float())), labels)
        loss.backward()
        return loss.detach()

    start = checkpoint["iteration"] if checkpoint else 0
    batches = loader(TrainBatches(task, schedule, resize), range(start, schedule.iterations),
                     workers, target)
    fine_tune(model, parameters, schedule, batches, backward, run, checkpoint,
              checkpoint_every, progress, desc=f"{task.name} fine-tune")
    scores = test_scores(model, task, target, resize, workers, progress)
    metrics, rows = classification_metrics(task, scores)
    return runs.write_results(run, "classification",
                              {**config, "device": target.type, "trunk_layers_loaded": loaded},
                              metrics, rows, time.perf_counter() - began, keep_checkpoint)
