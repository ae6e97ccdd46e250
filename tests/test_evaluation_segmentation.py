"""Segmentation transfer: confusion matrix and mean IoU of hand-made masks, FCN-32s's
convolutional fc6/fc7 against the trunk's, the upsampling against FCN's deconvolution,
the training set without VOC 2011 val, and eval/segmentation.py end to end."""

import copy
import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fastunlc.evaluation import voc
from fastunlc.evaluation.segmentation import (
    CLASSES,
    FCN32s,
    class_iou,
    confusion,
    mean_iou,
    segmentation_scores,
    training_ids,
    upsample_scores,
)
from fastunlc.evaluation.toy import make_sbd, make_voc_devkit
from fastunlc.training.model import INPUT_SIZE, MaskAlexNet

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "eval" / "segmentation.py"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """VOC 2011 (3 train, 3 val images) and SBD holding one VOC val image, one VOC train
    image and two images of neither."""
    root = tmp_path_factory.mktemp("seg")
    voc11 = make_voc_devkit(root / "a", "2011", images=6, seed=1, segmentation=True)
    others = make_voc_devkit(root / "b", "2012", images=2, seed=2, segmentation=True)
    sbd = make_sbd(root, voc11, [voc11.splits["val"][0], voc11.splits["train"][1]])
    make_sbd(root, others, others.splits["trainval"])
    listed = [voc11.splits["val"][0], others.splits["trainval"][0], voc11.splits["train"][1],
              others.splits["trainval"][1]]
    (sbd / "dataset" / "train.txt").write_text("\n".join(listed) + "\n")
    return voc11, sbd, others.splits["trainval"]


def test_confusion_and_mean_iou_of_hand_made_masks():
    gt = np.array([[0, 0, 1, 1],
                   [0, 255, 1, 1],
                   [2, 2, 2, 255]])
    pred = np.array([[0, 1, 1, 1],
                     [0, 0, 1, 1],
                     [2, 2, 0, 1]])
    conf = confusion(pred, gt, classes=3)
    assert conf.tolist() == [[2, 1, 0], [0, 4, 0], [1, 0, 2]]  # rows: label, cols: prediction
    np.testing.assert_allclose(class_iou(conf), [2 / 4, 4 / 5, 2 / 3])
    assert mean_iou(conf) == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    scores = segmentation_scores(conf)
    assert scores["pixel_accuracy"] == pytest.approx(8 / 10)
    assert scores["mean_accuracy"] == pytest.approx((2 / 3 + 1 + 2 / 3) / 3)
    assert scores["frequency_weighted_iou"] == pytest.approx(
        (3 * 2 / 4 + 4 * 4 / 5 + 3 * 2 / 3) / 10)
    # 21 classes: those neither labelled nor predicted are left out of the mean...
    assert mean_iou(confusion(pred, gt)) == pytest.approx(mean_iou(conf))
    # ...a class predicted but never labelled counts with IoU 0.
    pred[0, 0] = 7
    assert mean_iou(confusion(pred, gt)) == pytest.approx((1 / 4 + 4 / 5 + 2 / 3 + 0) / 4)
    with pytest.raises(ValueError, match=r"outside 0\.\.2"):
        confusion(pred, gt, classes=3)


def test_fcn_fc6_and_fc7_convolutions_compute_the_trunks_layers():
    torch.manual_seed(0)
    trunk = MaskAlexNet().eval()
    fcn = FCN32s(copy.deepcopy(trunk)).eval()
    with torch.no_grad():
        image = torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE)
        for layer in ("fc6", "fc7"):  # one cell: the trunk's layer of the whole input
            dense = fcn.dense_features(image, layer, pad=0)
            assert dense.shape == (1, 4096, 1, 1)
            torch.testing.assert_close(dense[0, :, 0, 0], trunk.features(image, layer)[0],
                                       rtol=1e-4, atol=1e-4)
        # A larger input: each cell is fc6 on its own 6 x 6 block of pool5 cells.
        image = torch.randn(1, 3, 259, 291)
        pool5 = trunk.features(image, "conv5")
        dense = fcn.dense_features(image, "fc6", pad=0)
        assert dense.shape == (1, 4096, 2, 3) and pool5.shape[-2:] == (7, 8)
        for i, j in ((0, 0), (1, 2), (0, 1)):
            block = pool5[..., i:i + 6, j:j + 6].flatten(1)
            torch.testing.assert_close(dense[0, :, i, j], trunk.relu(trunk.fc6(block))[0],
                                       rtol=1e-4, atol=1e-4)
        assert fcn.dense_features(image[..., :96, :128]).shape == (1, 4096, 3, 4)  # padded
    scores = fcn(image[..., :96, :128])
    assert scores.shape == (1, len(CLASSES), 96, 128)
    assert torch.count_nonzero(scores) == 0  # the new score layer starts at zero


