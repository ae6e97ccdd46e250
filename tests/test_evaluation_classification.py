"""Classification transfer: ranked-list AP against hand-computed values, 10-crop
averaging against crops cut by hand, the Stanford 40 reader, and eval/classification.py
end to end, resumed and given wrong paths."""

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fastunlc.errors import InputError
from fastunlc.evaluation import runs, stanford40
from fastunlc.evaluation.classification import (
    Classifier,
    Schedule,
    run_classification,
    stanford40_task,
    ten_crop_scores,
    voc07_task,
)
from fastunlc.evaluation.ranking import class_aps, one_vs_rest, ranked_ap
from fastunlc.evaluation.toy import make_voc_devkit
from fastunlc.evaluation.trunk import load_trunk_weights

from .stanford40_fixture import make_stanford40

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "eval" / "classification.py"
SMALL = Schedule(iterations=6, batch_size=2, lr=0.01, lr_step=4, lr_gamma=0.5)


def load_program():
    spec = importlib.util.spec_from_file_location("eval_classification", PROGRAM)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    return make_voc_devkit(tmp_path_factory.mktemp("voc07"), "2007", images=8, seed=5)


def test_ranked_ap_matches_the_hand_computed_values():
    # The difficult entry (label 0) ranks first and must be left out. Ranked without it:
    # + - + - + -, precision at the positives 1/1, 2/3, 3/5.
    scores = [1.0, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3]
    labels = [0, 1, -1, 1, -1, 1, -1]
    assert ranked_ap(scores, labels) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # 11-point: recall >= 0 .. 0.3 → max precision 1; 0.4 .. 0.6 → 2/3; 0.7 .. 1 → 3/5.
    assert ranked_ap(scores, labels, use_07=True) == pytest.approx((4 + 3 * 2 / 3 + 4 * 0.6)
                                                                   / 11)
    shuffled = np.random.default_rng(0).permutation(len(scores))
    assert ranked_ap(np.take(scores, shuffled), np.take(labels, shuffled)) == pytest.approx(
        ranked_ap(scores, labels))
    assert ranked_ap([2, 1, 0], [1, 1, -1]) == 1.0
    # Ties rank negatives first, whatever the input order.
    assert ranked_ap([0.5, 0.5], [1, -1]) == ranked_ap([0.5, 0.5], [-1, 1]) == 0.5
    assert np.isnan(ranked_ap([0.3, 0.2], [0, -1]))
    with pytest.raises(ValueError, match="one value per image"):
        ranked_ap([0.1, 0.2], [1])


def test_class_aps_score_each_column_and_one_vs_rest_labels():
    labels = one_vs_rest(np.array([0, 2, 1, 2]), 4)
    assert labels.tolist() == [[1, -1, -1, -1], [-1, -1, 1, -1], [-1, 1, -1, -1],
                               [-1, -1, 1, -1]]
    scores = np.array([[0.9, 0.1, 0.0, 0.2], [0.2, 0.3, 0.8, 0.1], [0.1, 0.2, 0.9, 0.3],
                       [0.0, 0.5, 0.4, 0.9]])
    aps = class_aps(scores, labels)
    assert aps[0] == 1.0 and aps[1] == pytest.approx(1 / 3)  # its positive ranks third
    assert aps[2] == pytest.approx((1 / 2 + 2 / 3) / 2) and np.isnan(aps[3])


def test_ten_crop_scores_average_the_corner_centre_and_mirrored_crops():
    torch.manual_seed(0)
    crop = 12
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * crop * crop, 5))  # sees every pixel
    image = torch.randn(3, 17, 23)
    cut = [image[:, :12, :12], image[:, :12, -12:], image[:, -12:, :12], image[:, -12:, -12:],
           image[:, 2:14, 5:17]]  # centre: offsets (17 - 12) // 2 and (23 - 12) // 2
    cut += [c.flip(-1) for c in cut]
    expected = torch.stack([model(c[None])[0] for c in cut]).mean(0)
    torch.testing.assert_close(ten_crop_scores(model, image, crop), expected)
    with pytest.raises(ValueError, match="at least 12 x 12"):
        ten_crop_scores(model, image[:, :11], crop)


def test_stanford40_reader_and_its_one_line_errors(tmp_path):
    fixture = make_stanford40(tmp_path)
    root = stanford40.stanford40_folder(tmp_path)  # the parent of Stanford40/ also works
    assert root == fixture.root == stanford40.stanford40_folder(fixture.root)
    assert stanford40.read_actions(root) == fixture.actions
    for split in ("train", "test"):
        images, labels = stanford40.read_split(root, split)
        assert [p.name for p in images] == [name for name, _ in fixture.splits[split]]
        assert labels.tolist() == [k for _, k in fixture.splits[split]]
        assert all(p.parent == root / "JPEGImages" for p in images)
    task = stanford40_task(tmp_path)
    assert task.classes == tuple(fixture.actions) and not task.multilabel

    with pytest.raises(InputError, match="no such Stanford 40 folder"):
        stanford40.stanford40_folder(tmp_path / "nowhere")
    with pytest.raises(InputError, match="not a Stanford 40 folder: no JPEGImages or "
                                         "ImageSplits/"):
        stanford40.stanford40_folder(tmp_path / "Stanford40" / "JPEGImages")
    (root / "ImageSplits" / "brushing_teeth_test.txt").unlink()
    with pytest.raises(InputError, match="missing: the test list of action 'brushing_teeth'"):
        stanford40.read_split(root, "test")
    (root / "JPEGImages" / "applauding_001.jpg").unlink()
    with pytest.raises(InputError, match=r"applauding_001\.jpg: listed in "
                                         r"applauding_train\.txt but missing"):
        stanford40.read_split(root, "train")
    (root / "ImageSplits" / "actions.txt").write_text("action_name\tnumber_of_images\n")
    with pytest.raises(InputError, match="lists no action"):
        stanford40.read_actions(root)


