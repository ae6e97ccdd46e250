"""Appearance saliency by graph-based manifold ranking (Yang et al., CVPR 2013).

uNLC falls back on this when fewer than ``min_dominant_fraction`` of a shot's frames
show a dominant motion (spec, section 2). The reference called an external
manifold-ranking module whose output is low where the image is salient, subtracted
the global maximum and so passed scores <= 0 to the pipeline. Here saliency is
computed from the paper and returned the right way round: in [0, 1], high = salient.

The method, on SLIC superpixels of the frame:

1. Graph: each superpixel is joined to its neighbours and to their neighbours, and
   all superpixels on the image border are joined to each other. An edge weighs
   ``exp(-d_ij / sigma2)``, ``d_ij`` the distance between the mean CIELAB colours of
   the two superpixels, min-max normalised over the edges of the frame.
2. Ranking: ``f = A y`` with ``A = (D - alpha W)^-1``, the diagonal of ``A`` set to 0
   so that a query does not rank itself.
3. Stage one: the superpixels of each image side in turn are the queries (background
   prior); each ranking is min-max normalised and complemented, and the four are
   multiplied.
4. Stage two: superpixels whose stage-one score exceeds its mean are the queries
   (foreground); their ranking, min-max normalised, is the saliency.
"""

from __future__ import annotations

import numpy as np

from .config import REFERENCE

# Mean superpixel colours closer than this (CIELAB units) everywhere: no contrast at all.
_FLAT = 1e-6


