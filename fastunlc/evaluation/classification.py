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
sample order, the dropout seeds and the fine-tuning loop are :mod:`.finetune`'s, which
:mod:`.segmentation` uses too.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..training.crops import normalise
from ..training.model import INPUT_SIZE, MaskAlexNet
from . import runs, stanford40, voc
from .finetune import SampleOrder, Schedule, fine_tune, load_image, loader
from .ranking import class_aps, one_vs_rest
from .trunk import freeze_trunk, load_trunk_weights

RESIZE = 256
"""Shorter side, in pixels, that classification images are resized to."""


SCHEDULE = Schedule(iterations=80_000, batch_size=16, lr=0.001, lr_step=10_000, lr_gamma=0.5)
"""Classification's defaults (see the module)."""
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