def test_program_runs_end_to_end_on_voc2007(devkit, tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(PROGRAM), "--voc", str(devkit.devkit), "--weights", "random",
         "--freeze", "conv5", "--iterations", "3", "--batch-size", "2", "--device", "cpu",
         "--workers", "0", "--quiet", "--out", str(run)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((run / "results.json").read_text())
    assert results["task"] == "classification" and results["config"]["freeze"] == "conv5"
    assert results["config"]["dataset"] == "voc07" and results["config"]["iterations"] == 3
    metrics = results["metrics"]
    assert 0 <= metrics["map"] <= 1 and 0 <= metrics["map_11point"] <= 1
    assert metrics["test_images"] == len(devkit.splits["test"])
    present = {label for i in devkit.splits["test"] for label, _, hard in devkit.objects[i]
               if not hard}
    assert metrics["classes_scored"] == len(present)
    with open(run / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["class"] for r in rows][:2] == ["aeroplane", "bicycle"] and len(rows) == 20
    assert json.loads(done.stdout)["map"] == metrics["map"]
    assert not (run / "checkpoint.pt").exists()  # a finished run is its results


def test_interrupted_run_resumes_to_the_uninterrupted_weights(devkit, tmp_path, monkeypatch):
    task = voc07_task(devkit.devkit)
    # 12 samples: 2 epochs; the finished runs' checkpoints are compared
    options = dict(schedule=SMALL, checkpoint_every=3, progress=False, keep_checkpoint=True)
    whole = run_classification(task, "random", "fc6", tmp_path / "whole", **options)

    save = runs.save_checkpoint

    def save_then_stop(run, state):
        save(run, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run_classification(task, "random", "fc6", tmp_path / "cut", **options)
    monkeypatch.setattr(runs, "save_checkpoint", save)
    assert runs.load_checkpoint(tmp_path / "cut")["iteration"] == 3
    resumed = run_classification(task, "random", "fc6", tmp_path / "cut", resume=True,
                                 **options)

    a = runs.load_checkpoint(tmp_path / "whole")["model"]
    b = runs.load_checkpoint(tmp_path / "cut")["model"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert resumed["metrics"] == whole["metrics"] and resumed["rows"] == whole["rows"]
    fresh = Classifier(load_trunk_weights("random", seed=0)[0], 20, seed=0).state_dict()
    for name in ("fc8.weight", "trunk.fc7.weight"):
        assert not torch.equal(a[name], fresh[name]), name  # trained
    for name in ("trunk.conv1.weight", "trunk.fc6.weight"):
        assert torch.equal(a[name], fresh[name]), name  # frozen


def test_stanford40_run_reports_accuracy_and_map(tmp_path):
    make_stanford40(tmp_path)
    schedule = Schedule(iterations=1, batch_size=2, lr=0.01, lr_step=0, lr_gamma=1.0)
    results = run_classification(stanford40_task(tmp_path), "random", "fc7", tmp_path / "run",
                                 schedule=schedule, progress=False)
    metrics = results["metrics"]
    assert 0 <= metrics["mean_accuracy"] <= 1 and 0 <= metrics["map"] <= 1
    assert metrics["classes_scored"] == 3 and metrics["test_images"] == 6
    accuracies = [row["accuracy"] for row in results["rows"]]
    assert metrics["mean_accuracy"] == pytest.approx(np.mean(accuracies), abs=1e-6)


def test_wrong_paths_and_settings_are_one_line_errors(devkit, tmp_path, capsys):
    program = load_program()
    cases = [
        (["--voc", str(tmp_path / "nowhere")], "no such VOCdevkit folder"),
        (["--voc", str(tmp_path)], "no VOC2007/ inside"),
        (["--stanford40", str(tmp_path)], "not a Stanford 40 folder"),
        (["--voc", str(devkit.devkit), "--lr", "-1"], "lr must be > 0"),
        (["--voc", str(devkit.devkit), "--weights", str(tmp_path / "w.pt")],
         "no such weights file"),
    ]
    for argv, message in cases:
        args = ["--weights", "random", "--out", str(tmp_path / "run"), "--device", "cpu",
                *argv]
        with pytest.raises(SystemExit) as stopped:
            program.main(args)
        err = capsys.readouterr().err
        assert stopped.value.code == 2, (argv, err)
        assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "run").exists()  # nothing started
