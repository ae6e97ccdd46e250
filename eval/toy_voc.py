"""Write a toy PASCAL VOC folder (and optionally SBD) in the real layouts, to try the
evaluation programs without the real datasets.

Each image is a smooth random background with one to three filled rectangles, one class
each (the colour depends on the class), some marked difficult; half the images form the
training split, half the test split. Numbers measured on it mean nothing: it shows the
programs working end to end in minutes on a CPU.

Examples:

    python eval/toy_voc.py --out toy/                    # toy/VOCdevkit/VOC2007
    python eval/detection.py --voc toy/VOCdevkit --year 2007 --weights random \\
        --freeze none --iterations 20 --scales 96 --test-scales 96 --out runs/toy-det
    python eval/toy_voc.py --out toy11/ --year 2011 --segmentation --sbd
"""

import argparse
import sys
from pathlib import Path

from fastunlc.evaluation.toy import make_sbd, make_voc_devkit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="folder to write VOCdevkit/ (and benchmark_RELEASE/) into")
    parser.add_argument("--year", default="2007", help="VOC year of the folder (default 2007)")
    parser.add_argument("--images", type=int, default=16, help="images (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the drawing (default 0)")
    parser.add_argument("--segmentation", action="store_true",
                        help="also SegmentationClass/ and the Segmentation lists")
    parser.add_argument("--sbd", action="store_true",
                        help="also an SBD folder holding the training images (needs "
                             "--segmentation)")
    args = parser.parse_args(argv)
    if args.images < 2:
        parser.error("--images must be at least 2 (one for each split)")
    if args.sbd and not args.segmentation:
        parser.error("--sbd needs --segmentation")
    if (args.out / "VOCdevkit" / f"VOC{args.year}").exists():
        parser.exit(2, f"{parser.prog}: error: {args.out}: holds VOCdevkit/VOC{args.year} "
                       "already\n")
    voc = make_voc_devkit(args.out, args.year, images=args.images, seed=args.seed,
                          segmentation=args.segmentation)
    print(voc.devkit)
    if args.sbd:
        print(make_sbd(args.out, voc, voc.splits["train"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
