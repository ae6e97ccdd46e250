"""The whole chain, as the README's "From videos to Table 1" runs it: `fastunlc build` on
real sample videos → a short `train/` run → detection on a small generated VOC-layout
set (``eval/toy_voc.py``), from the trained trunk and from random weights → the Table
1-style report."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def program(script: str, *args) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / script), *map(str, args)],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, (script, done.stderr[-3000:])
    return done


@pytest.mark.slow
def test_videos_to_table_1(real_dataset, tmp_path):
    run = tmp_path / "runs" / "yfcc"
    program("train/train.py", "--data", real_dataset, "--out", run, "--device", "cpu",
            "--steps", "8", "--batch-size", "4", "--workers", "1", "--window", "1",
            "--warmup-steps", "2", "--log-every", "4", "--quiet")
    program("eval/toy_voc.py", "--out", tmp_path / "voc", "--images", 8, "--seed", 5)
    detection = []
    for weights in (run, "random"):
        for freeze in ("conv5", "none"):
            out = tmp_path / "runs" / f"det-{Path(weights).name}-{freeze}"
            program("eval/detection.py", "--voc", tmp_path / "voc" / "VOCdevkit", "--year", "2007",
                    "--weights", weights, "--freeze", freeze, "--iterations", "2",
                    "--scales", "96", "--test-scales", "96", "--max-size", "200",
                    "--rois-per-image", "16", "--workers", "0", "--quiet", "--out", out)
            assert not (out / "checkpoint.pt").exists()  # ~470 MB; a finished run is its results
            results = json.loads((out / "results.json").read_text())
            assert results["config"]["freeze"] == freeze and results["metrics"]["test_images"] == 4
            detection.append(out)
    report = tmp_path / "report"
    program("eval/table.py", *detection, "--out", report)
    table = (report / "report.md").read_text()
    assert "| initialisation | all images, fine-tune all | all images, frozen to conv5 |" in table
    rows = [line for line in table.splitlines() if line.startswith(("| yfcc |", "| random |"))]
    assert len(rows) == 2 and all(row.count("|") == 4 for row in rows)
    assert (report / "figure8_ap_vs_frozen_depth.png").stat().st_size > 5000
