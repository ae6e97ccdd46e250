"""Write a trained mask network's masks for images, frame folders and videos, in the
layout of ``fastunlc segment`` (OUT/NAME/masks/NNNNN.png, report.json, preview.png), so
that the network's masks and uNLC's can be compared with the same tools.

Examples:

    python train/predict.py --weights runs/yfcc/weights.pt clip.mp4 --out predicted/
    python train/predict.py --weights runs/yfcc DAVIS/JPEGImages/480p/bear --out pred/
"""

import argparse
import sys

from fastunlc.errors import FastUNLCError


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="an image, a folder of frames or a video file")
    parser.add_argument("--weights", required=True,
                        help="a run's weights.pt or checkpoint.pt, or the run folder")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=64, help="frames per forward pass")
    parser.add_argument("--no-preview", action="store_true", help="skip preview.png")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    from fastunlc.training.predict import predict_inputs, report_line

    try:
        for folder in predict_inputs(args.weights, args.inputs, args.out, args.device,
                                     args.batch_size, not args.no_preview):
            print(report_line(folder))
    except FastUNLCError as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
