"""Fast R-CNN-style detection on PASCAL VOC with the AlexNet trunk (paper, section 6.1:
Table 1, Figures 8 and 10), built on torchvision's ``FasterRCNN``.

The detector
------------
* **Backbone**: the trunk's conv1 … conv5 (with their BatchNorm when it has one), ReLU
  after each, max pooling after conv1 and conv2 but not after conv5: 256 channels at a
  stride of 16 pixels.
* **Proposals**: torchvision's RPN on that map, anchors of 64, 128, 256 and 512 pixels at
  aspect ratios 0.5, 1 and 2 (12 per position; Faster R-CNN's 128-512 and one octave
  smaller, as the training scales reach 1200 pixels), otherwise torchvision's defaults
  (Faster R-CNN's: 256 anchors sampled per image, half positive; 2000 proposals per
  image in training, 1000 at test, NMS 0.7).
* **Box head**: RoI max pooling to 6 × 6 at scale 1/16 (Fast R-CNN's RoIPool), then the
  trunk's own fc6 (256·6·6 → 4096) and fc7 (the same parameters, not copies), each
  followed by ReLU and dropout 0.5 as in Fast R-CNN's CaffeNet; a new
  ``FastRCNNPredictor`` for the 20 classes and background, initialised as Fast R-CNN's
  (scores N(0, 0.01²), box deltas N(0, 0.001²), zero biases).
* **Input**: RGB in [0, 1] normalised with the trunk's mean and standard deviation
  (ImageNet's, :data:`fastunlc.training.crops.MEAN` / ``STD``), as it was trained.

Training (Fast R-CNN, Girshick 2015)
------------------------------------
* Each image's shorter side is drawn from ``scales`` (480, 576, 688, 864, 1200: Fast
  R-CNN's multi-scale setting), its longer side capped at ``max_size`` (2000); each
  image is flipped horizontally with probability 1/2; difficult objects are dropped
  from the targets.
* ``batch_size`` (2) images per step and ``rois_per_image`` (64) RoIs from each, Fast
  R-CNN's mini-batch of R = 128; 25% foreground (IoU ≥ 0.5 with an object), the rest
  background (IoU < 0.5; torchvision's sampler has no lower bound, Fast R-CNN's 0.1).
* SGD, momentum 0.9, weight decay 5e-4 on the weights; biases (and BatchNorm's
  parameters) at twice the learning rate without decay (Caffe's ``lr_mult: 2,
  decay_mult: 0`` of Fast R-CNN's nets). ``lr`` is from the paper's set {0.001, 0.002,
  0.003}; it drops ×0.1 after 3/4 of the iterations (Fast R-CNN on VOC 2007: 30k + 10k).
* ``freeze``: the trunk's layers up to and including it keep their weights, and their
  BatchNorm its statistics (:mod:`.trunk`); the RPN and the predictor always train.
* ``images`` (low-shot): that many training images drawn with ``seed`` from the split
  (the paper: 150; Figure 10 varies it).

Data: VOC 2012 train → val (the paper's Table 1) or VOC 2007 trainval → test (the common
protocol), the splits overridable. A run is reproducible from its config: the sample
order and flips come from ``numpy.random.default_rng`` seeded with the seed, the epoch
and the position, and the checkpoint carries torch's RNG states, so a resumed run gives
the weights an uninterrupted one gives (on the same device).

Testing
-------
At each of ``test_scales`` (by default the training scales) the detector keeps the
boxes scoring above 0.05 after per-class NMS at IoU 0.3 (Fast R-CNN's test settings);
the union over the scales goes through per-class NMS 0.3 again and the best 100 boxes of
the image are kept. This stands in for Fast R-CNN's multi-scale test, which pools each
RoI at the single scale where its area is closest to 224² in one pass. The boxes are
scored with :func:`.metrics.evaluate_detections` (VOC07 11-point and area AP).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops import batched_nms, roi_pool

from ..errors import InputError
from ..training.crops import MEAN, STD
from ..training.model import CONVS, MaskAlexNet
from ..training.run import rng_state, set_rng_state
from . import runs
from .metrics import Detections, evaluate_detections
from .trunk import FREEZE_CHOICES, RANDOM, freeze_trunk, keep_frozen_in_eval, load_trunk_weights
from .voc import VOC_CLASSES, image_ids, image_path, read_annotation, voc_folder

SPLITS = {"2007": ("trainval", "test"), "2012": ("train", "val")}
"""Per VOC year, the default (train, test) splits."""
LEARNING_RATES = (0.001, 0.002, 0.003)
"""The paper's learning rates for detection."""
SCALES = (480, 576, 688, 864, 1200)
"""Fast R-CNN's multi-scale shorter sides, in pixels."""
MAX_SIZE = 2000
"""Fast R-CNN's cap on the longer side in its multi-scale setting, in pixels."""
ANCHOR_SIZES = (64, 128, 256, 512)
ANCHOR_RATIOS = (0.5, 1.0, 2.0)
TEST_NMS = 0.3
"""Per-class NMS IoU at test time (Fast R-CNN's)."""
DETECTIONS_PER_IMAGE = 100
SCORE_THRESHOLD = 0.05
TASK = "detection"
# Tags that keep the numpy streams of the image pick, the order and the flips apart.
_PICK, _ORDER, _FLIP = 1, 2, 3


