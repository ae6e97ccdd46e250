"""Consensus voting with blob removal on the GPU, all frames of a shot at once.

The same masks as :func:`fastunlc.voting.consensus_voting` with ``device="cpu"``:

- ``v <- T v``: one thread per row sums its products in the row's stored order (the
  CSR order of :mod:`.graph`'s rows), each product rounded on its own
  (:func:`.arrays.mul_rn`), as SciPy's CSR product does; the division by the frame's
  peak of the previous iteration is done where a vote is read, which gives the same
  quotient as dividing first. Peaks are atomic maxima (exact in any order).
- The superpixel means of a round's edited mask add the same numbers in the same order
  as the CPU (its pixels in raster order: one thread per superpixel walking its
  bounding box), so the rounds are bit for bit the CPU's.
- Components of ``mask > threshold`` (4-connected) are labelled by union-find over all
  frames at once (atomic-min linking of roots, then path compression): every pixel
  gets the smallest flat index of its component, the same partition as OpenCV's.
  Component sizes are integer atomics (exact). The summed mask of a component (the
  low-energy test) is a float64 atomic sum, whose order differs from the CPU's raster
  order: a component whose energy is within about 1e-12 relative of
  ``low_energy_fraction x size`` may be judged differently. With the reference's
  parameters no component can be low-energy and none is labelled between rounds.

So, given the same initial votes and transition rows, the masks equal the CPU's bit for
bit under the simulator (tested), and should on a GPU with the reference's parameters
(not yet run on one; the kernels' sm_90 PTX has no fused multiply-add on these sums).
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda

from ...config import REFERENCE, UNLCConfig
from .arrays import as_device, grid_1d, mul_rn, stream_sync
from .saliency import Superpixels, superpixel_layout

NEGATIVE_VOTE_TOLERANCE = 1e-9
"""Initial votes down to ``-NEGATIVE_VOTE_TOLERANCE`` are rounding noise and read as 0
(as :data:`fastunlc.voting.NEGATIVE_VOTE_TOLERANCE`)."""


@cuda.jit
def _clip_votes(votes, tolerance, out, bad):
    """``out = max(votes, 0)``; ``bad[0] = 1`` if a vote is not finite or below
    ``-tolerance``."""
    for i in range(cuda.grid(1), votes.shape[0], cuda.gridsize(1)):
        v = votes[i]
        if not (math.isfinite(v) and v >= -tolerance):
            bad[0] = 1
        out[i] = max(v, 0.0)


@cuda.jit(device=True, inline=True)
def _normalised(votes, peaks, frame, c):
    """Vote ``c`` divided by its frame's peak when that is > 0 (the CPU divides by 1)."""
    p = peaks[frame[c]]
    return votes[c] / p if p > 0 else votes[c]


@cuda.jit
def _propagate(indices, weights, votes, peaks_in, frame, out, peaks_out):
    """One iteration for every row: ``out[r] = sum_j T[r, j] * v_j`` with ``v`` the input
    votes normalised by ``peaks_in``, and each frame's maximum of ``out`` into
    ``peaks_out`` (zero on entry)."""
    for r in range(cuda.grid(1), indices.shape[0], cuda.gridsize(1)):
        s = 0.0
        for j in range(indices.shape[1]):
            c = indices[r, j]
            if c < 0:
                break
            s += mul_rn(weights[r, j], _normalised(votes, peaks_in, frame, c))
        out[r] = s
        cuda.atomic.max(peaks_out, frame[r], s)


@cuda.jit
def _normalise(votes, peaks, frame, out):
    for i in range(cuda.grid(1), votes.shape[0], cuda.gridsize(1)):
        out[i] = _normalised(votes, peaks, frame, i)


@cuda.jit
def _foreground(votes, labels, offsets, threshold, parent, sizes, energy):
    """Union-find start: ``parent`` (n * h * w,) int32 is each foreground pixel's own
    flat index, -1 for the background; ``sizes`` and ``energy`` (if not empty) zeroed."""
    n, h, w = labels.shape
    for g in range(cuda.grid(1), n * h * w, cuda.gridsize(1)):
        f = g // (h * w)
        i = g - f * h * w
        y = i // w
        x = i - y * w
        parent[g] = g if votes[offsets[f] + labels[f, y, x]] > threshold else -1
        sizes[g] = 0
        if energy.shape[0]:
            energy[g] = 0.0


