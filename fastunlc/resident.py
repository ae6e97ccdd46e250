"""A whole shot on the GPU: frames uploaded once, masks the only large array back.

:func:`segment_shot` is :func:`fastunlc.pipeline.segment_shot` for ``config.device ==
"cuda"``: the same stages in the same order, each a few batched launches over every frame
(or frame pair) of the shot, on one CUDA stream. Between stages only what steers the
host comes back (the share of dominant frames, a saliency peak, superpixel counts);
frames, flows, saliency, labels, descriptors, the neighbour graph and the votes stay on
the GPU. :func:`segment_shots` keeps several shots in flight, each on its own stream, so
that short shots still fill a GPU.

Two steps run on the CPU on the 100 x 100 flow frames, their results uploaded: the
appearance-saliency fallback (shots without a dominant camera motion, rare) and the
``dis`` flow (OpenCV's DIS has no CUDA kernel in its wheels; ``c2f`` runs on the GPU).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
from numba import cuda

from . import flow
from .backend import kernels
from .config import REFERENCE, UNLCConfig
from .pipeline import (
    ShotSegmentation,
    StageTimer,
    appearance_saliencies,
    motionless_reason,
    saliency_kind,
)


def segment_shot(
    frames: np.ndarray,
    config: UNLCConfig = REFERENCE,
    *,
    timer: StageTimer | None = None,
    on_stage: Callable[[str], None] | None = None,
    stream=None,
) -> ShotSegmentation:
    """Segment the moving objects of one shot on the GPU.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8
        RGB frames of the shot at working size, ``n >= 2``: a host array (uploaded once)
        or a device array (Numba's, a torch CUDA tensor), used in place.
    config : UNLCConfig
        Parameters; ``config.device`` should be ``"cuda"`` (this function runs on the
        GPU whatever it says).
    timer : StageTimer, optional
        Accumulates seconds per stage; each stage's time ends when its work on
        ``stream`` has finished, so the times are the GPU's.
    on_stage : callable, optional
        Called with each stage's name as it starts.
    stream : numba.cuda.Stream, optional
        Stream of every copy and launch (default: a new one).

    Returns
    -------
    ShotSegmentation
        As :func:`fastunlc.pipeline.segment_shot`, masks on the host.
    """
    k = kernels("cuda")
    timer = timer or StageTimer()
    notify = on_stage or (lambda stage: None)
    stream = stream if stream is not None else cuda.stream()
    if frames.dtype != np.uint8 or len(frames.shape) != 4 or frames.shape[0] < 2 or (
            frames.shape[3] != 3):
        raise ValueError(f"frames must be uint8 (n >= 2, h, w, 3), got {frames.dtype} "
                         f"{frames.shape}")
    n, h, w, _ = frames.shape

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        notify(name)
        with timer(name):
            yield
            stream.synchronize()

    with stage("flow"):
        frames_gpu = k.arrays.as_device(frames, stream)
        small = k.flow.resize_for_flow(frames_gpu, config.flow_size, stream=stream)
        pairs = flow.flow_pairs(n, config.flow_radius)
        if config.flow == "dis":  # OpenCV's DIS has no CUDA kernel in its wheels
            flows = k.arrays.as_device(flow.optical_flow(
                small.copy_to_host(stream=stream), pairs, config.replace(device="cpu")),
                stream)
        else:
            flows = k.flow.optical_flow(small, pairs, config, stream=stream)

    with stage("saliency"):
        motion = k.saliency.motion_saliency(flows, pairs, n, config, stream=stream)
        fraction = motion.dominant_fraction
        kind, reason = saliency_kind(fraction, config)
        if kind == "appearance":
            small_saliency = k.arrays.as_device(
                appearance_saliencies(small.copy_to_host(stream=stream), config), stream)
        else:
            small_saliency = motion.saliency

    def motionless(peak: float) -> ShotSegmentation:
        return ShotSegmentation(np.zeros((n, h, w), np.float32), "none",
                                motionless_reason(peak, config), fraction, 0)

    # As on the CPU: bilinear upsampling never exceeds the largest sample.
    if kind == "motion" and motion.peak < config.static_saliency_floor:
        return motionless(motion.peak)

    with stage("superpixels"):
        labels, counts = k.slic.slic_superpixels_batch(frames_gpu, config, stream=stream)

    with stage("descriptors"):
        features, offsets = k.descriptors.superpixel_descriptors_batch(
            frames_gpu, labels, counts, config, stream=stream)

    with stage("graph"):
        graph = k.graph.transition(features, offsets, config, stream=stream)

    with stage("saliency"):
        # Pixel counts and boxes of the superpixels, found once for saliency and voting.
        layout = k.saliency.superpixel_layout(labels, offsets, stream=stream)
        votes, peak = k.saliency.superpixel_saliency(small_saliency, labels, offsets, config,
                                                     stream=stream, layout=layout)
    if kind == "motion" and peak < config.static_saliency_floor:
        return motionless(peak)

    with stage("voting"):
        masks = k.voting.consensus_voting(votes, graph, labels, offsets, config,
                                          stream=stream, layout=layout)
        host_masks = masks.copy_to_host(stream=stream)
    return ShotSegmentation(host_masks, kind, reason, fraction, int(offsets[-1]))


def segment_shots(shots: Iterable[np.ndarray], config: UNLCConfig = REFERENCE, *,
                  in_flight: int = 2) -> Iterator[ShotSegmentation]:
    """:func:`segment_shot` of each shot, ``in_flight`` at a time on their own streams.

    Parameters
    ----------
    shots : iterable of (n, h, w, 3) uint8 arrays
        The shots' frames, as for :func:`segment_shot`; read as the work proceeds.
    config : UNLCConfig
        Parameters of every shot.
    in_flight : int
        Shots on the GPU at once (>= 1), each with a host thread and a stream: while one
        thread waits for its shot, the others queue theirs.

    Yields
    ------
    ShotSegmentation
        In the order of ``shots``.
    """
    if in_flight < 1:
        raise ValueError(f"in_flight must be >= 1, got {in_flight}")
    streams = [cuda.stream() for _ in range(in_flight)]
    with ThreadPoolExecutor(in_flight) as pool:
        pending = []
        for i, frames in enumerate(shots):
            pending.append(pool.submit(segment_shot, frames, config,
                                       stream=streams[i % in_flight]))
            if len(pending) == in_flight:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()
