"""fastunlc's stages against the ORIGINAL uNLC's recorded outputs (tests/data/README.md).

Each stage is fed the same input as the original's stage was (the recorded frames; the
later stages take fastunlc's own earlier outputs, which these tests show equal the
original's), so a change of any reference parameter or behaviour makes the first stage it
touches, and usually every later one, fail here.

Tolerances, measured when the recordings were made (2026-12-02): every stage agreed to the
float32 rounding of the recording (flows exactly, saliency/descriptors/votes within 4e-8,
labels exactly, soft masks within 2e-6). The bounds below leave room only for a different
compiler or BLAS (fused multiply-adds, summation order), far below what a parameter change
moves (tens of percent of a stage's range).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fastunlc import descriptors, flow, pipeline, saliency, superpixels
from fastunlc.config import REFERENCE
from fastunlc.reference import saliency as reference_saliency

DATA = Path(__file__).parent / "data"
CLIPS = ("vtest", "synthetic")
FLOW_ATOL = 1e-4  # pixels; flows reach 5.8 px
UNIT_ATOL = 1e-5  # saliency, descriptors, votes and soft masks all lie in [0, 1]


@pytest.fixture(scope="module", params=CLIPS)
def clip(request: pytest.FixtureRequest) -> dict:
    """The recording plus fastunlc's stages on its frames (computed once per clip)."""
    rec = dict(np.load(DATA / f"reference_{request.param}.npz"))
    frames = rec["frames"]
    n, h, w, _ = frames.shape
    small = flow.resize_for_flow(frames, REFERENCE.flow_size)
    pairs = flow.flow_pairs(n, REFERENCE.flow_radius)
    flows = flow.optical_flow(small, pairs, REFERENCE)
    motion = saliency.motion_saliency(flows, pairs, n, REFERENCE)
    labels, counts = superpixels.slic_superpixels_batch(frames, REFERENCE)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    ours = {
        "pairs": pairs, "flows": flows, "motion": motion, "labels": labels,
        "counts": counts, "offsets": offsets,
        # The pipeline never paints full-size saliency (it pools it into superpixels in one
        # kernel); the oracle paints it, and test_saliency pins the kernel to it at 1e-12.
        "saliency": reference_saliency.upsample_saliency(motion.saliency, (h, w), REFERENCE),
        "votes": saliency.superpixel_saliency(motion.saliency, labels, offsets, REFERENCE)[0],
        "masks": pipeline.segment_shot(frames, REFERENCE).masks,
    }
    return {"rec": rec, "ours": ours, "name": request.param}


def test_recordings_are_what_the_readme_says(clip):
    rec = clip["rec"]
    assert rec["frames"].shape == (10, 96, 128, 3) and rec["frames"].dtype == np.uint8
    fg = (rec["masks"] > REFERENCE.foreground_threshold).mean()
    assert 0.01 < fg < 0.2  # the original found an object: masks are not trivially empty


def test_flow_matches_original(clip):
    rec, ours = clip["rec"], clip["ours"]
    # the original calls pyflow in this order: frame i, then j = -3..3 (tests/data/README.md)
    n = len(rec["frames"])
    order = [(i, i + j) for i in range(n) for j in range(-3, 4) if j and 0 <= i + j < n]
    np.testing.assert_array_equal(ours["pairs"], order)
    index = [order.index(tuple(p)) for p in rec["flow_pairs"]]
    np.testing.assert_allclose(ours["flows"][index, ..., 0], rec["flow_u"], rtol=0, atol=FLOW_ATOL)
    np.testing.assert_allclose(ours["flows"][index, ..., 1], rec["flow_v"], rtol=0, atol=FLOW_ATOL)


def test_saliency_matches_original(clip):
    assert clip["ours"]["motion"].dominant_fraction == 1.0  # both clips: motion saliency
    np.testing.assert_allclose(clip["ours"]["saliency"], clip["rec"]["saliency"],
                               rtol=0, atol=UNIT_ATOL)


def test_superpixel_labels_match_original(clip):
    np.testing.assert_array_equal(clip["ours"]["labels"], clip["rec"]["superpixels"])


def test_descriptors_match_original(clip):
    rec, ours = clip["rec"], clip["ours"]
    frames, labels, counts = rec["frames"], ours["labels"], ours["counts"]
    got = np.concatenate([
        descriptors.superpixel_descriptors(frames[i], labels[i], int(counts[i]), REFERENCE)
        for i in rec["descriptor_frames"]])
    assert got.shape == rec["descriptors"].shape
    np.testing.assert_allclose(got, rec["descriptors"], rtol=0, atol=UNIT_ATOL)


def test_initial_votes_match_original(clip):
    np.testing.assert_allclose(clip["ours"]["votes"], clip["rec"]["votes_initial"],
                               rtol=0, atol=UNIT_ATOL)


def test_masks_match_original(clip):
    ours, rec = clip["ours"]["masks"], clip["rec"]["masks"]
    np.testing.assert_allclose(ours, rec, rtol=0, atol=UNIT_ATOL)
    threshold = REFERENCE.foreground_threshold
    np.testing.assert_array_equal(ours > threshold, rec > threshold)
