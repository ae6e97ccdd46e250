"""Writing files whole or not at all, and the one encoding of a soft mask as a PNG.

Both the segmentation results (:mod:`fastunlc.output`) and the dataset
(:mod:`fastunlc.dataset`, :mod:`fastunlc.build`) write through :func:`atomic_path`: a file
is written under a hidden temporary name in its final folder, flushed to disk and renamed
into place, so a reader (or a rerun after ``kill -9``) sees either the old file, the
complete new one, or nothing. Temporary names match ``.*.tmp*``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np


def temporary_path(path: Path) -> Path:
    """The hidden name ``path`` is written under before it is published: ``.<name>.tmp<pid>``
    in the same folder (a rename within one file system is atomic)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def publish(tmp: Path, path: Path) -> None:
    """Flush ``tmp`` to disk and rename it to ``path`` (replacing an existing file)."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; published as ``path`` when the
    block ends normally, deleted when it raises. ``path``'s folder is created.

    Examples
    --------
    >>> with atomic_path("out/table.parquet") as tmp:    # doctest: +SKIP
    ...     pyarrow.parquet.write_table(table, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Write ``data`` (text is encoded as UTF-8) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes (lossless) of a grey ``(h, w)`` or RGB ``(h, w, 3)`` uint8 image."""
    if image.ndim == 3:
        image = image[:, :, ::-1]  # OpenCV encodes BGR
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def mask_to_uint8(mask: np.ndarray) -> np.ndarray:
    """Soft mask ``(h, w)`` in [0, 1] to 8-bit grey ``round(255 p)`` (values outside
    [0, 1] are clipped; halves round to even)."""
    return np.rint(np.clip(mask, 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_mask_png(mask: np.ndarray) -> bytes:
    """PNG bytes of a soft mask ``(h, w)`` in [0, 1]: 8-bit grey ``round(255 p)``, the
    one mask encoding of both ``segment``'s ``masks/`` and the dataset's ``KEY.png``."""
    return encode_png(mask_to_uint8(mask))
