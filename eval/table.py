"""Collate finished evaluation runs into the paper's tables and figures.

Detection runs become a Markdown table laid out as Table 1 (rows: initialisations;
columns: frozen depth × all training images / N images; mean AP in %, runs of the same
cell with different seeds averaged as mean ± std (count)), and two PNG figures: AP
against frozen depth (Figure 8) and against the number of training images (Figure 10).
Classification and segmentation runs get the same table of their main metric (mAP,
mean IoU); mask-quality runs a table of J&F, J and F.

A row's name is the run's `--label` when it was given, else its `--weights`.

Examples:

    python eval/table.py runs/det-* --out report/
    python eval/table.py runs/det-* --metric map_voc07 --out report-voc07/
"""

import argparse
import sys

from fastunlc.errors import FastUNLCError
from fastunlc.evaluation.table import write_report


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN", help="finished run folders")
    parser.add_argument("--out", required=True, metavar="REPORT_DIR",
                        help="folder for report.md and the figures")
    parser.add_argument("--metric", default=None,
                        help="detection metric to show: map_area (VOC2010+ AP, default) or "
                             "map_voc07 (11-point)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    try:
        written = write_report(args.runs, args.out, args.metric)
    except (FastUNLCError, ValueError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
