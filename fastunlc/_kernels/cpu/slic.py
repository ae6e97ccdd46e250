"""SLIC kernels reproducing scikit-image 0.26's ``slic`` on RGB frames, in float32.

scikit-image's steps, in its order, and what is done here for each:

1. the image is rescaled by its global minimum and maximum and converted to CIELAB
   (D65, 2 degrees): a 256-entry table ``lut`` (built by the caller in float64 with
   NumPy's own operations) maps a uint8 level to its rescaled, linearised sRGB value;
   :func:`lab_rows` applies the XYZ matrix, CIELAB's ``f`` and the L, a, b formulas;
2. a Gaussian blur of each CIELAB channel along y then x (``scipy.ndimage``'s
   ``gaussian_filter``, mode ``'reflect'``: ``dcba|abcd|dcba``) and a scaling by
   ``1 / compactness``: :func:`smooth_rows` (scikit-image also blurs along the depth
   axis of its one-slice volume, which is the identity up to rounding);
3. k-means in (y, x, L, a, b), always ``n_iter`` steps: every pixel goes to the first
   centre, in centre order, at the smallest distance ``((cy - y)**2 + (cx - x)**2) /
   step**2 + |colour - centre colour|**2`` among the centres whose window ``[c - 2 step,
   c + 2 step]`` holds it (it keeps its label if none does); centres then move to their
   pixels' means (:func:`kmeans_step`, :func:`update_centres`). The first step uses
   black centres, as scikit-image's does. A centre left without pixels is dead for good
   (scikit-image's becomes NaN and never wins a pixel again);
4. :func:`enforce_connectivity`: scikit-image's raster-order breadth-first relabelling,
   neighbour order included, which merges components smaller than ``min_size`` into
   the last differently labelled neighbour it met.

Step 3 does not try every centre of every window: tiles of ``BAND x TILE`` pixels,
stored contiguously, skip the centres that provably cannot take any of their pixels
(see :func:`kmeans_step`), so its result is the exhaustive search's, bit for bit.
Centre sums are integers, exact in any order. Computing in float32 where scikit-image
uses float64 (the type of ``frame / 255.``) moves a few pixels per frame at most.

Numba makes each array view (``a[b, t]``) with two atomic reference-count updates;
the k-means loops index whole arrays (``a[b, t, i]``) instead.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

BAND = 16
"""Rows per band, the height of a tile (16 x 16 tiles measured fastest)."""
TILE = 16
"""Columns per tile: one 512-bit vector of float32."""
TILE_SIZE = BAND * TILE
FIXED_ONE = 2.0**32
"""Colours are summed as integers in units of ``1 / FIXED_ONE``."""

_FAR = np.float32(np.finfo(np.float32).max)

# sRGB -> XYZ (skimage.color.colorconv.xyz_from_rgb), each row divided by the D65 white
# point's component (0.95047, 1, 1.08883) as ``xyz2lab`` divides XYZ by it.
_XYZN_FROM_RGB = (
    np.array([[0.412453, 0.357580, 0.180423],
              [0.212671, 0.715160, 0.072169],
              [0.019334, 0.119193, 0.950227]])
    / np.array([[0.95047], [1.0], [1.08883]])
).astype(np.float32)

_F_KNEE = np.float32(0.008856)
_F_SLOPE = np.float32(7.787)
_F_OFFSET = np.float32(16.0 / 116.0)


@njit(cache=True, inline="always", error_model="numpy")
def _lab_f(t):
    """CIELAB's ``f`` of float32 ``t`` in [0, 1]: the cube root above the knee, the linear
    segment below.

    The cube root starts from ``t ** (5/16)`` (square roots only; within 11% of it on
    [0.008856, 1]) and takes three Halley steps, written out so that the loop over
    pixels stays innermost and vectorises (libm's ``cbrt`` does not).
    """
    c = max(t, _F_KNEE)
    q = np.sqrt(np.sqrt(c))
    y = q * np.sqrt(np.sqrt(q))
    two = np.float32(2.0)
    y3 = y * y * y
    y = y * (y3 + two * c) / (two * y3 + c)
    y3 = y * y * y
    y = y * (y3 + two * c) / (two * y3 + c)
    y3 = y * y * y
    y = y * (y3 + two * c) / (two * y3 + c)
    return y if t > _F_KNEE else _F_SLOPE * t + _F_OFFSET


# error_model="numpy": no zero-division check in the Halley steps (the denominators are
# positive), which would stop vectorisation.
@njit(cache=True, error_model="numpy")
def lab_rows(frame, lut, lab, r0, r1):
    """CIELAB of rows ``[r0, r1)`` of ``frame`` (h, w, 3) uint8 into ``lab`` (3, h, w)
    float32; ``lut`` (256,) float32 is the linearised sRGB value of each uint8 level."""
    m = _XYZN_FROM_RGB
    w = frame.shape[1]
    rgb = np.empty((3, w), np.float32)
    for y in range(r0, r1):
        # Table look-ups first, the arithmetic in a separate loop that vectorises.
        for x in range(w):
            for c in range(3):
                rgb[c, x] = lut[frame[y, x, c]]
        for x in range(w):
            r = rgb[0, x]
            g = rgb[1, x]
            b = rgb[2, x]
            fx = _lab_f(r * m[0, 0] + g * m[0, 1] + b * m[0, 2])
            fy = _lab_f(r * m[1, 0] + g * m[1, 1] + b * m[1, 2])
            fz = _lab_f(r * m[2, 0] + g * m[2, 1] + b * m[2, 2])
            lab[0, y, x] = np.float32(116.0) * fy - np.float32(16.0)
            lab[1, y, x] = np.float32(500.0) * (fx - fy)
            lab[2, y, x] = np.float32(200.0) * (fy - fz)


@njit(cache=True)
def reflect_table(n, r):
    """Source index of positions ``-r .. n + r - 1`` of a line of ``n`` samples extended
    as scipy.ndimage's ``'reflect'`` mode does (``dcba|abcd|dcba``, repeated for short
    lines): ``(n + 2 r,)`` int64, entry ``i`` for position ``i - r``."""
    table = np.empty(n + 2 * r, np.int64)
    for i in range(n + 2 * r):
        j = (i - r) % (2 * n)
        table[i] = j if j < n else 2 * n - 1 - j
    return table


@njit(cache=True)
def smooth_rows(lab, weights, scale, row_source, column_source, image, r0, r1):
    """Gaussian smoothing of rows ``[r0, r1)`` into the tiled ``image``.

    ``lab`` (3, h, w) float32 is correlated with the symmetric kernel ``weights``
    (2 r + 1,) float32 along y, then along x (scipy.ndimage.gaussian_filter's order),
    multiplied by ``scale`` and stored in ``image`` (bands, tiles, 3, TILE_SIZE). Borders
    reflect through ``row_source`` and ``column_source`` (:func:`reflect_table` of h and
    w). Each sum adds the pair terms farthest first, as ``scipy.ndimage.correlate1d``
    does.
    """
    w = lab.shape[2]
    r = weights.shape[0] // 2
    wc = weights[r]
    n_tiles = image.shape[1]
    flat = image.reshape(image.size)
    padded = np.empty(w + 2 * r, np.float32)
    column = padded[r:r + w]
    out = np.empty(w, np.float32)
    # Row views here: indexing lab[c, row, x] with a row read from a table keeps the
    # loops from vectorising (3x slower), which costs more than the views' counting.
    for c in range(3):
        for y in range(r0, r1):
            centre = lab[c, y]
            for x in range(w):
                column[x] = centre[x] * wc
            for j in range(r, 0, -1):
                above = lab[c, row_source[y + r - j]]
                below = lab[c, row_source[y + r + j]]
                wj = weights[r - j]
                for x in range(w):
                    column[x] += (above[x] + below[x]) * wj
            for i in range(r):
                padded[i] = column[column_source[i]]
                padded[r + w + i] = column[column_source[r + w + i]]
            for x in range(w):
                out[x] = column[x] * wc
            for j in range(r, 0, -1):
                left = padded[r - j:r - j + w]
                right = padded[r + j:r + j + w]
                wj = weights[r - j]
                for x in range(w):
                    out[x] += (left[x] + right[x]) * wj
            base = ((y // BAND) * n_tiles * 3 + c) * TILE_SIZE + (y % BAND) * TILE
            for t in range(n_tiles):
                start = base + t * 3 * TILE_SIZE
                for i in range(min(TILE, w - t * TILE)):
                    flat[start + i] = out[t * TILE + i] * scale


# fastmath: the minimum and maximum reductions vectorise; the values are finite.
@njit(cache=True, fastmath=True)
def colour_boxes(image, h, w, boxes):
    """Per-channel minimum and maximum of each tile's pixels (those inside the frame)
    into ``boxes`` (bands, tiles, 6) float32 as ``min L, a, b, max L, a, b``."""
    for b in range(image.shape[0]):
        n_rows = min(BAND, h - b * BAND)
        for t in range(image.shape[1]):
            n_columns = min(TILE, w - t * TILE)
            for c in range(3):
                lo = _FAR
                hi = -_FAR
                for i in range(TILE_SIZE):
                    inside = (i // TILE < n_rows) & (i % TILE < n_columns)
                    lo = min(lo, image[b, t, c, i] if inside else _FAR)
                    hi = max(hi, image[b, t, c, i] if inside else -_FAR)
                boxes[b, t, c] = lo
                boxes[b, t, 3 + c] = hi


@njit(cache=True)
def centre_windows(centres, alive, half, h, w, windows):
    """Search windows of the centres as scikit-image computes them: rows
    ``[int(max(cy - half_y, 0)), int(min(cy + half_y + 1, h)))`` and likewise columns,
    written to ``windows`` (k, 4) int64 as ``y0, y1, x0, x1``; empty for dead centres."""
    for k in range(centres.shape[0]):
        if not alive[k]:
            for i in range(4):
                windows[k, i] = 0
            continue
        cy = np.float64(centres[k, 0])
        cx = np.float64(centres[k, 1])
        windows[k, 0] = int(max(cy - half[0], 0.0))
        windows[k, 1] = int(min(cy + half[0] + 1, h))
        windows[k, 2] = int(max(cx - half[1], 0.0))
        windows[k, 3] = int(min(cx + half[1] + 1, w))


@njit(cache=True, inline="always")
def _nearest_square(c, lo, hi):
    """Smallest float32 ``(c - i)**2`` over integers ``i`` in ``[lo, hi)``: the computed
    square grows with ``|c - i|``, so one of the two integers around ``c`` (clamped to
    the range) holds it."""
    i = min(max(int(c), lo), hi - 1)
    j = min(i + 1, hi - 1)
    d = c - np.float32(i)
    e = c - np.float32(j)
    return min(d * d, e * e)


@njit(cache=True, inline="always")
def _evaluate(image, distance, labels, b, t, centres, k, windows, spatial_weight, rows,
              columns):
    """Offer the pixels of tile ``(b, t)`` that lie in centre ``k``'s window to it.

    A pixel moves to centre ``k`` when ``(distance, k)`` is lexicographically smaller
    than its ``(distance, label)``, so the outcome is scikit-image's (the first nearest
    centre in centre order) whatever order centres are offered in. Pixel ``i`` of the
    tile is at ``(b * BAND + rows[i], t * TILE + columns[i])``.
    """
    kk = np.int32(k)
    cy = centres[k, 0]
    cx = centres[k, 1]
    cl = centres[k, 2]
    ca = centres[k, 3]
    cb = centres[k, 4]
    top = np.float32(b * BAND)
    left = np.float32(t * TILE)
    y0 = np.float32(windows[k, 0])
    y1 = np.float32(windows[k, 1] - 1)
    x0 = np.float32(windows[k, 2])
    x1 = np.float32(windows[k, 3] - 1)
    for i in range(TILE_SIZE):
        yf = top + rows[i]
        xf = left + columns[i]
        dy = cy - yf
        dx = cx - xf
        # scikit-image's operation order: the spatial term, then the colour terms.
        d = (dy * dy + dx * dx) * spatial_weight
        v = image[b, t, 0, i] - cl
        colour = v * v
        v = image[b, t, 1, i] - ca
        colour += v * v
        v = image[b, t, 2, i] - cb
        colour += v * v
        d += colour
        old = distance[b, t, i]
        owner = labels[b, t, i]
        # Bitwise & and |: no short-circuit branches, so the loop vectorises.
        better = ((yf >= y0) & (yf <= y1) & (xf >= x0) & (xf <= x1)
                  & ((d < old) | ((d == old) & (kk < owner))))
        distance[b, t, i] = d if better else old
        labels[b, t, i] = kk if better else owner


@njit(cache=True, inline="always")
def _tile_max(bits, b, t):
    """Largest distance of tile ``(b, t)``, read through ``bits``, the int32 view of the
    float32 distances: for floats >= 0 the bit patterns order as the values (and -1
    stays below them), and an integer maximum vectorises where a float one does not."""
    top = bits[b, t, 0]
    for i in range(1, TILE_SIZE):
        top = max(top, bits[b, t, i])
    return top


@njit(cache=True, inline="always")
def _uniform_limit(image, b, t, centres, k, windows, spatial_weight, rows, columns, h, w,
                   limit):
    """Pruning limit of tile ``(b, t)`` in a step where all centres have the same colour
    (the first: scikit-image starts them black), after offering it to centre ``k``.

    With a common colour a pixel's colour term ``C`` is the same for every centre, and a
    centre whose spatial term ``s`` exceeds ``s_k * (1 + 8 u) + 8 u C`` (``u`` = 2**-24,
    float32's unit roundoff) is strictly farther after rounding. The limit is the largest
    such value over the tile's pixels, computed with a margin of 32 u that covers its
    own rounding; FAR where a pixel is outside centre ``k``'s window. Returned as int32
    bits like :func:`_tile_max`; ``limit`` (1, 1, TILE_SIZE) float32 is scratch.
    """
    cy = centres[k, 0]
    cx = centres[k, 1]
    top = np.float32(b * BAND)
    left = np.float32(t * TILE)
    y0 = np.float32(windows[k, 0])
    y1 = np.float32(windows[k, 1] - 1)
    x0 = np.float32(windows[k, 2])
    x1 = np.float32(windows[k, 3] - 1)
    height = np.float32(h)
    width = np.float32(w)
    scale = np.float32(1.0 + 32.0 * 2.0**-24)
    margin = np.float32(32.0 * 2.0**-24)
    for i in range(TILE_SIZE):
        yf = top + rows[i]
        xf = left + columns[i]
        dy = cy - yf
        dx = cx - xf
        s = (dy * dy + dx * dx) * spatial_weight
        v = image[b, t, 0, i] - centres[k, 2]
        colour = v * v
        v = image[b, t, 1, i] - centres[k, 3]
        colour += v * v
        v = image[b, t, 2, i] - centres[k, 4]
        colour += v * v
        value = s * scale + colour * margin
        covered = (yf >= y0) & (yf <= y1) & (xf >= x0) & (xf <= x1)
        inside = (yf < height) & (xf < width)
        limit[0, 0, i] = value if covered else (_FAR if inside else np.float32(-1.0))
    return _tile_max(limit.view(np.int32), 0, 0)


@njit(cache=True, inline="always")
def _move_pixel(image, b, t, i, sums, was, now):
    """Move pixel ``i`` of tile ``(b, t)`` from centre ``was`` (none if -1) to ``now`` in
    the centre sums."""
    y = b * BAND + i // TILE
    x = t * TILE + i % TILE
    sums[now, 0] += 1
    sums[now, 1] += y
    sums[now, 2] += x
    if was >= 0:
        sums[was, 0] -= 1
        sums[was, 1] -= y
        sums[was, 2] -= x
    for c in range(3):
        v = np.int64(np.float64(image[b, t, c, i]) * FIXED_ONE)
        sums[now, 3 + c] += v
        if was >= 0:
            sums[was, 3 + c] -= v


@njit(cache=True)
def kmeans_step(image, boxes, centres, windows, spatial_weight, h, w, guess, uniform, distance,
                labels, sums):
    """One assignment step and the change it makes to the centre sums.

    A band is ``BAND`` rows, cut into tiles of ``TILE`` columns. Each tile is first
    offered to one likely owner: the previous owner of its middle pixel (``guess``
    before the first step). Then every centre whose window reaches the tile is offered
    it, unless a lower bound of its distance to the tile's pixels exceeds the tile's
    largest distance so far (it could not take a pixel). The bound is the spatial term
    at the nearest row and column plus the colour term at the nearest point of the
    tile's colour box, computed with the kernel's own float32 operations: rounding is
    monotone, so it bounds the computed distances too. When all centres share one
    colour (``uniform``, the first step) the colour terms cancel out and the spatial
    bound is compared with :func:`_uniform_limit` instead. A band's centres are sorted
    by column, so the ones whose windows reach a tile are a contiguous run.

    Parameters
    ----------
    image : (bands, tiles, 3, TILE_SIZE) float32
        Smoothed CIELAB channels divided by the compactness, tiled.
    boxes : (bands, tiles, 6) float32
        From :func:`colour_boxes`.
    centres : (k, 5) float32
        ``y, x, L, a, b``.
    windows : (k, 4) int64
        From :func:`centre_windows`.
    spatial_weight : float32
        ``1 / step**2``.
    h, w : int
        Frame size; tile pixels outside it are ignored.
    guess : (bands, tiles) int32
        A seed centre near each tile, tried first in the first step.
    uniform : bool
        All centres have the same colour.
    distance : (bands, tiles, TILE_SIZE) float32
        Scratch.
    labels : (bands, tiles, TILE_SIZE) int32
        Nearest centre, updated (kept where no window reaches; -1 before the first step).
    sums : (k, 6) int64
        Receives the change of every centre's pixel count and sums of ``y``, ``x`` and
        the colours (in units of ``1 / FIXED_ONE``): integers, exact in any order.
    """
    n_bands, n_tiles = labels.shape[:2]
    n_centres = centres.shape[0]
    bits = distance.view(np.int32)
    before = np.empty(TILE_SIZE, np.int32)
    limit = np.empty((1, 1, TILE_SIZE), np.float32)
    rows = (np.arange(TILE_SIZE) // TILE).astype(np.float32)
    columns = (np.arange(TILE_SIZE) % TILE).astype(np.float32)
    height = np.float32(h)
    width = np.float32(w)
    # The band's centres, by column: index, row term, x, window columns, colour.
    members = np.empty(n_centres, np.int64)
    row_part = np.empty(n_centres, np.float32)
    member_x = np.empty(n_centres, np.float32)
    window_x0 = np.empty(n_centres, np.float32)
    window_x1 = np.empty(n_centres, np.float32)
    member_colour = np.empty((3, n_centres), np.float32)
    bounds = np.empty(n_centres, np.float32)
    bound_bits = bounds.view(np.int32)
    by_column = np.argsort(centres[:, 1])
    for b in range(n_bands):
        r0 = b * BAND
        r1 = min(r0 + BAND, h)
        top = np.float32(r0)
        middle = min(BAND // 2, r1 - r0 - 1) * TILE + TILE // 2
        n = 0
        for k in by_column:
            if windows[k, 0] < r1 and windows[k, 1] > r0:
                members[n] = k
                row_part[n] = _nearest_square(centres[k, 0], max(r0, windows[k, 0]),
                                              min(r1, windows[k, 1]))
                member_x[n] = centres[k, 1]
                # Window columns [x0, x1) as float32; both grow with the centre's column.
                window_x0[n] = windows[k, 2]
                window_x1[n] = windows[k, 3]
                for c in range(3):
                    member_colour[c, n] = centres[k, 2 + c]
                n += 1
        lo = 0
        hi = 0
        for t in range(n_tiles):
            xa = np.float32(t * TILE)
            xb = xa + np.float32(TILE)
            while lo < n and window_x1[lo] <= xa:
                lo += 1
            while hi < n and window_x0[hi] < xb:
                hi += 1
            for i in range(TILE_SIZE):
                before[i] = labels[b, t, i]
                # Pixels outside the frame get -1: never in a window, never the largest.
                inside = (top + rows[i] < height) & (xa + columns[i] < width)
                distance[b, t, i] = _FAR if inside else np.float32(-1.0)
            first = before[middle] if t * TILE + TILE // 2 < w else -1
            first = first if first >= 0 else guess[b, t]
            _evaluate(image, distance, labels, b, t, centres, first, windows, spatial_weight,
                      rows, columns)
            if uniform:
                largest = _uniform_limit(image, b, t, centres, first, windows, spatial_weight,
                                         rows, columns, h, w, limit)
            else:
                largest = _tile_max(bits, b, t)
            # Bounds of the run of centres reaching the tile, vectorised; the nearest
            # column as in _nearest_square, in float32 (exact for these integers).
            for j in range(lo, hi):
                c = member_x[j]
                first_column = max(xa, window_x0[j])
                last_column = min(xb, window_x1[j]) - np.float32(1.0)
                near = min(max(np.floor(c), first_column), last_column)
                d = c - near
                e = c - min(near + np.float32(1.0), last_column)
                bound = (row_part[j] + min(d * d, e * e)) * spatial_weight
                if not uniform:
                    g = max(max(boxes[b, t, 0] - member_colour[0, j],
                                member_colour[0, j] - boxes[b, t, 3]), np.float32(0.0))
                    colour = g * g
                    g = max(max(boxes[b, t, 1] - member_colour[1, j],
                                member_colour[1, j] - boxes[b, t, 4]), np.float32(0.0))
                    colour += g * g
                    g = max(max(boxes[b, t, 2] - member_colour[2, j],
                                member_colour[2, j] - boxes[b, t, 5]), np.float32(0.0))
                    colour += g * g
                    bound += colour
                bounds[j] = bound
            for j in range(lo, hi):
                k = members[j]
                if k != first and bound_bits[j] <= largest:
                    _evaluate(image, distance, labels, b, t, centres, k, windows,
                              spatial_weight, rows, columns)
                    if not uniform:
                        largest = _tile_max(bits, b, t)
            # Changes are sparse: find the tile rows that have any, vectorised.
            for row in range(0, TILE_SIZE, TILE):
                changed = 0
                for i in range(row, row + TILE):
                    changed += labels[b, t, i] != before[i]
                if changed:
                    for i in range(row, row + TILE):
                        if labels[b, t, i] != before[i]:
                            _move_pixel(image, b, t, i, sums, before[i], labels[b, t, i])


@njit(cache=True)
def update_centres(sums, centres, alive):
    """Move every centre to the mean of its pixels (``sums`` (k, 6) int64 as in
    :func:`kmeans_step`); a centre left without pixels dies."""
    for k in range(centres.shape[0]):
        n = sums[k, 0]
        if n == 0:
            alive[k] = False
            continue
        centres[k, 0] = np.float32(sums[k, 1] / n)
        centres[k, 1] = np.float32(sums[k, 2] / n)
        for c in range(3):
            centres[k, 2 + c] = np.float32(sums[k, 3 + c] / FIXED_ONE / n)


@njit(cache=True, inline="always")
def _visit(labels, out, queue_y, queue_x, n, ny, nx, label, new_label, size, adjacent):
    """One neighbour step of :func:`enforce_connectivity`'s search: flat pixel ``n`` at
    ``(ny, nx)``."""
    o = out[n]
    if labels[n] == label and o < 0:
        out[n] = new_label
        queue_y[size] = ny
        queue_x[size] = nx
        size += 1
    elif o >= 0 and o != new_label:
        adjacent = o
    return size, adjacent


@njit(cache=True)
def enforce_connectivity(labels, min_size, max_size, out):
    """scikit-image's ``_enforce_label_connectivity_cython`` on a 2-D label image.

    Scans pixels in raster order; from each pixel not yet relabelled, a breadth-first
    search over 4-neighbours (in the order x+1, x-1, y+1, y-1) with the same label,
    stopped at ``max_size`` pixels, collects a component. It gets the next new label
    unless it has fewer than ``min_size`` pixels: then it takes the new label of the
    last already relabelled, differently labelled neighbour the search met (the next
    new label itself if none).

    Parameters
    ----------
    labels : (h, w) int32, C-contiguous
        SLIC labels.
    min_size, max_size : int
        Component size bounds in pixels (``max_size >= 1``).
    out : (h, w) int32, C-contiguous
        Connected labels, written here, in ``[0, n)``.

    Returns
    -------
    n : int
        Number of labels (``out.max() + 1``).
    """
    h, w = out.shape
    flat = labels.reshape(h * w)
    result = out.reshape(h * w)
    result[:] = -1
    queue_y = np.empty(max_size, np.int32)
    queue_x = np.empty(max_size, np.int32)
    new_label = 0
    for y in range(h):
        for x in range(w):
            p = y * w + x
            if result[p] >= 0:
                continue
            label = flat[p]
            adjacent = new_label
            result[p] = new_label
            queue_y[0] = y
            queue_x[0] = x
            size = 1
            head = 0
            while head < size < max_size:
                qy = queue_y[head]
                qx = queue_x[head]
                q = qy * w + qx
                head += 1
                # When the component reaches max_size the search stops at once,
                # skipping the remaining neighbours, as scikit-image's does.
                if qx + 1 < w:
                    size, adjacent = _visit(flat, result, queue_y, queue_x, q + 1, qy, qx + 1,
                                            label, new_label, size, adjacent)
                    if size >= max_size:
                        break
                if qx > 0:
                    size, adjacent = _visit(flat, result, queue_y, queue_x, q - 1, qy, qx - 1,
                                            label, new_label, size, adjacent)
                    if size >= max_size:
                        break
                if qy + 1 < h:
                    size, adjacent = _visit(flat, result, queue_y, queue_x, q + w, qy + 1, qx,
                                            label, new_label, size, adjacent)
                    if size >= max_size:
                        break
                if qy > 0:
                    size, adjacent = _visit(flat, result, queue_y, queue_x, q - w, qy - 1, qx,
                                            label, new_label, size, adjacent)
            if size < min_size:
                for i in range(size):
                    result[queue_y[i] * w + queue_x[i]] = adjacent
            else:
                new_label += 1
    # A last component too small and without relabelled neighbours keeps new_label,
    # hence the maximum rather than new_label.
    return result.max() + 1


@njit(cache=True)
def workspace(h, w, workers):
    """Working arrays for ``workers`` frames of ``h x w`` at a time (index 0: worker):
    CIELAB ``(3, h, w)``, the tiled smoothed image, distance and labels, the raster labels
    ``(h, w)`` and the tiles' colour boxes. Reused from frame to frame, so that large
    arrays are not allocated (and their pages faulted in) again for every frame."""
    n_bands = (h + BAND - 1) // BAND
    n_tiles = (w + TILE - 1) // TILE
    return (
        np.empty((workers, 3, h, w), np.float32),
        # Zero: tile pixels outside the frame are computed on (then ignored).
        np.zeros((workers, n_bands, n_tiles, 3, TILE_SIZE), np.float32),
        np.empty((workers, n_bands, n_tiles, TILE_SIZE), np.float32),
        np.empty((workers, n_bands, n_tiles, TILE_SIZE), np.int32),
        np.empty((workers, h, w), np.int32),
        np.empty((workers, n_bands, n_tiles, 6), np.float32),
    )


@njit(cache=True)
def untile(tiled, out):
    """Raster ``out`` (h, w) int32 from ``tiled`` (bands, tiles, TILE_SIZE) labels."""
    h, w = out.shape
    for y in range(h):
        b = y // BAND
        row = (y % BAND) * TILE
        for x in range(w):
            out[y, x] = tiled[b, x // TILE, row + x % TILE]


@njit(cache=True)
def slic_frame(frame, lut, weights, scale, initial, half, spatial_weight, guess, n_iter,
               min_size, max_size, lab, image, distance, labels, raster, boxes, out):
    """SLIC labels of one frame, on one thread.

    Parameters
    ----------
    frame : (h, w, 3) uint8
        RGB frame.
    lut : (256,) float32
        Rescaled, linearised sRGB value of each uint8 level for this frame.
    weights : (2 r + 1,) float32
        Gaussian kernel, scipy's.
    scale : float32
        ``1 / compactness``.
    initial : (k, 5) float32
        ``y, x`` of the seed grid, colours 0 (not modified).
    half : (2,) int64
        Window half-sizes ``2 * step`` along y and x.
    spatial_weight : float32
        ``1 / step**2``.
    guess : (bands, tiles) int32
        The seed nearest to each tile's middle pixel.
    n_iter : int
        k-means iterations (scikit-image always runs them all).
    min_size, max_size : int
        Connectivity pass bounds.
    lab, image, distance, labels, raster, boxes : arrays
        One worker's slice of :func:`workspace`.
    out : (h, w) int32
        Labels, 0-based and contiguous.

    Returns
    -------
    n : int
        Number of labels.
    """
    h, w = frame.shape[:2]
    centres = initial.copy()
    lab_rows(frame, lut, lab, 0, h)
    r = weights.shape[0] // 2
    smooth_rows(lab, weights, scale, reflect_table(h, r), reflect_table(w, r), image, 0, h)
    colour_boxes(image, h, w, boxes)
    labels[:] = -1
    alive = np.ones(centres.shape[0], np.bool_)
    windows = np.empty((centres.shape[0], 4), np.int64)
    sums = np.zeros((centres.shape[0], 6), np.int64)
    for i in range(n_iter):
        centre_windows(centres, alive, half, h, w, windows)
        # The seeds all start black (scikit-image's zero colours).
        kmeans_step(image, boxes, centres, windows, spatial_weight, h, w, guess, i == 0,
                    distance, labels, sums)
        update_centres(sums, centres, alive)
    untile(labels, raster)
    return enforce_connectivity(raster, min_size, max_size, out)


@njit(cache=True, parallel=True)
def slic_frames(frames, luts, weights, scale, initial, half, spatial_weight, guess, n_iter,
                min_size, max_size, lab, image, distance, labels, raster, boxes, out, counts):
    """:func:`slic_frame` on every frame of ``frames`` (n, h, w, 3): worker ``j`` of the
    :func:`workspace` (``workers`` of them, run in parallel) takes frames ``j, j +
    workers, ...``. ``luts`` (n, 256), ``out`` (n, h, w) int32 and ``counts`` (n,) int64
    are per frame."""
    workers = lab.shape[0]
    for j in prange(workers):
        for f in range(j, frames.shape[0], workers):
            counts[f] = slic_frame(frames[f], luts[f], weights, scale, initial, half,
                                   spatial_weight, guess, n_iter, min_size, max_size, lab[j],
                                   image[j], distance[j], labels[j], raster[j], boxes[j],
                                   out[f])
