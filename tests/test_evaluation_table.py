"""Runs collated into the Table 1-style report and the two figures."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastunlc.evaluation import runs
from fastunlc.evaluation.table import collate, load_runs, write_report

EVAL_TABLE = Path(__file__).resolve().parents[1] / "eval" / "table.py"


def fake_run(root: Path, name: str, task: str, config: dict, metrics: dict) -> Path:
    run = root / name
    runs.start_run(run, config, resume=False)
    runs.write_results(run, task, config, metrics, [], 1.0)
    return run


@pytest.fixture
def detection_runs(tmp_path):
    made = []
    for weights in ("runs/yfcc/weights.pt", "random"):
        for freeze in ("none", "conv5"):
            score = 0.4 if weights == "random" else 0.5
            score -= 0.1 if freeze == "conv5" and weights == "random" else 0
            made.append(fake_run(tmp_path, f"{Path(weights).parent.name}-{freeze}-all",
                                 "detection", {"weights": weights, "freeze": freeze,
                                               "images": None, "seed": 0},
                                 {"map_area": score, "map_voc07": score - 0.02}))
            for seed, shift in ((1, 0.01), (2, -0.01)):
                made.append(fake_run(tmp_path, f"{Path(weights).parent.name}-{freeze}-150-{seed}",
                                     "detection", {"weights": weights, "freeze": freeze,
                                                   "images": 150, "seed": seed},
                                     {"map_area": score / 2 + shift, "map_voc07": 0.1}))
    made.append(fake_run(tmp_path, "uNLC-davis", "masks",
                         {"pred": "masks/davis", "gt": "DAVIS", "label": "uNLC"},
                         {"J&F_mean": 0.55, "J_mean": 0.5, "J_recall": 0.6, "F_mean": 0.6,
                          "F_recall": 0.7, "sequences": 3}))
    return made


def test_cells_average_the_seeds_of_one_setting(detection_runs):
    cells = collate(load_runs(detection_runs), "detection")
    assert cells[("yfcc", "conv5", None)] == [0.5]
    assert cells[("random", "conv5", None)] == pytest.approx([0.3])
    assert sorted(cells[("random", "none", 150)]) == pytest.approx([0.19, 0.21])
    assert len(cells) == 8
    voc07 = collate(load_runs(detection_runs), "detection", "map_voc07")
    assert voc07[("yfcc", "none", None)] == pytest.approx([0.48])


def test_report_lays_out_table_1_and_draws_figures_8_and_10(detection_runs, tmp_path):
    written = write_report(detection_runs, tmp_path / "report")
    names = sorted(p.name for p in written)
    assert names == ["figure10_ap_vs_training_images.png", "figure8_ap_vs_frozen_depth.png",
                     "report.md"]
    for png in written[1:]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    report = (tmp_path / "report" / "report.md").read_text()
    lines = report.splitlines()
    header = next(line for line in lines if line.startswith("| initialisation"))
    assert header == ("| initialisation | all images, fine-tune all | all images, frozen to "
                      "conv5 | 150 images, fine-tune all | 150 images, frozen to conv5 |")
    random_row = next(line for line in lines if line.startswith("| random |"))
    spread = 100 * np.std([0.19, 0.21])
    assert random_row == (f"| random | 40.0 | 30.0 | 20.0 ± {spread:.1f} (2) | "
                          f"15.0 ± {spread:.1f} (2) |")
    assert "| uNLC | DAVIS | 0.550 | 0.500 | 0.600 | 0.600 | 0.700 | 3 |" in report


def test_table_program_gives_one_line_errors(tmp_path, detection_runs):
    done = subprocess.run([sys.executable, str(EVAL_TABLE), str(tmp_path / "nothing"), "--out",
                           str(tmp_path / "r")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "not a finished evaluation run" in done.stderr
    done = subprocess.run([sys.executable, str(EVAL_TABLE), *map(str, detection_runs[:2]),
                           "--metric", "map_coco", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no metric 'map_coco'" in done.stderr
