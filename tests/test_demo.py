"""``fastunlc demo``: the whole chain on the generated clip, and a rerun on the same folder."""

import json

import cv2
import numpy as np
import pytest

from fastunlc import cli
from fastunlc.dataset import PseudoGTDataset

pytestmark = pytest.mark.slow


def _check(out):
    report = json.loads((out / "masks" / "clip" / "report.json").read_text())
    masks = sorted((out / "masks" / "clip" / "masks").glob("*.png"))
    assert len(masks) == len(report["processed_frames"]) > 0
    mask = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (240, 320) and mask.dtype == np.uint8
    data = PseudoGTDataset(out / "dataset")
    assert len(data) > 0
    sample = data[0]
    assert sample.frame.shape[:2] == sample.mask.shape
    assert 0.0 <= sample.mask.min() and sample.mask.max() <= 1.0
    assert (sample.mask > 0.7).mean() >= 0.1  # a kept frame passed the foreground pruning
    picture = cv2.imread(str(out / "dataset" / "preview.png"))
    assert picture is not None and picture.std() > 0
    return len(data)


def test_demo_runs_the_chain_and_reruns(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out)]) == 0
    samples = _check(out)
    err = capsys.readouterr().err
    for line in ("masks:", "dataset:", "picture:"):
        assert line in err
    assert cli.main(["demo", "--out", str(out), "--quiet"]) == 0
    assert _check(out) == samples
    assert capsys.readouterr().err == ""


def test_demo_default_folder_is_in_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--quiet"]) == 0
    assert _check(tmp_path / "fastunlc-demo") > 0
