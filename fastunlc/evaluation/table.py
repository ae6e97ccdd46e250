"""Finished evaluation runs collated as the paper reports them.

Table 1 (detection): one row per initialisation, one column per frozen depth and
training-set size (all images, or N images for the low-shot runs), mean AP in percent;
runs of the same cell with different seeds are averaged (``mean ± std`` with their
count). The same layout serves classification and segmentation (their main metric);
mask-quality runs get a table of J&F, J and F means. Figure 8: AP against frozen depth,
one line per initialisation, a panel per training-set size. Figure 10: AP against the
number of training images, a panel per frozen depth.

An initialisation's name is the run config's ``label`` when it has one, else the
``weights`` it started from (``random``, or the weights' file or run-folder name).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..files import atomic_path, atomic_write
from .runs import read_results

MAIN_METRIC = {"detection": "map_area", "classification": "map", "segmentation": "mean_iou",
               "masks": "J&F_mean"}
"""The metric a task's table shows unless told otherwise (detection: the VOC2010+ area
AP, the paper's Table 1 being VOC 2012)."""
DEPTHS = ("none", "conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7")
"""Frozen depths in the order of the paper's columns (``none``: everything fine-tuned)."""
MASK_COLUMNS = ("J&F_mean", "J_mean", "J_recall", "F_mean", "F_recall")


def initialisation(config: dict[str, Any]) -> str:
    """The row name of a run (see the module)."""
    if config.get("label"):
        return str(config["label"])
    weights = str(config.get("weights", "random"))
    if weights == "random":
        return "random"
    path = Path(weights)
    if path.name in ("weights.pt", "checkpoint.pt"):  # a train/ run's file: the run's name
        return path.parent.name
    return path.stem


def training_size(config: dict[str, Any]) -> int | None:
    """The number of training images of a low-shot run; None for all of them."""
    images = config.get("images")
    return int(images) if images else None