def test_upsampling_puts_each_cell_at_its_windows_centre():
    coarse = torch.randn(2, 3, 3, 4, dtype=torch.float64)
    out = upsample_scores(coarse, (96, 128))
    assert out.shape == (2, 3, 96, 128)
    for i in range(3):
        for j in range(4):
            torch.testing.assert_close(out[..., 13 + 32 * i, 13 + 32 * j], coarse[..., i, j])
    torch.testing.assert_close(out[..., 13 + 16, 13], (coarse[..., 0, 0] + coarse[..., 1, 0]) / 2)
    torch.testing.assert_close(out[..., 0, 0], coarse[..., 0, 0])  # held beyond the centres
    torch.testing.assert_close(out[..., 95, 127], coarse[..., 2, 3])
    single = upsample_scores(coarse[..., :1, :1], (20, 30))
    torch.testing.assert_close(single, coarse[..., :1, :1].expand(2, 3, 20, 30))


def test_upsampling_is_fcn_alexnets_bilinear_deconvolution_and_crop_between_centres():
    coarse = torch.randn(1, 1, 3, 4, dtype=torch.float64)
    taps = 1 - (torch.arange(63, dtype=torch.float64) - 31).abs() / 32  # FCN's kernel 63
    deconv = torch.nn.ConvTranspose2d(1, 1, 63, stride=32, bias=False).double()
    deconv.weight.data[0, 0] = taps[:, None] * taps[None, :]
    with torch.no_grad():
        fcn = deconv(coarse)[..., 18:18 + 96, 18:18 + 128]  # FCN-AlexNet's crop: offset 18
    ours = upsample_scores(coarse, (96, 128))
    inner = (slice(None), slice(None), slice(13, 13 + 2 * 32 + 1), slice(13, 13 + 3 * 32 + 1))
    torch.testing.assert_close(ours[inner], fcn[inner])


def test_training_ids_leave_out_voc_val_and_keep_vocs_own_annotations(datasets):
    voc11, sbd, others = datasets
    root, sbd_root = voc.voc_folder(voc11.devkit, "2011"), voc.sbd_folder(sbd)
    pairs = training_ids(root, sbd_root)
    assert pairs == [*(("voc", i) for i in voc11.splits["train"]), ("sbd", others[0]),
                     ("sbd", others[1])]
    assert not {i for _, i in pairs} & set(voc11.splits["val"])
    assert training_ids(root, None) == [("voc", i) for i in voc11.splits["train"]]


def test_program_runs_end_to_end_on_voc2011_and_sbd(datasets, tmp_path):
    voc11, sbd, _ = datasets
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(PROGRAM), "--voc", str(voc11.devkit), "--sbd", str(sbd),
         "--weights", "random", "--freeze", "conv5", "--iterations", "3", "--batch-size", "2",
         "--lr", "0.01", "--device", "cpu", "--workers", "0", "--quiet", "--out", str(run)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["task"] == "segmentation" and results["config"]["sbd"] == str(sbd)
    metrics = results["metrics"]
    assert 0 <= metrics["mean_iou"] <= 1 and 0 <= metrics["pixel_accuracy"] <= 1
    assert metrics["training_images"] == 5 and metrics["sbd_images"] == 2
    assert metrics["test_images"] == 3
    with open(run / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows] == list(CLASSES)
    labelled = sum(int((voc11.segmentations[i] != voc.VOID).sum()) for i in voc11.splits["val"])
    assert sum(int(r["pixels"]) for r in rows) == labelled
    assert not (run / "checkpoint.pt").exists()  # a finished run is its results


def test_wrong_paths_are_one_line_errors(datasets, tmp_path, capsys):
    voc11, _, _ = datasets
    spec = importlib.util.spec_from_file_location("eval_segmentation", PROGRAM)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    for argv, message in [(["--voc", str(tmp_path)], "no VOC2011/ inside"),
                          (["--voc", str(voc11.devkit), "--sbd", str(tmp_path)],
                           "not an SBD folder")]:
        with pytest.raises(SystemExit) as stopped:
            program.main([*argv, "--weights", "random", "--out", str(tmp_path / "run"),
                          "--device", "cpu"])
        err = capsys.readouterr().err
        assert stopped.value.code == 2 and err.count("\n") == 1 and message in err, err
