"""Fine-tune the trunk for image classification and score it (Pathak et al., CVPR 2017,
section 6): PASCAL VOC 2007 (trainval → test, 20 classes, multi-label, mAP) or Stanford
40 Actions (train → test, 40 classes, mean accuracy and mAP).

Recipe (the defaults; batch, iterations and lr schedule from Krähenbühl et al. 2016's
VOC 2007 classification code): the trunk (conv1 ... fc7) and a new fc8; images resized
to a shorter side of 256 px; training on random 227x227 crops, flipped half the time,
16 a batch, 80,000 iterations; SGD, momentum 0.9, weight decay 5e-4, lr 0.001 halved
every 10,000 iterations; logistic loss per class for VOC (classes whose objects are all
"difficult" in an image are ignored there), softmax cross-entropy for Stanford 40;
testing on 10 crops (four corners, centre and their mirror images), outputs averaged.
--freeze LAYER keeps the trunk up to and including LAYER fixed (none: everything
trains). AP: "map" is the mean precision at each positive (the protocol's),
"map_11point" VOC 2007's devkit AP; difficult-only images are left out.

Examples:

    python eval/classification.py --voc /data/VOCdevkit --weights runs/yfcc \\
        --freeze conv5 --out runs/cls-yfcc-conv5
    python eval/classification.py --stanford40 /data/Stanford40 --weights imagenet.pt \\
        --freeze none --out runs/s40-imagenet
    python eval/classification.py --out runs/cls-yfcc-conv5 --resume ...same options...

RUN gets config.json, checkpoint.pt (every --checkpoint-every iterations; --resume
continues from it with the same options), results.json (metrics, one row per class)
and results.csv.
"""

import argparse
import json
import sys

from fastunlc.errors import FastUNLCError
from fastunlc.evaluation.classification import (
    RESIZE,
    SCHEDULE,
    run_classification,
    stanford40_task,
    voc07_task,
)
from fastunlc.evaluation.finetune import add_schedule_arguments, schedule_from_args
from fastunlc.evaluation.runs import add_run_arguments, add_transfer_arguments


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--voc", metavar="VOCDEVKIT",
                      help="the VOCdevkit folder holding VOC2007/ (trainval and test)")
    data.add_argument("--stanford40", metavar="DIR",
                      help="the Stanford40 folder holding JPEGImages/ and ImageSplits/")
    add_transfer_arguments(parser)
    add_schedule_arguments(parser, SCHEDULE)
    parser.add_argument("--resize", type=int, default=RESIZE,
                        help=f"shorter side of the images before cropping, >= 227 (default "
                             f"{RESIZE})")
    add_run_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    try:
        schedule = schedule_from_args(args, SCHEDULE)
        task = voc07_task(args.voc) if args.voc else stanford40_task(args.stanford40)
        results = run_classification(
            task, args.weights, args.freeze, args.out, schedule=schedule, resize=args.resize,
            resume=args.resume, device=args.device, workers=args.workers,
            checkpoint_every=args.checkpoint_every, progress=not args.quiet, label=args.label,
            keep_checkpoint=args.keep_checkpoint)
    except (FastUNLCError, ValueError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    print(json.dumps(results["metrics"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