def load_runs(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The ``results.json`` of every run in ``paths``, with ``path`` added.

    Raises InputError for a folder that holds no finished run, or for no path."""
    if not paths:
        raise InputError("RUN", "give at least one run folder")
    runs = []
    for path in paths:
        results = read_results(path)
        results["path"] = str(path)
        runs.append(results)
    return runs


def _cell(values: list[float]) -> str:
    if not values:
        return ""
    mean = 100 * float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.1f}"
    return f"{mean:.1f} ± {100 * float(np.std(values)):.1f} ({len(values)})"


def collate(runs: list[dict[str, Any]], task: str, metric: str | None = None
            ) -> dict[tuple[str, str, int | None], list[float]]:
    """``(initialisation, frozen depth, training size) -> [metric per run]`` of one task."""
    metric = metric or MAIN_METRIC[task]
    cells: dict[tuple[str, str, int | None], list[float]] = defaultdict(list)
    for run in runs:
        if run["task"] != task:
            continue
        if metric not in run["metrics"]:
            raise InputError(run["path"], f"its results have no metric {metric!r} (they "
                                          f"have {', '.join(sorted(run['metrics']))})")
        config = run["config"]
        cells[(initialisation(config), str(config.get("freeze", "none")),
               training_size(config))].append(float(run["metrics"][metric]))
    return dict(cells)


def _sizes(cells) -> list[int | None]:
    sizes = {size for _, _, size in cells}
    return sorted(sizes, key=lambda s: math.inf if s is None else s, reverse=True)


def transfer_table(cells: dict[tuple[str, str, int | None], list[float]], title: str) -> str:
    """A Markdown table laid out as the paper's Table 1 (values in percent)."""
    depths = [d for d in DEPTHS if any(c[1] == d for c in cells)]
    sizes = _sizes(cells)
    rows = sorted({c[0] for c in cells})
    header = ["initialisation"] + [
        f"{'all images' if size is None else f'{size} images'}, "
        f"{'fine-tune all' if depth == 'none' else f'frozen to {depth}'}"
        for size in sizes for depth in depths]
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "| --- |" + " ---: |" * (len(header) - 1)]
    for row in rows:
        values = [_cell(cells.get((row, depth, size), [])) for size in sizes for depth in depths]
        lines.append(f"| {row} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def masks_table(runs: list[dict[str, Any]]) -> str:
    """A Markdown table of the mask-quality runs, one row per run."""
    lines = ["### Mask quality (J and F, DAVIS 2017 toolkit definitions)", "",
             "| run | ground truth | " + " | ".join(MASK_COLUMNS) + " | sequences |",
             "| --- | --- |" + " ---: |" * (len(MASK_COLUMNS) + 1)]
    for run in runs:
        if run["task"] != "masks":
            continue
        metrics = run["metrics"]
        values = [f"{metrics[c]:.3f}" if isinstance(metrics.get(c), float) else "" for c in
                  MASK_COLUMNS]
        lines.append(f"| {run['config'].get('label') or Path(run['config']['pred']).name} | "
                     f"{run['config'].get('gt', '')} | " + " | ".join(values) +
                     f" | {metrics.get('sequences', '')} |")
    return "\n".join(lines) + "\n"


def plot_against_depth(cells, path: Path, ylabel: str) -> None:
    """Figure 8: the metric against frozen depth, a line per initialisation, a panel per
    training-set size; written to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = _sizes(cells)
    depths = [d for d in DEPTHS if any(c[1] == d for c in cells)]
    figure, axes = plt.subplots(1, len(sizes), figsize=(5 * len(sizes), 3.6), squeeze=False)
    for axis, size in zip(axes[0], sizes, strict=True):
        for row in sorted({c[0] for c in cells}):
            xs = [k for k, d in enumerate(depths) if (row, d, size) in cells]
            ys = [100 * np.mean(cells[(row, depths[k], size)]) for k in xs]
            axis.plot(xs, ys, marker="o", label=row)
        axis.set_xticks(range(len(depths)), depths)
        axis.set_xlabel("frozen up to")
        axis.set_ylabel(ylabel)
        axis.set_title("all training images" if size is None else f"{size} training images")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def plot_against_size(cells, path: Path, ylabel: str) -> None:
    """Figure 10: the metric against the number of training images (log scale), a line
    per initialisation, a panel per frozen depth; runs on all images are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = [d for d in DEPTHS if any(c[1] == d and c[2] is not None for c in cells)]
    figure, axes = plt.subplots(1, max(1, len(depths)), figsize=(5 * max(1, len(depths)), 3.6),
                                squeeze=False)
    for axis, depth in zip(axes[0], depths, strict=False):
        for row in sorted({c[0] for c in cells}):
            sizes = sorted(c[2] for c in cells if c[0] == row and c[1] == depth and c[2])
            axis.plot(sizes, [100 * np.mean(cells[(row, depth, s)]) for s in sizes],
                      marker="o", label=row)
        axis.set_xscale("log")
        axis.set_xlabel("training images")
        axis.set_ylabel(ylabel)
        axis.set_title("fine-tune all" if depth == "none" else f"frozen up to {depth}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    _save(figure, path)


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def write_report(paths: Sequence[str | Path], out: str | Path, metric: str | None = None
                 ) -> list[Path]:
    """Collate the runs in ``paths`` into ``out/report.md`` and, for detection, the two
    figures; returns the files written."""
    runs = load_runs(paths)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sections, written = [], []
    titles = {"detection": "Detection (VOC AP, %)", "classification": "Classification (mAP, %)",
              "segmentation": "Semantic segmentation (mean IoU, %)"}
    for task, title in titles.items():
        cells = collate(runs, task, metric if task == "detection" else None)
        if not cells:
            continue
        label = metric if task == "detection" and metric else MAIN_METRIC[task]
        # one table per dataset (VOC 2007 and Stanford 40 are both "classification")
        datasets = sorted({str(r["config"].get("dataset", "")) for r in runs
                           if r["task"] == task})
        for dataset in datasets:
            chosen = [r for r in runs if str(r["config"].get("dataset", "")) == dataset]
            name = f"{title}, {dataset}" if dataset else title
            sections.append(transfer_table(collate(chosen, task, label), f"{name}: {label}"))
        if task == "detection":
            for name, plot in (("figure8_ap_vs_frozen_depth.png", plot_against_depth),
                               ("figure10_ap_vs_training_images.png", plot_against_size)):
                if plot is plot_against_size and not any(c[2] for c in cells):
                    continue
                plot(cells, out / name, f"{label} (%)")
                written.append(out / name)
    if any(run["task"] == "masks" for run in runs):
        sections.append(masks_table(runs))
    listing = "\n".join(f"- `{run['path']}`: {run['task']}, {run['finished']}" for run in runs)
    atomic_write(out / "report.md", "# Evaluation report\n\n" + "\n".join(sections) +
                 f"\nRuns:\n\n{listing}\n")
    return [out / "report.md", *written]
