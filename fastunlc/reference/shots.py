"""Oracle of shot detection and shot subsampling (spec sections 0-1), dense and plain.

Follows ``shared/unlc-spec.md`` step by step: ``np.histogram`` per channel, the
N×N linear kernel ``K = X Xᵀ``, the N×N scatter matrix from cumulative sums, and
the dynamic programme over 0..m change points. Memory is O(N²): keep N to a few
thousand frames.
"""

from __future__ import annotations

import itertools

import numpy as np
from skimage.color import rgb2lab

from fastunlc.config import UNLCConfig

# (low, high) of the six histograms: R, G, B, then CIELAB L, a, b.
RANGES = ((0, 255), (0, 255), (0, 255), (0, 100), (-128, 127), (-128, 127))


def shot_features(frames: np.ndarray, bins: int = 40) -> np.ndarray:
    """Six L1-normalised histograms per frame.

    ``(n, h, w, 3)`` uint8 RGB -> ``(n, 6 * bins)`` float64: R, G, B, L, a, b.
    """
    out = np.zeros((len(frames), 6 * bins))
    for f, frame in enumerate(frames):
        channels = np.concatenate([frame.astype(np.float64), rgb2lab(frame)], axis=2)
        for c, (low, high) in enumerate(RANGES):
            hist, _ = np.histogram(channels[..., c].ravel(), bins=bins, range=(low, high))
            hist = hist.astype(np.float64)
            total = hist.sum()
            # "left as zeros if its sum is ~0": the reference adds 1 below 1e-4.
            out[f, c * bins : (c + 1) * bins] = hist / (total + (total < 1e-4))
    return out


def scatter_matrix(features: np.ndarray) -> np.ndarray:
    """``scatter[i, j]`` of frames ``i..j`` (inclusive) under ``K = X Xᵀ``; 0 below the diagonal.

    ``(N, d)`` features -> ``(N, N)`` float64.
    """
    x = np.asarray(features, dtype=np.float64)
    n = len(x)
    kernel = x @ x.T
    # diag_sum[i] = sum of K[t, t] for t < i.
    diag_sum = np.concatenate([[0.0], np.cumsum(np.diag(kernel))])
    # block_sum[i, j] = sum of K[:i, :j].
    block_sum = np.zeros((n + 1, n + 1))
    block_sum[1:, 1:] = np.cumsum(np.cumsum(kernel, axis=0), axis=1)
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    length = np.maximum(j - i + 1, 1)
    inside = (
        block_sum[j + 1, j + 1] - block_sum[i, j + 1] - block_sum[j + 1, i] + block_sum[i, i]
    )
    scatter = diag_sum[j + 1] - diag_sum[i] - inside / length
    return np.where(j >= i, scatter, 0.0)


def kts_change_points(features: np.ndarray, max_change_points: int, vmax: float) -> np.ndarray:
    """Change points of KTS; ``(N, d)`` features -> ``(c,)`` int64 frame indices in [1, N - 1].

    ``max_change_points`` is lowered to ``N - 1`` when fewer frames allow no more.
    """
    n = len(features)
    m = min(int(max_change_points), n - 1)
    scatter = scatter_matrix(features)

    # best[k, l]: least total scatter of frames [0, l) split by k change points;
    # prev[k, l]: the last change point of that split (first one among ties).
    best = np.full((m + 1, n + 1), np.inf)
    prev = np.zeros((m + 1, n + 1), dtype=np.int64)
    best[0, 1:] = scatter[0, :]
    for k in range(1, m + 1):
        for end in range(k + 1, n + 1):
            starts = np.arange(k, end)
            total = best[k - 1, starts] + scatter[starts, end - 1]
            prev[k, end] = starts[np.argmin(total)]
            best[k, end] = total.min()

    penalty = np.zeros(m + 1)
    for c in range(1, m + 1):
        penalty[c] = vmax * c / (2.0 * n) * (np.log(n / c) + 1.0)
    chosen = int(np.argmin(best[:, n] / n + penalty))

    change_points = []
    end = n
    for k in range(chosen, 0, -1):
        end = int(prev[k, end])
        change_points.append(end)
    return np.array(change_points[::-1], dtype=np.int64)


def detect_shots(features: np.ndarray, config: UNLCConfig) -> list[tuple[int, int]]:
    """Shots ``[(start, end), ...]``, end exclusive: 0, then the change points, then N."""
    cuts = kts_change_points(features, config.max_shots - 1, config.kts_vmax)
    bounds = [0, *cuts.tolist(), len(features)]
    return list(itertools.pairwise(bounds))


def shot_frames(start: int, end: int, config: UNLCConfig) -> np.ndarray | None:
    """Processed frames of shot ``[start, end)``: None if shorter than ``min_shot``, else
    every frame, subsampled with step ``L // max_shot + 1`` when ``L > max_shot``."""
    length = end - start
    if length < config.min_shot:
        return None
    step = length // config.max_shot + 1 if length > config.max_shot else 1
    return np.arange(start, end, step, dtype=np.int64)
