"""The seeded draw of the frames a shot contributes to the dataset."""

from __future__ import annotations

import hashlib

import numpy as np


def draw_frames(kept: np.ndarray, seed: int, key: str, shot: int,
                frames_per_shot: tuple[int, int]) -> np.ndarray:
    """The kept frames a shot contributes, sorted: a seeded draw that depends only on
    ``seed``, the video ``key`` and ``shot`` (not on the order videos are processed in).

    Parameters
    ----------
    kept : (n,) int ndarray
        Indices (within the shot) of the frames that passed the pruning.
    seed : int
        Seed of the build.
    key : str
        The video's key (:func:`fastunlc.build.inputs.video_key`).
    shot : int
        Index of the shot in the video.
    frames_per_shot : (int, int)
        Closed range the number of frames is drawn from, uniformly.

    Returns
    -------
    (m,) ndarray
        Distinct entries of ``kept``, ascending; all of them when ``n`` is at most the
        number drawn.
    """
    digest = int.from_bytes(hashlib.sha1(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, digest, shot])
    count = int(rng.integers(frames_per_shot[0], frames_per_shot[1] + 1))
    if len(kept) <= count:
        return np.sort(kept)
    return np.sort(rng.choice(kept, size=count, replace=False))