@cuda.jit(device=True, inline=True)
def _find(parent, x):
    while parent[x] != x:
        x = parent[x]
    return x


@cuda.jit
def _merge(parent, h, w):
    """Union of every foreground pixel with its left and upper foreground neighbours.

    Roots are linked to the smaller root with an atomic min; a root that was linked
    meanwhile is followed and the union retried, so every component ends as one tree
    rooted at its smallest flat index."""
    for g in range(cuda.grid(1), parent.shape[0], cuda.gridsize(1)):
        if parent[g] < 0:
            continue
        i = g % (h * w)
        y = i // w
        x = i - y * w
        for step in range(2):
            if step == 0:
                other = g - 1 if x > 0 else -1
            else:
                other = g - w if y > 0 else -1
            if other < 0 or parent[other] < 0:
                continue
            a = g
            b = other
            while True:
                a = _find(parent, a)
                b = _find(parent, b)
                if a == b:
                    break
                if a > b:
                    a, b = b, a
                old = cuda.atomic.min(parent, b, a)
                if old == b:
                    break
                b = old


@cuda.jit
def _flatten(parent, votes, labels, offsets, sizes, energy):
    """Point every foreground pixel at its root, count the root's pixels and (when
    ``energy`` is not empty) sum their mask values into it."""
    h, w = labels.shape[1], labels.shape[2]
    for g in range(cuda.grid(1), parent.shape[0], cuda.gridsize(1)):
        if parent[g] < 0:
            continue
        root = _find(parent, g)
        parent[g] = root
        cuda.atomic.add(sizes, root, 1)
        if energy.shape[0]:
            f = g // (h * w)
            i = g - f * h * w
            y = i // w
            x = i - y * w
            cuda.atomic.add(energy, root, votes[offsets[f] + labels[f, y, x]])


def _components(votes, labels, offsets, threshold, energy, stream):
    """Components of ``votes`` painted and thresholded, over all frames at once:
    ``(parent, sizes)``, ``parent`` (n * h * w,) int32 the root (smallest flat index) of
    each foreground pixel's component, -1 for the background, ``sizes`` (n * h * w,)
    int32 pixels per root; ``energy``, (n * h * w,) float64 or (0,), receives the
    summed mask value per root."""
    n, h, w = labels.shape
    parent = cuda.device_array(n * h * w, np.int32, stream=stream)
    sizes = cuda.device_array(n * h * w, np.int32, stream=stream)
    blocks, threads = grid_1d(n * h * w)
    _foreground[blocks, threads, stream](votes, labels, offsets, threshold, parent, sizes,
                                         energy)
    _merge[blocks, threads, stream](parent, h, w)
    _flatten[blocks, threads, stream](parent, votes, labels, offsets, sizes, energy)
    return parent, sizes


def components(votes, labels, offsets, threshold: float, *, stream=0):
    """4-connected components of each frame's painted votes above ``threshold``.

    Parameters
    ----------
    votes : (k,) float64 device or host array
    labels : (n, h, w) int32 device or host array
        Superpixel labels, contiguous ``0 .. n_f - 1`` in frame f.
    offsets : (n + 1,) int host array
    threshold : float
    stream : numba.cuda.Stream or 0, keyword-only

    Returns
    -------
    roots : (n, h, w) int32 device array
        Per foreground pixel, the flat index ``f * h * w + y * w + x`` of its
        component's first pixel in raster order; -1 for the background.
    sizes : (n * h * w,) int32 device array
        Pixels of each component at its root's flat index, 0 elsewhere.
    """
    labels = as_device(labels, stream=stream)
    layout = superpixel_layout(labels, offsets, stream=stream)
    roots, sizes = _components(as_device(votes, stream=stream), labels, layout.offsets,
                               float(threshold), cuda.device_array(0, np.float64), stream)
    return roots.reshape(labels.shape), sizes


