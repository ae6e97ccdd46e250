"""The full pipeline against exact ground truth on synthetic videos.

Clips from :func:`fastunlc.synthetic.make_clip`: textured backgrounds under four
camera motions, one or two textured objects with irregular outlines moving on their
own, noise and JPEG compression; then the same camera and object motions over backdrops
and objects cut from real photographs (``scene="photo"``), where flat areas, hard edges
and fine detail set the flow modes apart. Foreground is ``p > 0.7``; IoU per frame, averaged
over the frames of a clip, then over the clips.

Thresholds were set from measurements (the comment above them), a margin below what both
flow modes reach, so that a real regression in any stage fails the test.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastunlc.config import UNLCConfig, preset
from fastunlc.pipeline import segment_shot
from fastunlc.synthetic import CAMERA_MODES, PHOTO_DIR, make_clip

from .helpers import TEST_DEVICE, mean_mask_iou

CLIPS = [("static", 1, 4), ("pan", 1, 4), ("zoom", 1, 4), ("shake", 2, 4)]
TWO_OBJECTS_UNEQUAL = ("static", 2, 4)
N_FRAMES = 24
SIZE = (180, 240)

# Measured on 2026-11-25 on this 2-core machine (mean IoU per clip, p > 0.7):
#   c2f: static 0.908, pan 0.869, zoom 0.919, shake(2 objects) 0.871 -> mean 0.892
#   dis: static 0.905, pan 0.878, zoom 0.919, shake(2 objects) 0.824 -> mean 0.882
#   static with two objects of unequal size: c2f 0.511, dis 0.508
# Measured again on 2026-12-02 after issue 8 made the flow resize PIL's (the reference's):
#   c2f: static 0.909, pan 0.869, zoom 0.919, shake(2 objects) 0.871 -> mean 0.892 (unchanged)
#   dis: static 0.905, pan 0.878, zoom 0.918, shake(2 objects) 0.451 -> mean 0.788: on the
#        shake clip the final small-blob rule now keeps one of the two objects on every
#        frame (the reference's rule, see below; with OpenCV's resize it had kept both)
#   static with two objects of unequal size: c2f 0.511, dis 0.508 (unchanged)
# So one-object clips hold both modes to the same bounds; two objects only c2f, while
# DIS, a fast mode outside the reference, must keep at least one of them (its quality
# gap is the CPU issue's "fast mode that keeps the masks", the blob rule issue 14's).
MIN_MEAN_IOU = 0.85
MIN_CLIP_IOU = 0.78
# uNLC's final blob removal keeps only blobs at least 60% the size of the largest
# (reference behaviour), so a clearly smaller second object is dropped: IoU is then
# about the larger object's share of the foreground, ~0.5 here.
MIN_UNEQUAL_PAIR_IOU = 0.45
# One of two objects of about equal size found, the other dropped.
MIN_ONE_OF_TWO_IOU = 0.40


# Photo clips: one object, seeds 1 and 2 for every camera, 144 x 192, 16 frames (~30 s
# for both modes on 2 cores). Measured on 2026-12-03 on this 2-core machine (mean IoU
# per camera over the two seeds, p > 0.7):
#   c2f: static 0.755, pan 0.588, zoom 0.774, shake 0.780 -> mean 0.724
#   dis: static 0.643, pan 0.429, zoom 0.773, shake 0.777 -> mean 0.655
# DIS's gap on the static and pan cameras is the one issue 12 measured on held-back real
# footage. Measured on 2026-12-04 (AVX-512 machine) for the fast preset (c2f in float32
# lanes, 4 outer iterations of 10 SOR sweeps), which closes it:
#   fast: static 0.752, pan 0.588, zoom 0.773, shake 0.779 -> mean 0.723
# (c2f and dis measured again the same day: the figures above, to 0.001).
# Bounds: 0.05 below each measured figure.
PHOTO_SEEDS = (1, 2)
PHOTO_FRAMES = 16
PHOTO_SIZE = (144, 192)
MIN_PHOTO_IOU = {
    "c2f": {"static": 0.70, "pan": 0.53, "zoom": 0.72, "shake": 0.73},
    "dis": {"static": 0.59, "pan": 0.37, "zoom": 0.72, "shake": 0.72},
    "fast": {"static": 0.70, "pan": 0.53, "zoom": 0.72, "shake": 0.72},
}
# The modes the tests score: a flow method with the reference's other parameters, or the
# fast preset (a CPU mode: its float32 lanes are the CPU solver's).
MODES = ["c2f", "dis"] + (["fast"] if TEST_DEVICE == "cpu" else [])


def mode_config(mode: str) -> UNLCConfig:
    """The config of ``mode``: the fast preset, or flow ``mode`` with the reference's rest."""
    if mode == "fast":
        return preset("fast")
    return UNLCConfig(flow=mode, device=TEST_DEVICE)


def clip_iou(camera: str, n_objects: int, seed: int, mode: str, *, scene: str = "texture",
             n_frames: int = N_FRAMES, size: tuple[int, int] = SIZE) -> float:
    clip = make_clip(n_frames, size, camera=camera, n_objects=n_objects, seed=seed,
                     scene=scene)
    result = segment_shot(clip.frames, mode_config(mode))
    assert result.masks.shape == clip.masks.shape
    assert result.saliency == "motion"
    return mean_mask_iou(result.masks, clip.masks)


@pytest.mark.parametrize("mode", MODES)
def test_mean_iou_on_synthetic_ground_truth(mode):
    scores = {c: clip_iou(c, k, seed, mode) for c, k, seed in CLIPS}
    one_object = [score for (c, k, _), score in zip(CLIPS, scores.values(), strict=True)
                  if k == 1]
    two_objects = scores["shake"]
    if mode != "dis":  # c2f and the fast preset
        assert np.mean(list(scores.values())) >= MIN_MEAN_IOU, scores
        assert min(scores.values()) >= MIN_CLIP_IOU, scores
    else:
        assert np.mean(one_object) >= MIN_MEAN_IOU, scores
        assert min(one_object) >= MIN_CLIP_IOU, scores
        assert two_objects >= MIN_ONE_OF_TWO_IOU, scores


@pytest.mark.parametrize("mode", MODES)
def test_two_objects_of_unequal_size_keep_the_larger(mode):
    assert clip_iou(*TWO_OBJECTS_UNEQUAL, mode) >= MIN_UNEQUAL_PAIR_IOU


@pytest.mark.skipif(not PHOTO_DIR.is_dir(), reason=f"{PHOTO_DIR} missing (opencv-doc)")
@pytest.mark.parametrize("mode", MODES)
def test_mean_iou_on_photo_ground_truth(mode):
    scores = {camera: np.mean([clip_iou(camera, 1, seed, mode, scene="photo",
                                        n_frames=PHOTO_FRAMES, size=PHOTO_SIZE)
                               for seed in PHOTO_SEEDS])
              for camera in CAMERA_MODES}
    low = {c: s for c, s in scores.items() if s < MIN_PHOTO_IOU[mode][c]}
    assert not low, (scores, MIN_PHOTO_IOU[mode])
