"""Detection transfer on a tiny VOC 2007 folder: the detector shares the trunk's layers
and keeps frozen ones fixed, the data come out as VOC says, multi-scale testing merges,
a resumed run gives the uninterrupted one's weights, and eval/detection.py runs end to
end and fails in one line."""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from fastunlc.evaluation import detection, runs
from fastunlc.evaluation.toy import make_voc_devkit
from fastunlc.evaluation.trunk import freeze_trunk, keep_frozen_in_eval
from fastunlc.evaluation.voc import voc_folder
from fastunlc.training.model import MaskAlexNet

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "eval" / "detection.py"
SMALL = dict(year="2007", iterations=4, scales=(96,), test_scales=(96,), max_size=200,
             rois_per_image=16)


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    return make_voc_devkit(tmp_path_factory.mktemp("voc"), "2007", images=8, seed=5)


def load_program():
    spec = importlib.util.spec_from_file_location("eval_detection", PROGRAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_detector_shares_the_trunk_and_frozen_layers_stay_fixed():
    torch.manual_seed(0)
    trunk = MaskAlexNet(batch_norm=True)
    freeze_trunk(trunk, "conv3")
    model = detection.build_detector(trunk, (96,), 200, rois_per_image=16)
    assert model.roi_heads.box_head.fc6.weight is trunk.fc6.weight
    assert model.backbone.conv4.weight is trunk.conv4.weight
    groups = detection.parameter_groups(model, 0.001, 5e-4)
    assert sum(len(g["params"]) for g in groups) == sum(
        p.requires_grad for p in model.parameters())
    images = [torch.rand(3, 96, 128), torch.rand(3, 96, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 10.0, 60.0, 50.0]]), "labels": torch.tensor([3])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    model.train()
    keep_frozen_in_eval(trunk)
    frozen_mean = trunk.conv2_bn.running_mean.clone()
    trained_mean = trunk.conv4_bn.running_mean.clone()
    sum(model(images, targets).values()).backward()
    for layer in ("conv1", "conv2", "conv3"):
        assert getattr(trunk, layer).weight.grad is None, layer
        assert getattr(trunk, f"{layer}_bn").weight.grad is None, layer
    for layer in ("conv4", "conv5", "fc6", "fc7"):
        assert getattr(trunk, layer).weight.grad is not None, layer
    assert model.roi_heads.box_predictor.cls_score.weight.grad is not None
    assert torch.equal(trunk.conv2_bn.running_mean, frozen_mean)
    assert not torch.equal(trunk.conv4_bn.running_mean, trained_mean)


def test_boxes_come_flipped_and_without_difficult_objects(devkit):
    root = voc_folder(devkit.devkit, "2007")
    ids = devkit.splits["trainval"]
    boxes = detection.VOCBoxes(root, ids, drop_difficult=True)
    everything = detection.VOCBoxes(root, ids, drop_difficult=False)
    for index, image_id in enumerate(ids):
        kept = [o for o in devkit.objects[image_id] if not o[2]]
        image, target = boxes[index, False]
        flipped, mirrored = boxes[index, True]
        assert image.dtype == torch.uint8 and image.shape == (3, 96, 128)
        assert torch.equal(flipped, image.flip(-1))
        assert target["labels"].tolist() == [label for label, _, _ in kept]
        assert target["boxes"].tolist() == [[x0 - 1, y0 - 1, x1, y1]
                                            for _, (x0, y0, x1, y1), _ in kept]
        expected = target["boxes"].clone()
        expected[:, [0, 2]] = 128 - target["boxes"][:, [2, 0]]
        assert torch.equal(mirrored["boxes"], expected)
        assert len(everything[index, False][1]["labels"]) == len(devkit.objects[image_id])


def test_low_shot_pick_and_training_order_are_reproducible():
    ids = [f"im{k}" for k in range(20)]
    picked = detection.pick_images(ids, 3, seed=1)
    assert picked == detection.pick_images(ids, 3, seed=1) and len(set(picked)) == 3
    assert picked != detection.pick_images(ids, 3, seed=2)
    assert picked == sorted(picked, key=ids.index)
    assert detection.pick_images(ids, None, seed=1) == ids
    with pytest.raises(ValueError, match="--images 21, but the training split lists 20"):
        detection.pick_images(ids, 21, seed=1)
    whole = list(detection.TrainOrder(5, 2, seed=3, start=0, stop=6))
    assert list(detection.TrainOrder(5, 2, seed=3, start=4, stop=6)) == whole[4:]
    stream = [index for batch in whole for index, _ in batch]
    assert sorted(stream[:5]) == sorted(stream[5:10]) == list(range(5))  # epochs
    assert {flip for batch in whole for _, flip in batch} == {False, True}