@cuda.jit
def _round_means(votes, labels, offsets, frame, boxes, counts, parent, sizes, energy,
                 energy_fraction, value, out):
    """Superpixel means of the painted ``votes`` after low-energy blob removal.

    A component (root r) whose summed mask ``energy[r]`` is below ``energy_fraction x
    sizes[r]`` is painted ``value``. Without components (``parent`` empty) every pixel of
    a superpixel holds its vote, and the sum is that vote added ``count`` times, as the
    CPU adds it. Otherwise the superpixel's bounding box is walked in raster order, the
    CPU's order of addition."""
    h, w = labels.shape[1], labels.shape[2]
    for s in range(cuda.grid(1), out.shape[0], cuda.gridsize(1)):
        v = votes[s]
        total = 0.0
        if parent.shape[0] == 0:
            for _ in range(counts[s]):
                total += v
        else:
            f = frame[s]
            label = s - offsets[f]
            base = f * h * w
            for y in range(boxes[s, 0], boxes[s, 1] + 1):
                for x in range(boxes[s, 2], boxes[s, 3] + 1):
                    if labels[f, y, x] != label:
                        continue
                    root = parent[base + y * w + x]
                    if root >= 0 and energy[root] < energy_fraction * sizes[root]:
                        total += value
                    else:
                        total += v
        out[s] = total / counts[s]


