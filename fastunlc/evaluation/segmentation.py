"""Semantic segmentation on the trunk: FCN-32s (Long et al. 2015) on PASCAL VOC 2011, the
paper's section 6 (Figure 9).

The network (:class:`FCN32s`): the trunk's conv1 … conv5, fc6 made a 6 × 6 convolution
and fc7 a 1 × 1 one with the same weights (each output cell applies fc6 and fc7 to a
6 × 6 block of pool5 cells; on a 227 × 227 input, exactly what the trunk computes),
dropout after fc6 and fc7 as FCN has it, a new 1 × 1 score convolution to 21 classes
(initialised to zero, as FCN's ``score_fr``), and a fixed bilinear upsampling ×32 back
to the input's pixels. The input is padded by 100 px of the mean colour on each side
(FCN's ``pad: 100`` of conv1), so that every image of at least 27 px gets a score map.
Coarse cell ``i`` then looks at the input around pixel ``32 i + 13`` (the centre of its
227-px window); the upsampling interpolates the cells bilinearly at each pixel's
position between those centres and holds the outer cells' values beyond them
(:func:`upsample_scores`): what FCN-AlexNet's fixed bilinear deconvolution (kernel 63,
stride 32) and its crop compute between the centres (beyond them its scores fade
towards zero instead).

Data: VOC 2011 ``ImageSets/Segmentation/train`` and SBD's ``train.txt`` less the
images of VOC 2011 ``val`` (and less those VOC's train has, whose VOC annotation is
kept), :func:`training_ids`; tested on VOC 2011 ``val``. Without SBD the training set
is VOC 2011 train alone. Void pixels (255) are ignored by the loss and by the scores.

Recipe (the defaults, FCN-AlexNet's solver in Long et al.'s reference code): whole
images at full resolution, one at a time, no augmentation; the loss is the mean
cross-entropy over an image's labelled pixels, averaged over the 20 images of an
iteration (FCN's ``iter_size: 20``); SGD, momentum 0.9, weight decay 5e-4, fixed
learning rate 1e-4, 100,000 iterations. (One learning rate for all parameters: FCN
doubles the score layer's bias rate.) Sample order and dropout are seeded as
:mod:`.finetune` describes, so a resumed run computes what an uninterrupted one
does.

Metrics from the confusion matrix over all test pixels (:func:`confusion`): mean IoU
(:func:`mean_iou`, over the classes present in the labels or the predictions), pixel
accuracy, mean per-class accuracy and frequency-weighted IoU, as FCN's ``score.py``
computes them.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError
from ..training.crops import normalise
from ..training.model import INPUT_SIZE, MaskAlexNet
from . import runs, voc
from .finetune import SampleOrder, Schedule, fine_tune, load_image, loader
from .trunk import freeze_trunk, load_trunk_weights

CLASSES = ("background", *voc.VOC_CLASSES)
"""The 21 labels of VOC segmentation: 0 background, then the devkit's classes."""
PAD = 100
"""Mean-colour margin added to each side of the input, in pixels (FCN's)."""
STRIDE = 32
"""Input pixels between neighbouring score cells."""
CENTRE = (INPUT_SIZE - 1) // 2 - PAD
"""Input pixel (row or column) at the centre of score cell 0's window: 13."""

SCHEDULE = Schedule(iterations=100_000, batch_size=20, lr=1e-4, lr_step=0, lr_gamma=1.0)
"""Segmentation's defaults (see the module)."""


