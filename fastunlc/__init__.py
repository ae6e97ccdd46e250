"""fastunlc: fast unsupervised Non-Local Consensus (uNLC) video segmentation.

The stages of the pipeline are modules (``video``, ``shots``, ``flow``, ``saliency``,
``appearance``, ``superpixels``, ``descriptors``, ``graph``, ``voting``, ``pruning``)
composed by :mod:`fastunlc.pipeline`; their parameters live in one
:class:`~fastunlc.config.UNLCConfig` whose defaults are the reference's.

>>> import fastunlc
>>> result = fastunlc.segment_video("bikes.mp4", max_frames=40)   # doctest: +SKIP

Importing fastunlc never imports torch, Ray or CuPy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import REFERENCE, UNLCConfig
from .errors import FastUNLCError, InputError

__version__ = "0.1.0"

__all__ = ["REFERENCE", "FastUNLCError", "InputError", "UNLCConfig", "__version__",
           "segment_shot", "segment_video"]

if TYPE_CHECKING:
    from .pipeline import segment_shot, segment_video


def __getattr__(name: str) -> Any:
    # The pipeline pulls in Numba kernels and OpenCV: load it on first use only.
    if name in ("segment_video", "segment_shot"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'fastunlc' has no attribute {name!r}")
