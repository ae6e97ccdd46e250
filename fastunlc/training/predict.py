"""The trained network's masks for frames, folders and videos, written as
``fastunlc segment`` writes uNLC's (``OUT/NAME/masks/NNNNN.png``, ``report.json``,
``preview.png``), so that the two can be compared and previewed with the same tools.

The network sees each whole frame resized to 227×227 (aspect ratio not kept, as a crop
of the frame would be at training time) and predicts a 56×56 mask, which is resized
bilinearly back to the frame's size.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..output import ResultWriter, contact_sheet, overlay, unique_names
from ..video import IMAGE_EXTENSIONS, FrameSource
from .crops import normalise
from .model import INPUT_SIZE, MaskAlexNet, read_weights, weights_file


def load_weights(path: str | os.PathLike[str], device: torch.device | str = "cpu"
                 ) -> MaskAlexNet:
    """The network from a run's ``weights.pt`` (plain layer names) or ``checkpoint.pt``,
    in eval mode; BatchNorm when the weights have it.

    Raises InputError when the file is missing or holds no mask network."""
    path = weights_file(path)
    state = read_weights(path)
    if "mask.weight" not in state:
        raise InputError(path, "holds no mask network (no mask.weight)")
    model = MaskAlexNet(batch_norm="conv1_bn.weight" in state)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise InputError(path, f"weights do not fit the network: {str(err).splitlines()[0]}"
                         ) from None
    return model.to(device).eval()


@torch.no_grad()
def predict_frames(model: MaskAlexNet, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Soft masks ``(h, w)`` float32 in [0, 1] for RGB uint8 frames ``(h, w, 3)``."""
    device = next(model.parameters()).device
    inputs = torch.stack([
        F.interpolate(torch.from_numpy(f).permute(2, 0, 1)[None].float().to(device),
                      size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True,
                      align_corners=False)[0] for f in frames])
    probabilities = model.predict(normalise(inputs))
    return [F.interpolate(p[None, None], size=f.shape[:2], mode="bilinear",
                          align_corners=False)[0, 0].cpu().numpy()
            for p, f in zip(probabilities, frames, strict=True)]


def _frames(path: Path) -> Iterator[tuple[int, np.ndarray]]:
    if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError(path, "cannot be read as an image")
        yield 0, image[:, :, ::-1].copy()
        return
    yield from FrameSource(path).frames()


def predict_input(model: MaskAlexNet, path: str | os.PathLike[str], out: str | os.PathLike[str],
                  name: str, batch_size: int = 64, preview: bool = True,
                  weights: str = "") -> Path:
    """Write the network's masks for every frame of one input into ``out/name``.

    Returns the finished folder (published only when complete)."""
    began = time.perf_counter()
    writer = ResultWriter(out, name)
    tiles: list[tuple[str, np.ndarray]] = []
    try:
        count = 0
        batch: list[tuple[int, np.ndarray]] = []
        frames = _frames(Path(path))
        while True:
            item = next(frames, None)
            if item is not None:
                batch.append(item)
            if batch and (item is None or len(batch) == batch_size):
                masks = predict_frames(model, [f for _, f in batch])
                for (index, frame), mask in zip(batch, masks, strict=True):
                    writer.write_mask(index, mask)
                    if preview and len(tiles) < 8 and index % 10 == 0:
                        tiles.append((f"frame {index}", overlay(frame, mask)))
                count += len(batch)
                batch = []
            if item is None:
                break
        if count == 0:
            raise InputError(path, "holds no frame")
        report: dict[str, Any] = {"input": str(path), "name": name, "kind": "network",
                                  "weights": weights, "frames": count,
                                  "seconds": round(time.perf_counter() - began, 3)}
        if preview and tiles:
            writer.write_preview(contact_sheet(tiles))
        writer.write_report(report)
        return writer.commit()
    except BaseException:
        writer.discard()
        raise


def predict_inputs(weights: str | os.PathLike[str], inputs: list[str],
                   out: str | os.PathLike[str], device: str = "cpu", batch_size: int = 64,
                   preview: bool = True) -> list[Path]:
    """:func:`predict_input` for each input, named as ``fastunlc segment`` names them."""
    model = load_weights(weights, device)
    Path(out).mkdir(parents=True, exist_ok=True)
    return [predict_input(model, path, out, name, batch_size, preview, str(weights))
            for path, name in zip(inputs, unique_names(inputs), strict=True)]


def report_line(folder: Path) -> str:
    """One line about a finished folder: its name and frame count."""
    report = json.loads((folder / "report.json").read_text())
    return f"{folder}: {report['frames']} frame(s)"
