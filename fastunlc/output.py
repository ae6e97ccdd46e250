"""Writing results: mask PNGs, ``report.json`` and a preview contact sheet, atomically.

Everything for one input is written into a hidden staging folder next to the final
one and moved into place only when complete, so a folder named after an input is
always a finished result, never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .files import atomic_write, encode_mask_png, encode_png


def overlay(frame: np.ndarray, mask: np.ndarray, threshold: float = 0.7) -> np.ndarray:
    """RGB uint8 preview of a soft mask over its frame (same ``(h, w)``).

    The soft mask tints the frame red in proportion to ``p``; the foreground
    (``p > threshold``) is outlined in green.
    """
    alpha = 0.6 * np.clip(mask, 0.0, 1.0)[..., None]
    red = np.array([255.0, 0.0, 0.0])
    out = (frame * (1.0 - alpha) + red * alpha).astype(np.uint8)
    contours, _ = cv2.findContours((mask > threshold).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (0, 255, 0), max(1, frame.shape[1] // 300))
    return out


def trimap_overlay(frame: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """RGB uint8 preview of a training trimap (:func:`fastunlc.pruning.trimap`) over its
    frame: foreground tinted green, the band the loss ignores tinted yellow, background
    as it is."""
    from .pruning import TRIMAP_FOREGROUND, TRIMAP_IGNORE

    out = frame.astype(np.float64)
    for value, colour in ((TRIMAP_FOREGROUND, (0.0, 255.0, 0.0)),
                          (TRIMAP_IGNORE, (255.0, 220.0, 0.0))):
        where = trimap == value
        out[where] = 0.5 * out[where] + 0.5 * np.array(colour)
    return out.astype(np.uint8)


def contact_sheet(tiles: list[tuple[str, np.ndarray]], columns: int = 4, width: int = 320
                  ) -> np.ndarray:
    """Grid of captioned RGB tiles, each scaled to ``width`` pixels wide."""
    if not tiles:
        raise ValueError("contact_sheet needs at least one tile")
    scaled = []
    for caption, image in tiles:
        h = max(1, round(image.shape[0] * width / image.shape[1]))
        tile = cv2.resize(image, (width, h), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3,
                    cv2.LINE_AA)
        cv2.putText(tile, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1,
                    cv2.LINE_AA)
        scaled.append(tile)
    tile_h = max(t.shape[0] for t in scaled)
    rows = -(-len(scaled) // columns)
    sheet = np.full((rows * tile_h, min(columns, len(scaled)) * width, 3), 255, np.uint8)
    for k, tile in enumerate(scaled):
        r, c = divmod(k, columns)
        sheet[r * tile_h:r * tile_h + tile.shape[0], c * width:(c + 1) * width] = tile
    return sheet


class ResultWriter:
    """Stages one input's outputs under ``out/.<name>.partial`` and publishes them as
    ``out/<name>`` on :meth:`commit` (replacing an earlier result of the same name).

    Layout: ``masks/<frame index, 5 digits>.png`` (8-bit grey, ``round(255 p)``),
    ``report.json``, ``preview.png``.
    """

    def __init__(self, out_dir: str | os.PathLike[str], name: str) -> None:
        self.final = Path(out_dir) / name
        self.stage = Path(out_dir) / f".{name}.partial"
        if self.stage.exists():
            shutil.rmtree(self.stage)
        (self.stage / "masks").mkdir(parents=True)

    def write_mask(self, frame_index: int, mask: np.ndarray) -> None:
        atomic_write(self.stage / "masks" / f"{frame_index:05d}.png", encode_mask_png(mask))

    def write_preview(self, sheet: np.ndarray) -> None:
        atomic_write(self.stage / "preview.png", encode_png(sheet))

    def write_report(self, report: dict[str, Any]) -> None:
        atomic_write(self.stage / "report.json", json.dumps(report, indent=2) + "\n")

    def commit(self) -> Path:
        """Move the staged result into place; returns the final folder."""
        old = self.final.with_name(f".{self.final.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.stage, self.final)
        if old.exists():
            shutil.rmtree(old)
        return self.final

    def discard(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)


def unique_names(inputs: list[str]) -> list[str]:
    """Output folder name per input: the file stem or folder name, made unique."""
    names, seen = [], {}
    for raw in inputs:
        path = Path(raw)
        base = (path.name if path.is_dir() else path.stem) or "input"
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(base if count == 0 else f"{base}_{count + 1}")
    return names
