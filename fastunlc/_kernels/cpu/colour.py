"""Distinct colours of an RGB image, found with an open-addressing hash table."""

from __future__ import annotations

import numpy as np
from numba import njit

_EMPTY = np.int32(-1)
_GOLDEN = 2654435761  # Knuth's multiplicative hash (codes < 2**24: no int64 overflow)


@njit(cache=True)
def distinct_colours(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct colours of ``rgb`` ``(n, 3)`` uint8, in order of first appearance.

    Returns ``colours`` ``(k, 3)`` uint8, ``inverse`` ``(n,)`` int32 with
    ``colours[inverse] == rgb``, and ``counts`` ``(k,)`` int64, the pixels of each
    colour. The table holds at least twice as many slots as pixels, so probes stay
    short; work is linear in ``n``.
    """
    n = rgb.shape[0]
    bits = 1
    while (1 << bits) < 2 * max(n, 1):
        bits += 1
    mask = (1 << bits) - 1
    shift = 32 - bits
    keys = np.full(1 << bits, _EMPTY, np.int32)
    slots = np.empty(1 << bits, np.int32)
    colours = np.empty((n, 3), np.uint8)
    inverse = np.empty(n, np.int32)
    counts = np.zeros(n, np.int64)
    k = 0
    for i in range(n):
        code = (np.int32(rgb[i, 0]) << 16) | (np.int32(rgb[i, 1]) << 8) | np.int32(rgb[i, 2])
        s = ((np.int64(code) * _GOLDEN) & 0xFFFFFFFF) >> shift
        while True:
            if keys[s] == _EMPTY:
                keys[s] = code
                slots[s] = k
                colours[k, 0] = rgb[i, 0]
                colours[k, 1] = rgb[i, 1]
                colours[k, 2] = rgb[i, 2]
                inverse[i] = k
                counts[k] = 1
                k += 1
                break
            if keys[s] == code:
                inverse[i] = slots[s]
                counts[slots[s]] += 1
                break
            s = (s + 1) & mask
    return colours[:k].copy(), inverse, counts[:k].copy()