@cuda.jit
def _largest(parent, sizes, h, w, largest):
    """Each frame's largest component size (atomic max over the roots)."""
    for g in range(cuda.grid(1), parent.shape[0], cuda.gridsize(1)):
        if parent[g] == g:
            cuda.atomic.max(largest, g // (h * w), sizes[g])


@cuda.jit
def _paint(votes, labels, offsets, parent, sizes, largest, relative_size, small_value, out):
    """The final masks: each pixel's vote, float64, and ``small_value`` in components
    smaller than ``relative_size`` x their frame's largest; rounded once to float32."""
    n, h, w = labels.shape
    for g in range(cuda.grid(1), n * h * w, cuda.gridsize(1)):
        f = g // (h * w)
        i = g - f * h * w
        y = i // w
        x = i - y * w
        value = votes[offsets[f] + labels[f, y, x]]
        root = parent[g]
        if root >= 0 and sizes[root] < relative_size * largest[f]:
            value = small_value
        out[f, y, x] = value


def _energy_can_be_low(threshold: float, energy_fraction: float) -> bool:
    """:func:`fastunlc.voting._energy_can_be_low`: whether some component of ``mask >
    threshold`` could sum below ``energy_fraction`` x its size (not when its pixels all
    exceed a positive threshold that is above the fraction; 1e-6 covers rounding)."""
    return threshold <= 0 or energy_fraction >= threshold * (1.0 - 1e-6)


def consensus_voting(votes, transition, labels, offsets, config: UNLCConfig = REFERENCE, *,
                     stream=0, layout: Superpixels | None = None):
    """Soft foreground masks of a shot by consensus voting, on the GPU.

    ``config.voting_rounds`` rounds of ``voting_iterations / voting_rounds`` iterations
    (``v <- T v``, then each frame divided by its largest vote when that is > 0); after
    each round the votes are painted, low-energy blobs removed and the votes recomputed
    as superpixel means; finally the votes are painted and small blobs removed. See
    :func:`fastunlc.voting.consensus_voting` and this module's docstring for how the
    results agree with it.

    Parameters
    ----------
    votes : (k,) float64 device or host array
        Initial vote per superpixel, >= 0 (rounding noise down to -1e-9 reads as 0).
    transition : Transition
        Row-stochastic transition matrix in fixed-width rows (:func:`.graph.transition`,
        or :func:`.graph.rows_from_csr` of a scipy matrix): ``indices`` (k, M) int64 and
        ``weights`` (k, M) float64, device or host arrays; row r's columns and values,
        ``-1`` after its entries, which are summed in the order given.
    labels : (n, h, w) int32 device or host array
        Superpixel labels, contiguous ``0 .. n_f - 1`` in frame f.
    offsets : (n + 1,) int host array
        Frame f owns superpixels ``offsets[f] .. offsets[f + 1] - 1``.
    config : UNLCConfig
        Uses ``voting_iterations``, ``voting_rounds``, ``foreground_threshold``,
        ``low_energy_fraction``, ``low_energy_value``, ``relative_blob_size`` and
        ``small_blob_margin``.
    stream : numba.cuda.Stream or 0, keyword-only
    layout : Superpixels, keyword-only, optional
        :func:`.saliency.superpixel_layout` of ``labels`` and ``offsets`` if the caller
        has it.

    Returns
    -------
    (n, h, w) float32 device array
        Soft masks in [0, 1]; foreground is ``mask > config.foreground_threshold``.

    Raises
    ------
    ValueError
        On mismatched shapes, labels outside ``0 .. n_f - 1``, an empty superpixel, or
        negative or non-finite votes (each check copies a flag back, which waits for the
        stream).
    """
    labels = as_device(labels, stream=stream)
    layout = layout or superpixel_layout(labels, offsets, stream=stream)
    n, h, w = labels.shape
    if n * h * w >= 2**31:
        raise ValueError(f"a shot of {n} x {h} x {w} pixels is too large for int32 pixel "
                         "indices; split it")
    k = int(layout.host_offsets[-1])
    votes = as_device(votes, stream=stream)
    indices = as_device(transition.indices, stream=stream)
    weights = as_device(transition.weights, stream=stream)
    if votes.shape != (k,):
        raise ValueError(f"votes must have shape ({k},) = offsets[-1], got {votes.shape}")
    if (indices.ndim != 2 or indices.shape[0] != k or weights.shape != indices.shape
            or indices.dtype != np.int64 or weights.dtype != np.float64):
        raise ValueError(f"transition's indices and weights must be int64 and float64 (k, M) "
                         f"with k = {k}, got {indices.dtype} {indices.shape} and "
                         f"{weights.dtype} {weights.shape}")
    blocks_k, threads_k = grid_1d(k)
    current = cuda.device_array(k, np.float64, stream=stream)
    bad = cuda.to_device(np.zeros(1, np.int32), stream=stream)
    _clip_votes[blocks_k, threads_k, stream](votes, NEGATIVE_VOTE_TOLERANCE, current, bad)
    flag = bad.copy_to_host(stream=stream)
    stream_sync(stream)
    if flag[0]:
        raise ValueError("votes must be finite and >= 0 (mean saliency in [0, 1])")

    per_round = config.voting_iterations // config.voting_rounds
    threshold = float(config.foreground_threshold)
    label_blobs = _energy_can_be_low(threshold, config.low_energy_fraction)
    # Row i of a round's peaks: the frames' maxima of its i-th votes; row 0 stays 0 (the
    # round starts from means, which are not divided).
    peaks = cuda.to_device(np.zeros((config.voting_rounds, per_round + 1, n)), stream=stream)
    following = cuda.device_array(k, np.float64, stream=stream)
    normalised = cuda.device_array(k, np.float64, stream=stream)
    no_components = cuda.device_array(0, np.int32, stream=stream)
    for r in range(config.voting_rounds):
        for i in range(per_round):
            _propagate[blocks_k, threads_k, stream](
                indices, weights, current, peaks[r, i], layout.frame, following,
                peaks[r, i + 1])
            current, following = following, current
        _normalise[blocks_k, threads_k, stream](current, peaks[r, per_round], layout.frame,
                                                normalised)
        if label_blobs:
            energy = cuda.device_array(n * h * w, np.float64, stream=stream)
            parent, sizes = _components(normalised, labels, layout.offsets, threshold, energy,
                                        stream)
        else:
            parent = sizes = no_components
            energy = cuda.device_array(0, np.float64, stream=stream)
        _round_means[blocks_k, threads_k, stream](
            normalised, labels, layout.offsets, layout.frame, layout.boxes, layout.counts,
            parent, sizes, energy, float(config.low_energy_fraction),
            float(config.low_energy_value), current)

    parent, sizes = _components(current, labels, layout.offsets, threshold,
                                cuda.device_array(0, np.float64, stream=stream), stream)
    largest = cuda.to_device(np.zeros(n, np.int32), stream=stream)
    blocks, threads = grid_1d(n * h * w)
    _largest[blocks, threads, stream](parent, sizes, h, w, largest)
    masks = cuda.device_array((n, h, w), np.float32, stream=stream)
    _paint[blocks, threads, stream](
        current, labels, layout.offsets, parent, sizes, largest,
        float(config.relative_blob_size), threshold - config.small_blob_margin, masks)
    return masks
