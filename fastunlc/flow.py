"""Optical flow between nearby frames of a shot (spec section 2).

Every frame of a shot is resized to ``flow_size x flow_size`` (aspect ratio not kept)
and paired with its neighbours up to ``flow_radius`` frames away; the flow of each pair
feeds the motion-saliency stage. Two methods:

``c2f`` (reference)
    Ce Liu's coarse-to-fine variational flow (Brox et al. 2004 energy) with the
    reference's parameters, compiled in ``fastunlc._C``. All pairs of a shot run in one
    call, in parallel over pairs, each frame's pyramid built once. It agrees with the
    reference's ``pyflow`` to float32 rounding; :mod:`fastunlc.reference.flow` is the
    plain NumPy version of the same algorithm. ``config.c2f_precision = "float32"``
    solves in float32 instead of float64 (faster, not the reference's rounding).
``dis``
    OpenCV's Dense Inverse Search on grey frames, preset MEDIUM: of the three presets
    it is the closest to ``c2f`` on real 100 x 100 frames (mean end-point difference
    0.06-0.67 px over 228 pairs of four 40-frame clips of OpenCV's sample videos, against
    0.09-0.78 px for FAST and 0.14-0.85 px for ULTRAFAST), at under 1 ms a pair.
    The ``dis_*`` config fields override the preset's finest scale, patch size and
    stride and variational refinement, and can run DIS on enlarged flow frames
    (``dis_size``); their defaults are MEDIUM's values, so the default flow is MEDIUM's.

Both return flow in pixels with pyflow's sign: ``frame_a(x, y) ~ frame_b(x + u, y + v)``
for the pair ``(a, b)``.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
from PIL import Image

from .backend import kernels
from .config import REFERENCE, UNLCConfig

logger = logging.getLogger(__name__)

DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
"""OpenCV DIS preset used when ``config.flow == "dis"`` (see the module docstring)."""


def flow_pairs(n_frames: int, radius: int) -> np.ndarray:
    """Frame pairs whose flow the saliency stage needs.

    Parameters
    ----------
    n_frames : int
        Frames in the shot (>= 0).
    radius : int
        Largest frame distance (>= 0); ``config.flow_radius`` (3) in the reference.

    Returns
    -------
    (P, 2) int32
        Every ``(i, i + j)`` with ``j`` in ``[-radius, radius]`` except 0 and ``i + j`` in
        ``[0, n_frames)``, sorted by ``i`` then ``j``.

    Examples
    --------
    >>> flow_pairs(3, 1).tolist()
    [[0, 1], [1, 0], [1, 2], [2, 1]]
    """
    if n_frames < 0 or radius < 0:
        raise ValueError(f"n_frames and radius must be >= 0, got {n_frames} and {radius}")
    offsets = np.array([j for j in range(-radius, radius + 1) if j], dtype=np.int64)
    first = np.repeat(np.arange(n_frames, dtype=np.int64), offsets.size)
    second = first + np.tile(offsets, n_frames)
    inside = (second >= 0) & (second < n_frames)
    return np.stack([first[inside], second[inside]], axis=1).astype(np.int32)


def resize_for_flow(frames: np.ndarray, size: int, *, device: str = "cpu") -> np.ndarray:
    """Resize frames to ``size x size`` for the flow, bilinear, aspect ratio not kept.

    Exactly the reference's ``scipy.misc.imresize(frame, (size, size))``: SciPy < 1.3 made a
    PIL image of the uint8 frame and called ``Image.resize`` with ``BILINEAR``. PIL's bilinear
    filter widens its support by the shrink factor, so it low-passes when shrinking (a 640 px
    frame becomes a 100 px one from about 13 source pixels per output pixel, not 2 as with
    OpenCV's ``INTER_LINEAR``); on textured footage the two resizes give visibly different
    flows and masks, so only PIL's is the reference.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8
        RGB frames.
    size : int
        Side of the output frames in pixels (``config.flow_size``, 100 in the reference).
    device : str, keyword-only
        Backend (``config.device``): ``"cuda"`` gives the same bytes from a GPU kernel.

    Returns
    -------
    (n, size, size, 3) uint8
        PIL's ``Image.resize((size, size), Image.BILINEAR)`` of each frame.
    """
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must be uint8 (n, h, w, 3), got {frames.dtype} {frames.shape}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if device == "cuda":
        return kernels(device).flow.resize_for_flow(frames, size).copy_to_host()
    out = np.empty((frames.shape[0], size, size, 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        image = Image.fromarray(np.ascontiguousarray(frame))
        out[i] = np.asarray(image.resize((size, size), resample=Image.Resampling.BILINEAR))
    return out


def optical_flow(
    frames_small: np.ndarray,
    pairs: np.ndarray,
    config: UNLCConfig = REFERENCE,
    *,
    threads: int = 0,
) -> np.ndarray:
    """Flow of every pair of a shot's resized frames.

    Parameters
    ----------
    frames_small : (n, s, s, 3) uint8
        RGB frames at flow resolution (:func:`resize_for_flow`); any ``(h, w)`` works.
    pairs : (P, 2) int
        Frame indices ``(a, b)`` in ``[0, n)``, e.g. from :func:`flow_pairs`.
    config : UNLCConfig
        ``flow`` picks the method; ``c2f`` (and ``c2f-fast``) use the ``c2f_*``
        parameters (``c2f_precision``: the CPU solver's arithmetic); with
        ``device == "cuda"`` they run on the GPU (red-black relaxation:
        within about 0.001 px of the CPU's flow at the reference's settings), ``dis``
        always runs on the CPU.
    threads : int, keyword-only
        Threads for ``c2f`` (parallel over pairs); 0 or less uses OpenMP's default.
        ``dis`` runs one pair after another on OpenCV's own thread pool.

    Returns
    -------
    (P, s, s, 2) float32
        Flow ``(u, v)`` in pixels from frame ``a`` to frame ``b``:
        ``frame_a(x, y) ~ frame_b(x + u, y + v)``.

    Raises
    ------
    ValueError
        Wrong dtype or shape, a pair index out of range, or a parameter the solver
        rejects (e.g. frames too small for the pyramid).
    ImportError
        ``config.flow == "c2f"`` and the compiled extension is not built.
    """
    frames_small = np.asarray(frames_small)
    if frames_small.dtype != np.uint8 or frames_small.ndim != 4 or frames_small.shape[3] != 3:
        raise ValueError("frames_small must be uint8 (n, h, w, 3), got "
                         f"{frames_small.dtype} {frames_small.shape}")
    pairs = _checked_pairs(pairs, frames_small.shape[0])
    n, h, w, _ = frames_small.shape
    logger.debug("%s flow of %d pairs over %d frames of %dx%d", config.flow, len(pairs), n, w, h)
    if config.flow == "dis":
        return _dis(frames_small, pairs, config)
    if config.device == "cuda":
        return kernels("cuda").flow.optical_flow(frames_small, pairs, config).copy_to_host()
    return _coarse2fine(frames_small, pairs, config, threads)


def _checked_pairs(pairs: np.ndarray, n_frames: int) -> np.ndarray:
    """``pairs`` as (P, 2) int64 after checking shape, dtype and index range."""
    pairs = np.asarray(pairs)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must have shape (P, 2), got {pairs.shape}")
    if pairs.size and not np.issubdtype(pairs.dtype, np.integer):
        raise ValueError(f"pairs must hold integer frame indices, got {pairs.dtype}")
    pairs = pairs.astype(np.int64, copy=False)
    bad = (pairs < 0) | (pairs >= n_frames)
    if bad.any():
        p = int(np.flatnonzero(bad.any(axis=1))[0])
        raise ValueError(f"pairs[{p}] = {tuple(pairs[p].tolist())} is out of range for "
                         f"{n_frames} frames")
    return pairs


def _coarse2fine(frames: np.ndarray, pairs: np.ndarray, config: UNLCConfig,
                 threads: int) -> np.ndarray:
    return kernels(config.device).flow.coarse2fine_flow_pairs(
        frames / 255.0, pairs, config.c2f_alpha, config.c2f_ratio, config.c2f_min_width,
        config.c2f_outer_iterations, config.c2f_inner_iterations, config.c2f_sor_iterations,
        threads, precision=config.c2f_precision)


def _dis(frames: np.ndarray, pairs: np.ndarray, config: UNLCConfig) -> np.ndarray:
    h, w = frames.shape[1:3]
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    if config.dis_size:
        grey = [cv2.resize(g, (config.dis_size, config.dis_size),
                           interpolation=cv2.INTER_LINEAR) for g in grey]
    out = np.empty((len(pairs), h, w, 2), dtype=np.float32)
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)
    dis.setFinestScale(config.dis_finest_scale)
    dis.setPatchSize(config.dis_patch_size)
    dis.setPatchStride(config.dis_patch_stride)
    dis.setVariationalRefinementAlpha(config.dis_refinement_alpha)
    dis.setVariationalRefinementIterations(config.dis_refinement_iterations)
    # Flow in enlarged-frame pixels, back to flow-frame pixels along each axis.
    to_small = np.array([w / config.dis_size, h / config.dis_size], np.float32) \
        if config.dis_size else None
    for p, (a, b) in enumerate(pairs):
        flow = dis.calc(grey[a], grey[b], None)
        if to_small is not None:
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA) * to_small
        out[p] = flow
    return out