class FCN32s(nn.Module):
    """FCN-32s on ``trunk``, whose fc6 and fc7 become convolutions and whose mask head
    is removed: ``(B, 3, H, W)`` normalised images → ``(B, 21, H, W)`` logits.

    The trunk keeps its layer names (``trunk.fc6`` is the 6 × 6 convolution), so that
    :func:`.trunk.freeze_trunk` freezes ``model.trunk`` as it freezes the trunk."""

    def __init__(self, trunk: MaskAlexNet, classes: int = len(CLASSES)) -> None:
        super().__init__()
        fc6 = nn.Conv2d(256, 4096, 6)
        fc7 = nn.Conv2d(4096, 4096, 1)
        with torch.no_grad():
            fc6.weight.copy_(trunk.fc6.weight.view(4096, 256, 6, 6))
            fc6.bias.copy_(trunk.fc6.bias)
            fc7.weight.copy_(trunk.fc7.weight.view(4096, 4096, 1, 1))
            fc7.bias.copy_(trunk.fc7.bias)
        trunk.fc6, trunk.fc7 = fc6, fc7
        del trunk.mask
        self.trunk = trunk
        self.score = nn.Conv2d(4096, classes, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def dense_features(self, x: torch.Tensor, upto: str = "fc7", pad: int = PAD
                       ) -> torch.Tensor:
        """fc6's or fc7's activations (after ReLU, before the dropout that follows) at
        every cell: ``(B, 4096, h, w)`` with ``h = (H + 2 pad - 227) // 32 + 1`` and ``w``
        alike, ``pad`` the mean-colour margin. Cell ``(i, j)`` is fc6 on the 6 × 6 block of
        pool5 cells at ``(i, j)``, which sees the padded input around pixel
        ``(32 i + 113, 32 j + 113)``; with ``pad=0`` a 227 × 227 input gives one cell, the
        trunk's fc6 / fc7 of it."""
        if upto not in ("fc6", "fc7"):
            raise ValueError(f"upto must be fc6 or fc7, got {upto!r}")
        x = self.trunk.features(F.pad(x, (pad, pad, pad, pad)), "conv5")
        x = self.trunk.relu(self.trunk.fc6(x))
        if upto == "fc6":
            return x
        return self.trunk.relu(self.trunk.fc7(self.trunk.drop(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = self.score(self.trunk.drop(self.dense_features(x)))
        return upsample_scores(coarse, tuple(x.shape[-2:]))


def _interpolation(length: int, cells: int, device: torch.device) -> torch.Tensor:
    """``(length, cells)`` float32 weights: pixel ``y`` mixes the two cells around its
    position ``(y - 13) / 32`` on the cell grid, clamped to the grid's ends."""
    position = ((torch.arange(length, dtype=torch.float64) - CENTRE) / STRIDE).clamp(
        0, cells - 1)
    low = position.floor().long().clamp(max=max(cells - 2, 0))
    high = (low + 1).clamp(max=cells - 1)
    frac = position - low
    weights = torch.zeros(length, cells, dtype=torch.float64)
    rows = torch.arange(length)
    weights[rows, low] += 1 - frac
    weights[rows, high] += frac
    return weights.float().to(device)


def upsample_scores(coarse: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(B, C, h, w)`` cell scores → ``(B, C, H, W)`` pixel scores, ``size = (H, W)``:
    bilinear between the cells' window centres (pixel ``32 i + 13`` takes cell ``i``'s
    value exactly), constant beyond the outer ones."""
    rows = _interpolation(size[0], coarse.shape[-2], coarse.device).to(coarse.dtype)
    cols = _interpolation(size[1], coarse.shape[-1], coarse.device).to(coarse.dtype)
    return torch.einsum("yh,bchw,xw->bcyx", rows, coarse, cols)


def training_ids(voc_root: Path, sbd_root: Path | None) -> list[tuple[str, str]]:
    """The training images as ``(source, image id)`` pairs, ``source`` ``"voc"`` or
    ``"sbd"``: VOC 2011 segmentation ``train``, then SBD ``train`` less the images of
    VOC's segmentation ``val`` (the test set) and of its ``train`` (already in).

    ``voc_root`` is ``VOCdevkit/VOC2011``, ``sbd_root`` SBD's ``dataset/`` folder
    (:func:`.voc.sbd_folder`) or None (VOC alone)."""
    train = voc.image_ids(voc_root, "train", "Segmentation")
    pairs = [("voc", image_id) for image_id in train]
    if sbd_root is not None:
        left_out = set(train) | set(voc.image_ids(voc_root, "val", "Segmentation"))
        pairs += [("sbd", i) for i in voc.sbd_ids(sbd_root, "train") if i not in left_out]
    return pairs


def read_sample(voc_root: Path, sbd_root: Path | None, source: str, image_id: str
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(3, h, w)`` uint8 image and ``(h, w)`` uint8 labels (255 void) of one image.

    Raises InputError for a missing file or an image and labels of different sizes."""
    if source == "voc":
        path = voc.image_path(voc_root, image_id)
        labels = voc.read_segmentation(voc_root, image_id)
    else:
        path = sbd_root / "img" / f"{image_id}.jpg"
        labels = voc.read_sbd_segmentation(sbd_root, image_id)
    image = load_image(path)
    if tuple(image.shape[1:]) != labels.shape:
        raise InputError(path, f"image is {tuple(image.shape[1:])}, its segmentation "
                               f"{labels.shape}")
    return image, torch.from_numpy(labels)


class TrainImages(torch.utils.data.Dataset):
    """Item ``i``: iteration ``i``'s ``batch_size`` samples, a list of :func:`read_sample`
    pairs in the order :class:`.finetune.SampleOrder` gives."""

    def __init__(self, voc_root: Path, sbd_root: Path | None, pairs: list[tuple[str, str]],
                 schedule: Schedule) -> None:
        self.voc_root, self.sbd_root, self.pairs = voc_root, sbd_root, pairs
        self.batch_size, self.length = schedule.batch_size, schedule.iterations
        self.order = SampleOrder(len(pairs), schedule.seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, iteration: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [read_sample(self.voc_root, self.sbd_root,
                            *self.pairs[self.order(iteration * self.batch_size + k)[1]])
                for k in range(self.batch_size)]


class TestImages(torch.utils.data.Dataset):
    """Item ``k``: VOC test image ``k`` and its labels (:func:`read_sample`)."""

    def __init__(self, voc_root: Path, ids: list[str]) -> None:
        self.voc_root, self.ids = voc_root, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return read_sample(self.voc_root, None, "voc", self.ids[k])


def confusion(pred: np.ndarray, gt: np.ndarray, classes: int = len(CLASSES),
              ignore: int = voc.VOID) -> np.ndarray:
    """``(classes, classes)`` int64 pixel counts, row the label and column the
    prediction, of same-shape integer label maps; pixels labelled ``ignore`` are left
    out. Raises ValueError for other values outside ``0 … classes - 1``."""
    pred, gt = np.asarray(pred).ravel(), np.asarray(gt).ravel()
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same size, got {pred.size} and "
                         f"{gt.size}")
    keep = gt != ignore
    pred, gt = pred[keep].astype(np.int64), gt[keep].astype(np.int64)
    for name, values in (("pred", pred), ("gt", gt)):
        if values.size and (values.min() < 0 or values.max() >= classes):
            raise ValueError(f"{name} holds labels outside 0..{classes - 1}")
    return np.bincount(classes * gt + pred, minlength=classes * classes).reshape(
        classes, classes)


def class_iou(conf: np.ndarray) -> np.ndarray:
    """``(C,)`` float64 IoU per class; NaN for a class neither labelled nor predicted."""
    conf = np.asarray(conf, np.float64)
    union = conf.sum(0) + conf.sum(1) - np.diag(conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(conf) / union


def mean_iou(conf: np.ndarray) -> float:
    """Mean of :func:`class_iou` over the classes labelled or predicted."""
    return float(np.nanmean(class_iou(conf)))


def class_accuracy(conf: np.ndarray) -> np.ndarray:
    """``(C,)`` float64 fraction of each class's labelled pixels predicted as it; NaN
    for a class without labelled pixels."""
    conf = np.asarray(conf, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(conf) / conf.sum(1)


def segmentation_scores(conf: np.ndarray) -> dict[str, float]:
    """Mean IoU, pixel accuracy, mean accuracy and frequency-weighted IoU."""
    conf = np.asarray(conf, np.float64)
    iou = class_iou(conf)
    frequency = conf.sum(1) / conf.sum()
    seen = frequency > 0
    return {"mean_iou": mean_iou(conf), "pixel_accuracy": float(np.trace(conf) / conf.sum()),
            "mean_accuracy": float(np.nanmean(class_accuracy(conf))),
            "frequency_weighted_iou": float((frequency[seen] * iou[seen]).sum())}


@torch.no_grad()
def test_confusion(model: FCN32s, voc_root: Path, ids: list[str], device: torch.device,
                   workers: int = 0, progress: bool = False) -> np.ndarray:
    """The confusion matrix of ``model``'s predictions over the test images ``ids``."""
    from tqdm import tqdm

    model.eval()
    total = np.zeros((len(CLASSES), len(CLASSES)), np.int64)
    samples = loader(TestImages(voc_root, ids), range(len(ids)), workers, device)
    for image, labels in tqdm(samples, total=len(ids), unit="img", desc="test",
                              disable=not progress):
        x = normalise(image.to(device, non_blocking=True).float()[None])
        pred = model(x)[0].argmax(0).cpu().numpy()
        total += confusion(pred, labels.numpy())
    return total


def run_segmentation(devkit: str | os.PathLike[str], sbd: str | os.PathLike[str] | None,
                     weights: str, freeze: str, out: str | os.PathLike[str], *,
                     schedule: Schedule = SCHEDULE, resume: bool = False,
                     device: str | None = "cpu", workers: int = 0, checkpoint_every: int = 1000,
                     progress: bool = True, label: str = "",
                     keep_checkpoint: bool = False) -> dict[str, Any]:
    """Train FCN-32s on VOC 2011 train (+ SBD train), score VOC 2011 val, write
    ``out``'s results (:func:`.runs.write_results`, task ``"segmentation"``, one row per
    class); returns them.

    Raises InputError for unusable data, weights or run folder, ValueError for bad
    settings."""
    began = time.perf_counter()
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
    target = runs.resolve_device(device)
    voc_root = voc.voc_folder(devkit, "2011")
    sbd_root = voc.sbd_folder(sbd) if sbd is not None else None
    pairs = training_ids(voc_root, sbd_root)
    test_ids = voc.image_ids(voc_root, "val", "Segmentation")
    config = {"dataset": "voc2011", "voc": str(devkit), "sbd": None if sbd is None else str(sbd),
              "weights": str(weights), "freeze": freeze, "label": label, **asdict(schedule)}
    trunk, loaded = load_trunk_weights(weights, seed=schedule.seed)
    run = runs.start_run(out, config, resume)
    checkpoint = runs.load_checkpoint(run) if resume else None
    model = FCN32s(trunk)
    parameters = [*freeze_trunk(model.trunk, freeze), *model.score.parameters()]
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
    model.to(target)

    def backward(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        total = torch.zeros((), device=target)
        for image, labels in batch:
            labels = labels.to(target, non_blocking=True).long()[None]
            if not (labels != voc.VOID).any():
                continue  # nothing to learn from (and a NaN mean)
            x = normalise(image.to(target, non_blocking=True).float()[None])
            loss = F.cross_entropy(model(x), labels, ignore_index=voc.VOID) / len(batch)
            loss.backward()
            total += loss.detach()
        return total

    start = checkpoint["iteration"] if checkpoint else 0
    batches = loader(TrainImages(voc_root, sbd_root, pairs, schedule),
                     range(start, schedule.iterations), workers, target)
    fine_tune(model, parameters, schedule, batches, backward, run, checkpoint,
              checkpoint_every, progress, desc="FCN-32s fine-tune")
    conf = test_confusion(model, voc_root, test_ids, target, workers, progress)
    metrics: dict[str, Any] = {k: round(v, 6) for k, v in segmentation_scores(conf).items()}
    metrics.update(training_images=len(pairs), test_images=len(test_ids),
                   sbd_images=sum(source == "sbd" for source, _ in pairs))
    iou, accuracy = class_iou(conf), class_accuracy(conf)
    rows = [{"class": name, "pixels": int(conf[k].sum()),
             "iou": None if np.isnan(iou[k]) else round(float(iou[k]), 6),
             "accuracy": None if np.isnan(accuracy[k]) else round(float(accuracy[k]), 6)}
            for k, name in enumerate(CLASSES)]
    return runs.write_results(run, "segmentation",
                              {**config, "device": target.type, "trunk_layers_loaded": loaded},
                              metrics, rows, time.perf_counter() - began, keep_checkpoint)
