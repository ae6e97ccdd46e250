"""What every evaluation stands on: the VOC and SBD readers, trunk loading and freezing,
and the run folder."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fastunlc.errors import InputError
from fastunlc.evaluation import runs, voc
from fastunlc.evaluation.toy import make_sbd, make_voc_devkit
from fastunlc.evaluation.trunk import (
    FREEZE_CHOICES,
    freeze_trunk,
    keep_frozen_in_eval,
    load_trunk_weights,
)
from fastunlc.training.model import MaskAlexNet, plain_state_dict, torchvision_layout
from fastunlc.training.predict import load_weights

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def devkit(tmp_path_factory):
    return make_voc_devkit(tmp_path_factory.mktemp("voc"), "2011", images=6, seed=3,
                           segmentation=True)


def test_voc_annotations_come_back_as_written(devkit):
    root = voc.voc_folder(devkit.devkit, "2011")
    assert voc.image_ids(root, "train") == devkit.splits["train"]
    for image_id in devkit.splits["trainval"]:
        annotation = voc.read_annotation(root, image_id)
        objects = devkit.objects[image_id]
        assert annotation.size == (96, 128)
        assert annotation.labels.tolist() == [label for label, _, _ in objects]
        assert annotation.difficult.tolist() == [hard for _, _, hard in objects]
        for box, (_, (x0, y0, x1, y1), _) in zip(annotation.boxes, objects, strict=True):
            assert box.tolist() == [x0 - 1, y0 - 1, x1, y1]  # end exclusive, 0-based
        labels = voc.image_labels(annotation)
        for label, _, hard in objects:
            assert labels[label - 1] >= (0 if hard else 1)
        present = {label for label, _, _ in objects}
        assert all(labels[k] == -1 for k in range(20) if k + 1 not in present)
        np.testing.assert_array_equal(voc.read_segmentation(root, image_id),
                                      devkit.segmentations[image_id])


def test_sbd_segmentations_come_back_as_written(devkit, tmp_path):
    sbd = voc.sbd_folder(make_sbd(tmp_path, devkit, devkit.splits["train"]))
    assert voc.sbd_ids(sbd, "train") == devkit.splits["train"]
    for image_id in devkit.splits["train"]:
        labels = voc.read_sbd_segmentation(sbd, image_id)
        expected = devkit.segmentations[image_id]
        assert labels.shape == expected.shape and labels.dtype == np.uint8
        np.testing.assert_array_equal(labels[expected != voc.VOID],
                                      expected[expected != voc.VOID])


def test_voc_layout_mistakes_are_one_line_errors(devkit, tmp_path):
    with pytest.raises(InputError, match="no such VOCdevkit folder"):
        voc.voc_folder(tmp_path / "nowhere", "2007")
    with pytest.raises(InputError, match=r"no VOC2007/ inside \(found: VOC2011"):
        voc.voc_folder(devkit.devkit, "2007")
    root = voc.voc_folder(devkit.devkit, "2011")
    with pytest.raises(InputError, match="missing: the Main image list of split 'minival'"):
        voc.image_ids(root, "minival")
    with pytest.raises(InputError, match="missing annotation file"):
        voc.read_annotation(root, "nope")
    bad = root / "Annotations" / "broken.xml"
    bad.write_text("<annotation><size><width>3</width></size>")
    with pytest.raises(InputError, match="malformed annotation"):
        voc.read_annotation(root, "broken")
    with pytest.raises(InputError, match="not an SBD folder"):
        voc.sbd_folder(tmp_path)


def test_trunk_loads_from_a_run_a_torchvision_layout_or_random(tmp_path):
    trained = MaskAlexNet(batch_norm=False)
    run = tmp_path / "run"
    run.mkdir()
    torch.save(plain_state_dict(trained), run / "weights.pt")
    model, loaded = load_trunk_weights(run)
    assert loaded == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "mask"]
    torch.testing.assert_close(model.fc7.weight, trained.fc7.weight)
    torch.save(torchvision_layout(plain_state_dict(trained)), tmp_path / "imagenet.pt")
    model, loaded = load_trunk_weights(tmp_path / "imagenet.pt")
    assert "mask" not in loaded and len(loaded) == 7
    torch.testing.assert_close(model.conv3.weight, trained.conv3.weight)
    a, _ = load_trunk_weights("random", seed=1)
    b, _ = load_trunk_weights("random", seed=1)
    c, _ = load_trunk_weights("random", seed=2)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    with pytest.raises(InputError, match="no such weights file"):
        load_trunk_weights(tmp_path / "missing.pt")
    torch.save({"conv1.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pt")
    with pytest.raises(InputError, match="weights do not fit the AlexNet trunk"):
        load_trunk_weights(tmp_path / "wrong.pt")


def test_evaluation_and_prediction_refuse_an_unusable_weights_file_alike(tmp_path):
    torch.save(torch.zeros(3), tmp_path / "tensor.pt")
    (tmp_path / "text.pt").write_text("not a pickle")
    for name, reason in (("tensor.pt", "holds no state dict"),
                         ("text.pt", "not a readable weights file")):
        for read in (load_trunk_weights, load_weights):
            with pytest.raises(InputError) as error:
                read(tmp_path / name)
            assert str(error.value).startswith(f"{tmp_path / name}: {reason}"), read
            assert "\n" not in str(error.value)


@pytest.mark.parametrize("freeze", FREEZE_CHOICES)
def test_freezing_fixes_the_layers_up_to_and_including_the_named_one(freeze):
    model = MaskAlexNet(batch_norm=True)
    trained = freeze_trunk(model, freeze)
    order = [*FREEZE_CHOICES[1:], "mask"]
    cut = 0 if freeze == "none" else order.index(freeze) + 1
    for k, layer in enumerate(order):
        assert getattr(model, layer).weight.requires_grad == (k >= cut), layer
    assert len(trained) == sum(p.requires_grad for p in model.parameters())
    model.train()
    keep_frozen_in_eval(model)
    if freeze in ("conv1", "conv5"):
        assert not model.conv1_bn.training and model.mask.training
        before = model.conv1_bn.running_mean.clone()
        model(torch.randn(2, 3, 227, 227))
        assert torch.equal(model.conv1_bn.running_mean, before)  # frozen statistics
    with pytest.raises(ValueError, match="freeze must be one of"):
        freeze_trunk(model, "conv6")


def test_run_folder_refuses_a_second_run_and_a_changed_resume(tmp_path):
    run = tmp_path / "run"
    config = {"lr": 0.001, "freeze": "conv5", "scales": (480, 576)}
    runs.start_run(run, config, resume=False)
    assert json.loads((run / runs.CONFIG).read_text())["scales"] == [480, 576]
    with pytest.raises(runs.RunFolderError, match="holds a run already; pass --resume"):
        runs.start_run(run, config, resume=False)
    assert runs.start_run(run, config, resume=True) == run
    with pytest.raises(runs.RunFolderError, match="freeze differ"):
        runs.start_run(run, {**config, "freeze": "fc7"}, resume=True)
    with pytest.raises(runs.RunFolderError, match=r"no config\.json to resume from"):
        runs.start_run(tmp_path / "other", config, resume=True)
    assert runs.load_checkpoint(run) is None
    runs.save_checkpoint(run, {"iteration": 3, "weights": torch.ones(2)})
    assert runs.load_checkpoint(run)["iteration"] == 3
    with pytest.raises(InputError, match="not a finished evaluation run"):
        runs.read_results(run)
    rows = [{"class": "cat", "ap": 0.5}, {"class": "dog", "ap": 0.25}]
    written = runs.write_results(run, "detection", config, {"map": 0.375}, rows, 1.5)
    assert runs.read_results(run) == written and written["metrics"]["map"] == 0.375
    assert runs.load_checkpoint(run) is None  # a finished run keeps its results only
    with pytest.raises(runs.RunFolderError, match=r"is finished .*nothing to resume"):
        runs.start_run(run, config, resume=True)
    assert (run / runs.ROWS).read_text() == "class,ap\ncat,0.5\ndog,0.25\n"


@pytest.mark.parametrize("program, data, freeze, device", [
    ("detection", ["--voc", "V", "--year", "2007"], None, "cpu"),
    ("classification", ["--voc", "V"], "none", None),
    ("segmentation", ["--voc", "V"], "none", None)])
def test_transfer_programs_share_the_run_options_with_their_own_defaults(
        program, data, freeze, device, capsys):
    spec = importlib.util.spec_from_file_location(f"eval_{program}",
                                                  ROOT / "eval" / f"{program}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    parser = module.get_args_parser()
    given = [*data, "--weights", "random", "--out", "R"]
    if freeze is None:
        with pytest.raises(SystemExit):
            parser.parse_args(given)
        assert "--freeze" in capsys.readouterr().err
        given += ["--freeze", "conv5"]
    args = parser.parse_args(given)
    assert (args.freeze, args.device) == (freeze or "conv5", device)
    assert (args.workers, args.checkpoint_every, args.label) == (4, 1000, "")
    assert not (args.resume or args.keep_checkpoint or args.quiet)
