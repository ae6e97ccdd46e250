"""Train AlexNet to predict moving objects' masks from single frames (Pathak et al.,
CVPR 2017, sections 4-5) on datasets that ``fastunlc build`` wrote, on COCO's instance
masks, or both.

Recipe (the defaults): 227×227 crops around an object of the frame, jittered in scale
(2^±0.25) and position (±16/224 of the window), flipped half the time; 56×56 trimap
targets (p < 0.4 negative, p > 0.7 positive, the rest ignored); logistic loss summed over
the non-ignored pixels; SGD, momentum 0.9, weight decay 5e-4, batch 256 per GPU, lr 0.001
after 1,000 warm-up steps, cosine decay; BatchNorm after each conv (--no-batch-norm
for the plain AlexNet); bfloat16 autocast and channels-last on CUDA.

Examples:

    python train/train.py --data dataset/ --out runs/yfcc --compile
    python train/train.py --coco /data/coco --coco-truncate 0.25 --out runs/coco
    torchrun --nproc-per-node 8 train/train.py --data dataset/ --out runs/yfcc --compile
    python train/train.py --out runs/yfcc --resume          # go on after a stop
    python train/train.py --synthetic 512 --device cpu --steps 50 --batch-size 8 --out /tmp/r

The run folder gets config.json, checkpoint.pt (latest; --resume continues from it),
weights.pt (plain layer names: conv1 ... fc7, mask), log.csv, tensorboard/,
summary.json (images/s, data wait vs compute, peak memory, MFU) and, with --profile, a
torch.profiler trace in profile/ (tensorboard --logdir RUN).
"""

import argparse
import json
import sys

from fastunlc.errors import FastUNLCError
from fastunlc.training import config as train_config
from fastunlc.training.loader import LoaderError
from fastunlc.training.run import RunError, train


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, metavar="RUN", help="the run folder")
    parser.add_argument("--config", metavar="FILE",
                        help="JSON object of config fields (e.g. a run's config.json)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint.pt")
    parser.add_argument("--profile", action="store_true",
                        help="write a torch.profiler trace of a few steps to RUN/profile/")
    parser.add_argument("--peak-tflops", type=float, metavar="T",
                        help="the device's peak TFLOP/s for the MFU estimate (known GPUs "
                             "are looked up by name)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    train_config.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    changed = train_config.given(args)
    try:
        if args.resume:  # the checkpoint's config; prepare_run checks the changes
            config = None
        else:
            config = train_config.load_config(args.config, changed)
        summary = train(config, args.out, resume=args.resume, changed=changed,
                        profile=args.profile, peak_tflops=args.peak_tflops,
                        progress=not args.quiet)
    except (FastUNLCError, LoaderError, RunError, ValueError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    if summary is not None:
        print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