def appearance_saliency(
    frame: np.ndarray,
    *,
    n_segments: int = REFERENCE.appearance_n_segments,
    compactness: float = REFERENCE.appearance_compactness,
    alpha: float = REFERENCE.appearance_alpha,
    sigma2: float = REFERENCE.appearance_sigma2,
) -> np.ndarray:
    """Manifold-ranking saliency of one RGB frame, high = salient.

    Parameters
    ----------
    frame : (h, w, 3) uint8 ndarray
        RGB frame; in uNLC the 100 x 100 flow frame. Both sides must be >= 8.
    n_segments : int
        Approximate number of SLIC superpixels (``config.appearance_n_segments``, the
        paper's 200).
    compactness : float
        SLIC compactness (``config.appearance_compactness``, scikit-image's default 10).
    alpha : float
        Manifold-ranking balance in (0, 1) (``config.appearance_alpha``, the paper's 0.99).
    sigma2 : float
        Edge-weight scale ``sigma^2`` on colour distances normalised to [0, 1]
        (``config.appearance_sigma2``, the paper's 0.1).

    Returns
    -------
    (h, w) float64 ndarray
        Saliency in [0, 1], constant over each superpixel; 1 on the most salient
        superpixel. All zeros for an image without colour contrast (constant, black)
        and where SLIC returns a single superpixel (it merges white noise into one).

    Raises
    ------
    ValueError
        If ``frame`` is not (h, w, 3) uint8 with h, w >= 8, or a parameter is out of range.

    Notes
    -----
    Runtime is dominated by SLIC and the dense inverse of a (k, k) matrix, k ~ 200
    superpixels: about 7 ms per 100 x 100 frame (measured on a shared 2-core machine).

    References
    ----------
    C. Yang, L. Zhang, H. Lu, X. Ruan, M.-H. Yang, "Saliency Detection via Graph-Based
    Manifold Ranking", CVPR 2013.

    Examples
    --------
    >>> frame = np.full((100, 100, 3), 90, np.uint8)
    >>> frame[35:65, 35:65] = (220, 40, 40)
    >>> sal = appearance_saliency(frame)
    >>> bool(sal[50, 50] > 0.9 and sal[5, 5] < 0.1)
    True
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be a uint8 array of shape (h, w, 3), got {frame.dtype} "
                         f"{frame.shape}")
    if min(frame.shape[:2]) < 8:
        raise ValueError(f"frame must be at least 8 x 8 pixels, got {frame.shape[:2]}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not sigma2 > 0 or not n_segments >= 1:
        raise ValueError(f"sigma2 must be > 0 and n_segments >= 1, got {sigma2}, {n_segments}")

    # Imported here: the fallback is rare, and scikit-image's segmentation package takes
    # a third of a second to import.
    from skimage.color import rgb2lab
    from skimage.segmentation import slic

    h, w = frame.shape[:2]
    image = frame.astype(np.float64) / 255.0
    labels = slic(image, n_segments=n_segments, compactness=compactness, start_label=0)
    n = int(labels.max()) + 1
    flat = labels.ravel()
    counts = np.bincount(flat, minlength=n).astype(np.float64)
    lab = rgb2lab(image).reshape(-1, 3)
    colours = np.stack([np.bincount(flat, lab[:, c], n) for c in range(3)], axis=1)
    colours /= counts[:, None]
    if n < 2 or np.ptp(colours, axis=0).max() < _FLAT:
        return np.zeros((h, w))

    edges = _edges(labels, n)
    ranking = _ranking_matrix(colours, edges, alpha, sigma2)

    sides = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
    queries = np.zeros((n, 4))
    for j, side in enumerate(sides):
        queries[np.unique(side), j] = 1.0
    background = _minmax(ranking @ queries)
    stage_one = np.prod(1.0 - background, axis=0)

    foreground = (stage_one > stage_one.mean()).astype(np.float64)
    saliency = _minmax(ranking @ foreground[:, None])[0]
    return saliency[labels]


def _edges(labels: np.ndarray, n: int) -> np.ndarray:
    """Graph of the superpixels as a (n, n) bool matrix, symmetric, empty diagonal.

    Neighbours share a 4-connected pixel boundary; each node is also joined to its
    neighbours' neighbours, and all nodes touching the image border form a clique
    (the image boundary is treated as one closed loop).
    """
    left, right = labels[:, :-1].ravel(), labels[:, 1:].ravel()
    up, down = labels[:-1, :].ravel(), labels[1:, :].ravel()
    a = np.concatenate([left, up])
    b = np.concatenate([right, down])
    touching = a != b
    adjacent = np.zeros((n, n), bool)
    adjacent[a[touching], b[touching]] = True
    adjacent |= adjacent.T
    # Float product goes through BLAS; a positive entry means a common neighbour.
    one_hop = adjacent.astype(np.float64)
    edges = adjacent | (one_hop @ one_hop > 0)
    border = np.zeros(n, bool)
    border[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    edges |= border[:, None] & border[None, :]
    np.fill_diagonal(edges, False)
    return edges


def _ranking_matrix(colours: np.ndarray, edges: np.ndarray, alpha: float,
                    sigma2: float) -> np.ndarray:
    """``(D - alpha W)^-1`` with a zero diagonal, (n, n) float64, from (n, 3) colours."""
    distance = np.sqrt(((colours[:, None, :] - colours[None, :, :]) ** 2).sum(-1))
    on_edges = distance[edges]
    low, span = on_edges.min(), np.ptp(on_edges)
    # Edge distances all equal (no contrast along the graph): every weight becomes 1.
    scaled = (distance - low) / span if span > 0 else np.zeros_like(distance)
    weights = np.where(edges, np.exp(-scaled / sigma2), 0.0)
    # With >= 2 superpixels tiling the image every node has an edge of weight > 0, so
    # D - alpha W (alpha < 1) is strictly diagonally dominant, hence invertible.
    system = np.diag(weights.sum(axis=1)) - alpha * weights
    ranking = np.linalg.inv(system)
    np.fill_diagonal(ranking, 0.0)
    return ranking


def _minmax(scores: np.ndarray) -> np.ndarray:
    """Columns of (n, m) ``scores`` scaled to [0, 1]; returned as (m, n). Flat columns -> 0."""
    low = scores.min(axis=0)
    span = scores.max(axis=0) - low
    scaled = np.divide(scores - low, span, out=np.zeros_like(scores), where=span > 0)
    return scaled.T
