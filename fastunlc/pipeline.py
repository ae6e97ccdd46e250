"""The uNLC pipeline: a video in, soft foreground masks out.

``segment_shot`` runs sections 2-6 of the spec on the frames of one shot;
``iter_segment`` drives a whole source: it decodes once to find the shots
(section 1), then decodes again and segments shot by shot, so memory stays bounded
by one shot (short videos are kept from the first pass instead of decoded twice).
``segment_video`` collects everything into a :class:`VideoSegmentation`.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from os import PathLike

import cv2
import numpy as np

from . import appearance, descriptors, flow, graph, output, saliency, shots, superpixels, voting
from .config import REFERENCE, UNLCConfig
from .errors import InputError
from .video import FrameSource, SourceInfo, resize_frame, working_size

FRAME_CACHE_BYTES = 128 * 2**20
"""Videos whose working-size frames fit in this many bytes are decoded once, not twice.

Longer ones are decoded again shot by shot, so memory does not grow with the video's
length; decoding costs a few ms per frame, a small price for that bound."""

_FEATURE_CHUNK = 16  # frames per shot-feature batch in the first pass
_PREVIEW_WIDTH = 320


class StageTimer:
    """Wall-clock seconds per named stage, accumulated over calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start


@dataclass
class ShotSegmentation:
    """Result of :func:`segment_shot`.

    Attributes
    ----------
    masks : (n, h, w) float32
        Soft foreground masks in [0, 1] at the frames' size; foreground is > 0.7.
    saliency : str
        ``"motion"``, ``"appearance"`` or ``"none"`` (motionless shot: empty masks).
    reason : str
        Why that saliency was used, for the report.
    dominant_fraction : float
        Share of frames with a dominant camera motion.
    n_superpixels : int
        Superpixels in the shot (0 when the shot was motionless).
    """

    masks: np.ndarray
    saliency: str
    reason: str
    dominant_fraction: float
    n_superpixels: int