def test_multi_scale_test_merges_per_class(devkit):
    root = voc_folder(devkit.devkit, "2007")
    torch.manual_seed(0)
    model = detection.build_detector(MaskAlexNet(), (96,), 200)
    model.roi_heads.score_thresh = 0.0  # an untrained detector: keep every box
    found = detection.detect(model, detection.VOCBoxes(root, devkit.splits["test"]),
                             torch.device("cpu"), (80, 112))
    assert len(found) == len(devkit.splits["test"])
    assert model.transform.min_size == (96,)  # restored
    for boxes, scores, labels in found:
        assert 0 < len(boxes) <= detection.DETECTIONS_PER_IMAGE
        assert np.all(np.diff(scores) <= 0)
        assert boxes.min() >= 0 and boxes[:, 2].max() <= 128 and boxes[:, 3].max() <= 96
        for label in np.unique(labels):
            same = torch.from_numpy(boxes[labels == label])
            overlap = box_iou(same, same).fill_diagonal_(0)
            assert overlap.max() <= detection.TEST_NMS + 1e-6


class Stop(Exception):
    pass


def test_resumed_run_matches_the_uninterrupted_one(devkit, tmp_path, monkeypatch):
    config = detection.DetectionConfig(voc=str(devkit.devkit), freeze="conv2", seed=4,
                                       **SMALL)
    options = dict(workers=0, checkpoint_every=2, progress=False, keep_checkpoint=True)
    straight = detection.run_detection(config, tmp_path / "straight", **options)
    save = runs.save_checkpoint

    def save_then_stop(run, state):
        save(run, state)
        raise Stop  # as if killed right after the first checkpoint

    monkeypatch.setattr(runs, "save_checkpoint", save_then_stop)
    with pytest.raises(Stop):
        detection.run_detection(config, tmp_path / "cut", **options)
    assert runs.load_checkpoint(tmp_path / "cut")["iteration"] == 2
    monkeypatch.setattr(runs, "save_checkpoint", save)
    resumed = detection.run_detection(config, tmp_path / "cut", resume=True, **options)
    a = runs.load_checkpoint(tmp_path / "straight")
    b = runs.load_checkpoint(tmp_path / "cut")
    assert a["iteration"] == b["iteration"] == 4
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert resumed["metrics"] == straight["metrics"] and resumed["rows"] == straight["rows"]
    for run in ("straight", "cut"):  # 0.5 GB each (fc6 and its momentum)
        (tmp_path / run / runs.CHECKPOINT).unlink()


def test_program_runs_end_to_end_on_a_tiny_voc2007(devkit, tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(PROGRAM), "--voc", str(devkit.devkit), "--year", "2007",
         "--weights", "random", "--freeze", "conv1", "--images", "3", "--seed", "1",
         "--iterations", "4", "--scales", "96", "--test-scales", "96", "112",
         "--max-size", "200", "--rois-per-image", "16", "--workers", "1",
         "--checkpoint-every", "2", "--quiet", "--out", str(run)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((run / runs.RESULTS).read_text())
    assert results["task"] == "detection"
    metrics = results["metrics"]
    assert 0 <= metrics["map_voc07"] <= 1 and 0 <= metrics["map_area"] <= 1
    assert (metrics["train_images"], metrics["test_images"]) == (3, 4)
    config = results["config"]
    assert (config["weights"], config["freeze"], config["images"], config["seed"]) == (
        "random", "conv1", 3, 1)
    assert (config["lr"], config["iterations"], config["scales"], config["test_scales"]) == (
        0.001, 4, [96], [96, 112])
    assert (config["train_split"], config["test_split"]) == ("trainval", "test")
    positives = {}
    for image_id in devkit.splits["test"]:
        for label, _, hard in devkit.objects[image_id]:
            positives[label] = positives.get(label, 0) + (not hard)
    rows = results["rows"]
    assert len(rows) == 20 and metrics["classes_scored"] == sum(n > 0 for n in positives.values())
    for k, row in enumerate(rows):
        assert row["positives"] == positives.get(k + 1, 0)
        assert (row["ap_area"] is None) == (row["positives"] == 0)
    with open(run / runs.ROWS, newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["class"] for r in table] == [r["class"] for r in rows]
    assert list(table[0]) == ["class", "ap_voc07", "ap_area", "positives", "detections"]
    assert json.loads(done.stdout)["map_area"] == metrics["map_area"]
    assert not (run / runs.CHECKPOINT).exists()  # 0.5 GB; a finished run is its results


def test_program_errors_are_one_line_and_help_states_the_protocol(tmp_path, capsys):
    program = load_program()
    text = program.get_args_parser().format_help()
    for phrase in ("11-point", "VOC 2012 train", "56-57% mAP", "0.001, 0.002, 0.003",
                   "--test-scales"):
        assert phrase in text, phrase
    with pytest.raises(SystemExit) as exit_info:
        program.main(["--voc", str(tmp_path / "nowhere"), "--year", "2007", "--weights",
                      "random", "--freeze", "none", "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no such VOCdevkit folder" in error
    assert not (tmp_path / "run").exists()
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            program.main(["--voc", str(tmp_path), "--year", "2007", "--weights", "random",
                          "--freeze", "none", "--device", "cuda", "--out", str(tmp_path / "r")])
        assert "torch sees no GPU" in capsys.readouterr().err