@dataclass(frozen=True)
class DetectionConfig:
    """What a detection run computes (its ``config.json``); the defaults are the module's
    settings. ``train_split`` / ``test_split`` None take :data:`SPLITS`; ``images`` None
    takes the whole training split.

    Raises ValueError naming the field when a value is out of range."""

    voc: str
    year: str = "2007"
    weights: str = RANDOM
    freeze: str = "none"
    train_split: str | None = None
    test_split: str | None = None
    images: int | None = None
    seed: int = 0
    lr: float = LEARNING_RATES[0]
    iterations: int = 40000
    batch_size: int = 2
    scales: tuple[int, ...] = SCALES
    test_scales: tuple[int, ...] = SCALES
    max_size: int = MAX_SIZE
    rois_per_image: int = 64
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step: float = 0.75
    """The fraction of the iterations after which the learning rate drops ×0.1."""
    label: str = ""
    """The run's row name in ``eval/table.py``'s report (empty: its weights' name)."""

    def __post_init__(self) -> None:
        if self.year not in SPLITS:
            raise ValueError(f"year must be one of {', '.join(SPLITS)}, got {self.year!r}")
        train, test = SPLITS[self.year]
        object.__setattr__(self, "train_split", self.train_split or train)
        object.__setattr__(self, "test_split", self.test_split or test)
        object.__setattr__(self, "scales", tuple(int(s) for s in self.scales))
        object.__setattr__(self, "test_scales", tuple(int(s) for s in self.test_scales))
        if self.freeze not in FREEZE_CHOICES:
            raise ValueError(f"freeze must be one of {', '.join(FREEZE_CHOICES)}, "
                             f"got {self.freeze!r}")
        for name in ("iterations", "batch_size", "max_size", "rois_per_image"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.images is not None and self.images < 1:
            raise ValueError(f"images must be at least 1, got {self.images}")
        for name in ("scales", "test_scales"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be positive pixel sizes, got "
                                 f"{getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if not 0 < self.lr_step <= 1:
            raise ValueError(f"lr_step must be in (0, 1], got {self.lr_step}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class AlexNetBackbone(nn.Module):
    """The trunk's conv1 … conv5 without conv5's pooling (its modules, shared).

    ``forward`` maps ``(B, 3, H, W)`` normalised images to ``(B, 256, h, w)`` conv5
    activations after ReLU, ``h ≈ H / 16``."""

    def __init__(self, trunk: MaskAlexNet) -> None:
        super().__init__()
        self.batch_norm = trunk.batch_norm
        for name, *_ in CONVS:
            self.add_module(name, getattr(trunk, name))
            if trunk.batch_norm:
                self.add_module(f"{name}_bn", getattr(trunk, f"{name}_bn"))
        self.pool = nn.MaxPool2d(3, 2)
        self.out_channels = CONVS[-1][2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name, *_, pool in CONVS:
            x = getattr(self, name)(x)
            if self.batch_norm:
                x = getattr(self, f"{name}_bn")(x)
            x = F.relu(x)
            if pool and name != CONVS[-1][0]:
                x = self.pool(x)
        return x


class RoIPool(nn.Module):
    """Fast R-CNN's RoI max pooling over the backbone's one map, with the signature
    torchvision's ``RoIHeads`` calls: ``(features, proposals, image_sizes)`` →
    ``(R, 256, 6, 6)``."""

    def __init__(self, output_size: int = 6, spatial_scale: float = 1 / 16) -> None:
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale

    def forward(self, features: dict[str, torch.Tensor], proposals: list[torch.Tensor],
                image_sizes: list[tuple[int, int]]) -> torch.Tensor:
        return roi_pool(features["0"], proposals, self.output_size, self.spatial_scale)


class AlexNetBoxHead(nn.Module):
    """The trunk's fc6 and fc7 (shared) with ReLU and dropout after each:
    ``(R, 256, 6, 6)`` pooled features → ``(R, 4096)``."""

    def __init__(self, trunk: MaskAlexNet, dropout: float = 0.5) -> None:
        super().__init__()
        self.fc6 = trunk.fc6
        self.fc7 = trunk.fc7
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(F.relu(self.fc6(torch.flatten(x, 1))))
        return self.drop(F.relu(self.fc7(x)))


def build_detector(trunk: MaskAlexNet, scales: Sequence[int] = SCALES,
                   max_size: int = MAX_SIZE, rois_per_image: int = 64) -> FasterRCNN:
    """torchvision's ``FasterRCNN`` on ``trunk`` (see the module for the settings).

    The new layers (RPN, predictor) are drawn from torch's global RNG. In training the
    shorter side is drawn from ``scales``; at test it is ``scales[-1]``."""
    predictor = FastRCNNPredictor(trunk.fc7.out_features, len(VOC_CLASSES) + 1)
    for layer, std in ((predictor.cls_score, 0.01), (predictor.bbox_pred, 0.001)):
        nn.init.normal_(layer.weight, std=std)
        nn.init.zeros_(layer.bias)
    model = FasterRCNN(
        AlexNetBackbone(trunk), min_size=tuple(scales), max_size=max_size,
        image_mean=list(MEAN), image_std=list(STD),
        rpn_anchor_generator=AnchorGenerator((ANCHOR_SIZES,), (ANCHOR_RATIOS,)),
        box_head=AlexNetBoxHead(trunk, trunk.drop.p), box_predictor=predictor,
        box_score_thresh=SCORE_THRESHOLD, box_nms_thresh=TEST_NMS,
        box_detections_per_img=DETECTIONS_PER_IMAGE, box_batch_size_per_image=rois_per_image,
        box_positive_fraction=0.25)
    # FasterRCNN's constructor takes MultiScaleRoIAlign only; RoIHeads calls any module
    # with its signature.
    model.roi_heads.box_roi_pool = RoIPool()
    return model


def parameter_groups(model: nn.Module, lr: float, weight_decay: float
                     ) -> list[dict[str, Any]]:
    """SGD groups of the trainable parameters: weights at ``lr`` with decay; biases and
    BatchNorm's 1-D parameters at ``2 lr`` without (Fast R-CNN's Caffe settings)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    weights = [p for p in trained if p.ndim > 1]
    others = [p for p in trained if p.ndim <= 1]
    return [{"params": weights, "lr": lr, "weight_decay": weight_decay},
            {"params": others, "lr": 2 * lr, "weight_decay": 0.0}]


def pick_images(ids: Sequence[str], count: int | None, seed: int) -> list[str]:
    """``count`` of ``ids`` drawn without replacement with ``seed``, in their list order
    (all of them for None).

    Raises ValueError when the list holds fewer."""
    if count is None:
        return list(ids)
    if count > len(ids):
        raise ValueError(f"--images {count}, but the training split lists {len(ids)}")
    picked = np.random.default_rng([_PICK, seed]).choice(len(ids), count, replace=False)
    return [ids[k] for k in sorted(picked)]


def read_image(path: Path) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB of a JPEG. Raises InputError when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise InputError(path, "missing image") from None
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(path, f"unreadable image ({type(err).__name__})") from None


class VOCBoxes(Dataset):
    """The images and boxes of a VOC split for torchvision's detectors.

    Items are keyed by ``(index, flip)`` and are ``(image, target)``: ``(3, h, w)`` uint8
    RGB and ``{"boxes": (n, 4) float32 x0, y0, x1, y1 end exclusive, "labels": (n,)
    int64 in 1..20}``, without the difficult objects when ``drop_difficult``, mirrored
    when ``flip``. :attr:`annotations` keeps every object, for scoring.

    Raises InputError for a missing annotation or image (checked when built)."""

    def __init__(self, root: Path, ids: Sequence[str], drop_difficult: bool = True) -> None:
        self.root = root
        self.ids = list(ids)
        self.drop_difficult = drop_difficult
        self.annotations = [read_annotation(root, image_id) for image_id in self.ids]
        for image_id in self.ids:
            if not image_path(root, image_id).is_file():
                raise InputError(image_path(root, image_id), "missing image")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, key: tuple[int, bool]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        index, flip = key
        image = read_image(image_path(self.root, self.ids[index]))
        annotation = self.annotations[index]
        keep = ~annotation.difficult if self.drop_difficult else np.ones(
            len(annotation.labels), bool)
        boxes = annotation.boxes[keep].copy()
        if flip:
            image = image[:, ::-1]
            width = image.shape[1]
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]  # exact with end-exclusive x1
        return (torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
                {"boxes": torch.from_numpy(boxes),
                 "labels": torch.from_numpy(annotation.labels[keep])})


class TrainOrder:
    """The batches of iterations ``start`` … ``stop - 1``: lists of ``batch_size``
    ``(index, flip)`` keys of :class:`VOCBoxes`.

    The training stream runs through epochs, each a permutation of the ``count`` images
    drawn from ``(seed, epoch)``; the flip of the sample at position ``k`` of an epoch
    comes from ``(seed, epoch, k)``. Iteration ``i`` takes stream positions
    ``i · batch_size …``, so any iteration's batch is known without replaying the ones
    before (what an exact resume needs)."""

    def __init__(self, count: int, batch_size: int, seed: int, start: int, stop: int) -> None:
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.start, self.stop = start, stop
        self._epoch: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def sample(self, position: int) -> tuple[int, bool]:
        epoch, k = divmod(position, self.count)
        if self._epoch is None or self._epoch[0] != epoch:
            order = np.random.default_rng([_ORDER, self.seed, epoch]).permutation(self.count)
            self._epoch = (epoch, order)
        flip = np.random.default_rng([_FLIP, self.seed, epoch, k]).random() < 0.5
        return int(self._epoch[1][k]), bool(flip)

    def __iter__(self) -> Iterator[list[tuple[int, bool]]]:
        for iteration in range(self.start, self.stop):
            first = iteration * self.batch_size
            yield [self.sample(first + j) for j in range(self.batch_size)]


def _to_device(batch: list, device: torch.device) -> tuple[list[torch.Tensor], list[dict]]:
    images = [image.to(device, non_blocking=True).float().div_(255) for image, _ in batch]
    targets = [{k: v.to(device, non_blocking=True) for k, v in target.items()}
               for _, target in batch]
    return images, targets


@torch.no_grad()
def detect(model: FasterRCNN, dataset: VOCBoxes, device: torch.device,
           scales: Sequence[int], workers: int = 0, progress: bool = False
           ) -> list[Detections]:
    """The detections of every image of ``dataset``, in its order, in the image's own
    pixels: each scale of ``scales`` in turn, their union merged per class by NMS at
    :data:`TEST_NMS`, the best :data:`DETECTIONS_PER_IMAGE` kept."""
    from tqdm import tqdm

    model.eval()
    loader = DataLoader(dataset, batch_sampler=[[(k, False)] for k in range(len(dataset))],
                        collate_fn=list, num_workers=workers)
    saved = model.transform.min_size
    out = []
    try:
        for batch in tqdm(loader, desc="test", unit="image", disable=not progress):
            images, _ = _to_device(batch, device)
            found = []
            for scale in scales:
                model.transform.min_size = (int(scale),)
                found.append(model(images)[0])
            boxes = torch.cat([f["boxes"] for f in found])
            scores = torch.cat([f["scores"] for f in found])
            labels = torch.cat([f["labels"] for f in found])
            keep = batched_nms(boxes, scores, labels, TEST_NMS)[:DETECTIONS_PER_IMAGE]
            out.append(Detections(boxes[keep].cpu().numpy(), scores[keep].cpu().numpy(),
                                  labels[keep].cpu().numpy()))
    finally:
        model.transform.min_size = saved
    return out


def _number(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)


def run_detection(config: DetectionConfig, run: str | Path, device: str = "cpu",
                  workers: int = 2, checkpoint_every: int = 1000, resume: bool = False,
                  progress: bool = True, keep_checkpoint: bool = False) -> dict[str, Any]:
    """Train the detector of ``config`` and score it on the test split; returns the run's
    ``results.json`` content.

    ``run`` gets ``config.json``, ``checkpoint.pt`` every ``checkpoint_every`` iterations
    and at the end of training (``resume`` continues from it), then ``results.csv`` (one
    row per class: ``class, ap_voc07, ap_area, positives, detections``; APs empty for a
    class without positives) and ``results.json`` (metrics ``map_voc07``, ``map_area``,
    ``classes_scored`` (those with positives), ``train_images``, ``test_images``).

    Raises
    ------
    InputError
        The VOC folder, a list, an annotation, an image or the weights cannot be used;
        the run folder does not fit (:class:`.runs.RunFolderError`).
    ValueError
        ``device`` is unavailable, ``images`` exceeds the split, the loss diverged.
    """
    from tqdm import tqdm

    began = time.perf_counter()
    target = runs.resolve_device(device)
    if checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    root = voc_folder(config.voc, config.year)
    train_ids = pick_images(image_ids(root, config.train_split), config.images, config.seed)
    train_set = VOCBoxes(root, train_ids, drop_difficult=True)
    test_set = VOCBoxes(root, image_ids(root, config.test_split), drop_difficult=False)
    trunk, _ = load_trunk_weights(config.weights, seed=config.seed)
    freeze_trunk(trunk, config.freeze)
    folder = runs.start_run(run, config.to_dict(), resume)
    checkpoint = runs.load_checkpoint(folder) if resume else None

    torch.manual_seed(config.seed)
    model = build_detector(trunk, config.scales, config.max_size, config.rois_per_image)
    model.to(target)
    optimizer = torch.optim.SGD(parameter_groups(model, config.lr, config.weight_decay),
                                lr=config.lr, momentum=config.momentum)
    milestone = max(1, round(config.lr_step * config.iterations))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [milestone], gamma=0.1)
    start = 0
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        start = int(checkpoint["iteration"])
        set_rng_state(checkpoint["rng"], target)

    order = TrainOrder(len(train_set), config.batch_size, config.seed, start,
                       config.iterations)
    # Its own generator: the loader then draws nothing from torch's global RNG, whose
    # state the checkpoint carries.
    loader = DataLoader(train_set, batch_sampler=order, collate_fn=list,
                        num_workers=workers, pin_memory=target.type == "cuda",
                        generator=torch.Generator().manual_seed(config.seed))
    model.train()
    keep_frozen_in_eval(trunk)
    bar = tqdm(total=config.iterations, initial=start, desc="train", unit="it",
               disable=not progress)
    for iteration, batch in enumerate(loader, start):
        images, targets = _to_device(batch, target)
        loss = sum(model(images, targets).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        done = iteration + 1
        if done % 10 == 0 or done == config.iterations:
            value = loss.item()  # a sync every 10 steps only
            if not np.isfinite(value):
                raise ValueError(f"the loss is {value} at iteration {done}; try a lower --lr")
            bar.set_postfix(loss=f"{value:.3f}")
        bar.update()
        if done % checkpoint_every == 0 or done == config.iterations:
            runs.save_checkpoint(folder, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "iteration": done,
                "rng": rng_state(target)})
    bar.close()

    detections = detect(model, test_set, target, config.test_scales, workers, progress)
    scored = evaluate_detections(detections, test_set.annotations, VOC_CLASSES)
    rows = [{"class": c.name, "ap_voc07": _number(c.ap_voc07), "ap_area": _number(c.ap_area),
             "positives": c.positives, "detections": c.detections} for c in scored.classes]
    metrics = {"map_voc07": _number(scored.map_voc07), "map_area": _number(scored.map_area),
               "classes_scored": sum(c.positives > 0 for c in scored.classes),
               "train_images": len(train_set), "test_images": len(test_set)}
    return runs.write_results(folder, TASK, config.to_dict(), metrics, rows,
                              time.perf_counter() - began, keep_checkpoint)