def segment_shot(
    frames: np.ndarray,
    config: UNLCConfig = REFERENCE,
    *,
    timer: StageTimer | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ShotSegmentation:
    """Segment the moving objects of one shot.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8
        RGB frames of the shot at working size (after :func:`fastunlc.video.working_size`),
        already subsampled; ``n >= 2``.
    config : UNLCConfig
        Parameters; defaults are the reference's. ``device="cuda"`` runs the whole shot
        on the GPU (:func:`fastunlc.resident.segment_shot`).
    timer : StageTimer, optional
        Accumulates seconds per stage (flow, saliency, superpixels, descriptors,
        graph, voting).
    on_stage : callable, optional
        Called with each stage's name as it starts (progress display).

    Returns
    -------
    ShotSegmentation
    """
    if config.device == "cuda":
        from . import resident  # imports numba.cuda: only when asked for

        return resident.segment_shot(frames, config, timer=timer, on_stage=on_stage)
    timer = timer or StageTimer()
    notify = on_stage or (lambda stage: None)
    frames = np.ascontiguousarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must be uint8 (n, h, w, 3), got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    if n < 2:
        raise ValueError(f"a shot needs at least 2 frames, got {n}")

    notify("flow")
    with timer("flow"):
        small = flow.resize_for_flow(frames, config.flow_size)
        pairs = flow.flow_pairs(n, config.flow_radius)
        flows = flow.optical_flow(small, pairs, config)

    notify("saliency")
    with timer("saliency"):
        motion = saliency.motion_saliency(flows, pairs, n, config)
        fraction = motion.dominant_fraction
        kind, reason = saliency_kind(fraction, config)
        small_saliency = (appearance_saliencies(small, config) if kind == "appearance"
                          else motion.saliency)

    def motionless(peak: float) -> ShotSegmentation:
        # Nothing moves against the camera: every vote would be 0 (or amplified noise).
        return ShotSegmentation(np.zeros((n, h, w), np.float32), "none",
                                motionless_reason(peak, config), fraction, 0)

    # Bilinear upsampling never exceeds the largest sample, so this settles most
    # motionless shots before any superpixel is computed.
    small_peak = float(small_saliency.max())
    if kind == "motion" and small_peak < config.static_saliency_floor:
        return motionless(small_peak)

    notify("superpixels")
    with timer("superpixels"):
        labels, counts = superpixels.slic_superpixels_batch(frames, config)

    notify("descriptors")
    with timer("descriptors"):
        features, offsets = descriptors.superpixel_descriptors_batch(frames, labels, counts,
                                                                     config)

    notify("graph")
    with timer("graph"):
        transition = graph.transition_matrix(features, offsets, config)

    with timer("saliency"):
        votes, peak = saliency.superpixel_saliency(small_saliency, labels, offsets, config)
    if kind == "motion" and peak < config.static_saliency_floor:
        return motionless(peak)

    notify("voting")
    with timer("voting"):
        masks = voting.consensus_voting(votes, transition, labels, offsets, config)
    return ShotSegmentation(masks, kind, reason, fraction, int(offsets[-1]))


def saliency_kind(dominant_fraction: float, config: UNLCConfig) -> tuple[str, str]:
    """``("motion" | "appearance", reason)``: the saliency a shot uses, given the share
    of its frames with a dominant camera motion, and the report's reason."""
    if dominant_fraction < config.min_dominant_fraction:
        return "appearance", (f"{dominant_fraction:.0%} of frames have a dominant camera "
                              f"motion, fewer than {config.min_dominant_fraction:.0%}: "
                              "appearance saliency used")
    return "motion", f"{dominant_fraction:.0%} of frames have a dominant camera motion"


def appearance_saliencies(frames_small: np.ndarray, config: UNLCConfig) -> np.ndarray:
    """Appearance saliency ``(n, s, s)`` float64 in [0, 1] of each flow frame ``(n, s, s,
    3)`` uint8, with the config's ``appearance_*`` parameters."""
    return np.stack([appearance.appearance_saliency(
        f, n_segments=config.appearance_n_segments, compactness=config.appearance_compactness,
        alpha=config.appearance_alpha, sigma2=config.appearance_sigma2) for f in frames_small])


def motionless_reason(peak: float, config: UNLCConfig) -> str:
    """The report's reason for a shot whose saliency never reaches the floor."""
    return (f"no motion: peak saliency {peak:.3g} is below static_saliency_floor "
            f"{config.static_saliency_floor:g}; masks are empty")


@dataclass
class ShotResult:
    """One shot of a source, as :func:`iter_segment` yields it.

    ``start``/``end`` are source frame indices (end exclusive). ``frame_indices``
    are the processed (subsampled) source frames and ``masks`` their soft masks
    ``(len(frame_indices), h, w)`` float32 at the WORKING size (at most ``max_side``);
    :meth:`source_mask` gives one at the source's size ``source_size = (H, W)``. Both
    are empty when the shot was skipped (``status == "skipped"``, see ``reason``).
    """

    index: int
    start: int
    end: int
    status: str
    reason: str
    frame_indices: np.ndarray
    masks: np.ndarray
    source_size: tuple[int, int]
    saliency: str = "none"
    dominant_fraction: float = 0.0
    n_superpixels: int = 0
    seconds: float = 0.0
    previews: list[tuple[int, np.ndarray]] = field(default_factory=list)
    """Up to ``previews_per_shot`` ``(frame index, RGB overlay 320 px wide)`` tiles."""
    frames: np.ndarray | None = None
    """With ``keep_frames``: the processed frames ``(len(frame_indices), h, w, 3)`` uint8 RGB
    at the working size, the masks' own size."""

    def source_mask(self, k: int) -> np.ndarray:
        """Soft mask of the k-th processed frame at the source's size, ``(H, W)`` float32
        in [0, 1] (bilinear resize of the working-size mask)."""
        mask = self.masks[k]
        if mask.shape != self.source_size:
            mask = cv2.resize(mask, self.source_size[::-1], interpolation=cv2.INTER_LINEAR)
        return np.clip(mask, 0.0, 1.0)

    def summary(self) -> dict:
        """JSON-ready description (no masks)."""
        return {
            "index": self.index, "start": self.start, "end": self.end, "status": self.status,
            "reason": self.reason, "frames": [int(i) for i in self.frame_indices],
            "saliency": self.saliency, "dominant_fraction": round(self.dominant_fraction, 4),
            "superpixels": self.n_superpixels, "seconds": round(self.seconds, 3),
        }


@dataclass
class SourcePlan:
    """What the first pass over a source found; filled in by :func:`iter_segment`."""

    info: SourceInfo | None = None
    first_frame: int = 0
    frames_read: int = 0
    working_size: tuple[int, int] = (0, 0)
    shots: list[tuple[int, int]] = field(default_factory=list)
    decode_note: str | None = None


def _read_first_pass(source: FrameSource, start: int, stop: int | None, size: tuple[int, int],
                     config: UNLCConfig, plan: SourcePlan, timer: StageTimer
                     ) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Decode the range once: shot features for all frames, and the frames themselves
    while they fit in FRAME_CACHE_BYTES (``None`` once they do not)."""
    frame_bytes = size[0] * size[1] * 3
    cache: list[np.ndarray] | None = []
    features, chunk = [], []
    first = None
    frames = source.frames(start, stop)
    while True:
        with timer("decode"):
            item = next(frames, None)
            if item is not None:
                index, frame = item
                small = resize_frame(frame, size)
        if item is None or len(chunk) == _FEATURE_CHUNK:
            if chunk:
                with timer("shots"):
                    features.append(shots.shot_features(np.stack(chunk), config.shot_hist_bins,
                                                        device=config.device))
            chunk = []
        if item is None:
            break
        if first is None:
            first = index
        chunk.append(small)
        if cache is not None:
            cache.append(small)
            if len(cache) * frame_bytes > FRAME_CACHE_BYTES:
                cache = None
    plan.first_frame = start if first is None else first
    plan.decode_note = source.decode_note
    out = np.concatenate(features) if features else np.zeros((0, 6 * config.shot_hist_bins))
    plan.frames_read = len(out)
    return out, cache


def _decode_again(frames_iter: Iterator[tuple[int, np.ndarray]], s: int, e: int,
                  local: np.ndarray, out: np.ndarray | None, size: tuple[int, int],
                  path: str | PathLike[str], first_frame: int) -> None:
    """Advance the second decode over a shot's frames ``s .. e - 1`` (first-pass
    positions), resizing those in ``local`` (ascending) into ``out`` ``(len(local), h,
    w, 3)``; ``out`` may be ``None`` when ``local`` is empty (a skipped shot).

    Raises InputError when the decode ends before frame ``e - 1``: the first pass
    decoded more frames than this one, so ``out`` would hold uninitialised memory.
    """
    k = 0
    for i in range(s, e):
        item = next(frames_iter, None)
        if item is None:
            raise InputError(path, f"the second decode ended early at frame {first_frame + i}; "
                                   f"the first pass decoded frames up to {first_frame + e - 1} "
                                   "and beyond (the decoder gave fewer frames the second time)")
        if k < len(local) and i == local[k]:
            out[k] = resize_frame(item[1], size)
            k += 1


def iter_segment(
    path: str | PathLike[str],
    config: UNLCConfig = REFERENCE,
    *,
    start: int = 0,
    max_frames: int | None = None,
    timer: StageTimer | None = None,
    plan: SourcePlan | None = None,
    on_stage: Callable[[str], None] | None = None,
    previews_per_shot: int = 0,
    keep_frames: bool = False,
) -> Iterator[ShotResult]:
    """Segment a video file or frame folder shot by shot.

    Parameters
    ----------
    path : str or PathLike
        Video file or folder of frames.
    config : UNLCConfig
        Parameters; defaults are the reference's.
    start : int
        First source frame to use (0-based).
    max_frames : int, optional
        Use at most this many frames from ``start``.
    timer : StageTimer, optional
        Accumulates seconds per stage, decoding and shot detection included.
    plan : SourcePlan, optional
        Filled in with what the first pass found (size, frames read, shots)
        before the first shot is yielded.
    on_stage : callable, optional
        Called with a stage name (``"shot 2/3: flow"``) as each stage starts.
    previews_per_shot : int
        Overlay tiles to make per processed shot (evenly spaced frames).
    keep_frames : bool
        Hand each processed shot's working-size frames out with it (``ShotResult.frames``).

    Yields
    ------
    ShotResult
        One per detected shot, in order; skipped shots included.

    Raises
    ------
    InputError
        The input cannot be read, has fewer than 2 (or fewer than ``min_shot``)
        frames in the range, or frames smaller than ``min_side`` pixels.
    """
    timer = timer or StageTimer()
    notify = on_stage or (lambda stage: None)
    if start < 0:
        raise InputError(path, f"--start must be >= 0, got {start}")
    if max_frames is not None and max_frames < 1:
        raise InputError(path, f"--max-frames must be >= 1, got {max_frames}")
    source = FrameSource(path)
    info = source.info
    plan = plan if plan is not None else SourcePlan()
    plan.info = info
    if min(info.height, info.width) < config.min_side:
        raise InputError(path, f"frames are {info.width}x{info.height} px; both sides must be at "
                               f"least {config.min_side} px")
    size = working_size(info.height, info.width, config.max_side)
    plan.working_size = size
    stop = None if max_frames is None else start + max_frames

    notify("reading")
    features, cache = _read_first_pass(source, start, stop, size, config, plan, timer)
    n = len(features)
    if n == 0:
        where = f" at or after frame {start}" if start else ""
        raise InputError(path, f"no frames could be decoded{where}")
    if n < 2:
        raise InputError(path, "only one frame: uNLC needs motion between at least 2 frames")
    if n < config.min_shot:
        raise InputError(path, f"{n} frames, fewer than the {config.min_shot} a shot needs "
                               "(min_shot)")

    notify("shots")
    with timer("shots"):
        plan.shots = shots.detect_shots(features, config)

    frames_iter = None
    if cache is None:
        # The second decode converts only the frames some shot will process.
        needed = set()
        for s, e in plan.shots:
            local = shots.shot_frames(s, e, config)
            if local is not None:
                needed.update((local + plan.first_frame).tolist())
        frames_iter = source.frames(start, stop, wanted=needed.__contains__)
    for shot_index, (s, e) in enumerate(plan.shots):
        shot_start, shot_end = plan.first_frame + s, plan.first_frame + e
        local = shots.shot_frames(s, e, config)
        if local is None:
            if frames_iter is not None:  # keep the second pass in step
                _decode_again(frames_iter, s, e, np.zeros(0, np.int64), None, size, path,
                              plan.first_frame)
            else:
                cache[s:e] = [None] * (e - s)
            yield ShotResult(shot_index, shot_start, shot_end, "skipped",
                             f"{e - s} frames, fewer than min_shot = {config.min_shot}",
                             np.zeros(0, np.int64), np.zeros((0, *size), np.float32),
                             (info.height, info.width))
            continue
        began = time.perf_counter()
        frames = np.empty((len(local), *size, 3), np.uint8)
        if cache is not None:
            for k, i in enumerate(local):
                frames[k] = cache[i]
            cache[s:e] = [None] * (e - s)  # shots come in order: done with these
        else:
            with timer("decode"):
                _decode_again(frames_iter, s, e, local, frames, size, path, plan.first_frame)
        result = segment_shot(frames, config, timer=timer,
                              on_stage=lambda stage, k=shot_index: notify(
                                  f"shot {k + 1}/{len(plan.shots)}: {stage}"))
        previews = []
        for k in np.unique(np.linspace(0, len(local) - 1, previews_per_shot).round().astype(int)
                           ) if previews_per_shot else []:
            tile = output.overlay(frames[k], result.masks[k], config.foreground_threshold)
            scale = _PREVIEW_WIDTH / tile.shape[1]
            previews.append((int(local[k] + plan.first_frame), cv2.resize(
                tile, (_PREVIEW_WIDTH, max(1, round(tile.shape[0] * scale))),
                interpolation=cv2.INTER_AREA)))
        yield ShotResult(shot_index, shot_start, shot_end, "processed", result.reason,
                         local + plan.first_frame, result.masks, (info.height, info.width),
                         result.saliency, result.dominant_fraction, result.n_superpixels,
                         time.perf_counter() - began, previews, frames if keep_frames else None)


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux's ``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class VideoSegmentation:
    """All masks of a source, as :func:`segment_video` returns them.

    ``masks`` maps a processed source frame index to its soft mask ``(H, W)``
    float32 in [0, 1] at the source's size.
    """

    plan: SourcePlan
    shots: list[ShotResult]
    masks: dict[int, np.ndarray]
    seconds: dict[str, float]


def segment_video(
    path: str | PathLike[str],
    config: UNLCConfig = REFERENCE,
    *,
    start: int = 0,
    max_frames: int | None = None,
) -> VideoSegmentation:
    """Segment a video file or frame folder; the Python API of ``fastunlc segment``.

    Examples
    --------
    >>> result = segment_video("bikes.mp4", max_frames=40)       # doctest: +SKIP
    >>> mask = result.masks[12]          # (H, W) float32, foreground = mask > 0.7
    """
    timer = StageTimer()
    plan = SourcePlan()
    results = list(iter_segment(path, config, start=start, max_frames=max_frames, timer=timer,
                                plan=plan))
    masks = {int(i): r.source_mask(k) for r in results for k, i in enumerate(r.frame_indices)}
    return VideoSegmentation(plan, results, masks, dict(timer.seconds))
