"""The COCO training source: which images, their masks and boxes, the degradations."""

import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("pycocotools", reason="the COCO source needs the 'train' extra")

from fastunlc.errors import InputError
from fastunlc.training.coco import CROWD_VALUE, CocoSource
from fastunlc.training.crops import CropRecipe
from fastunlc.training.loader import BatchLoader, reference_loader

from .coco_fixture import make_coco_folder


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """10 images: 8 used (one with a crowd region and a sliver), one unannotated, one
    without its file."""
    return make_coco_folder(tmp_path_factory.mktemp("coco"), images=10, seed=0)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """12 images of one polygon each (10 used)."""
    return make_coco_folder(tmp_path_factory.mktemp("single"), images=12, seed=1,
                            instances=(1, 1))


def take(batches, count):
    return [next(batches) for _ in range(count)]


def whole(source, group, seed=0):
    """``read_group`` with a counting allocator; returns the samples and the buffers."""
    buffers = []

    def allocate(n):
        buffers.append(np.zeros(n, np.uint8))
        return buffers[-1]

    return source.read_group(group, seed, allocate), buffers


def test_used_images_are_the_annotated_ones_with_files_in_id_order(coco, caplog):
    source = CocoSource(coco.root, coco.split, group_size=3)
    assert f"1 annotated image(s) not in {coco.root / coco.split}" in caplog.text
    assert len(source) == len(coco.used) == 8
    assert [p.name for p in source.paths] == [im.file_name for im in coco.used]
    names = {p.name for p in source.paths}
    assert f"{coco.unannotated_id:012d}.jpg" not in names
    assert f"{coco.fileless_id:012d}.jpg" not in names
    assert [source.image_size(k) for k in range(len(source))] == [im.size for im in coco.used]
    assert source.group_of.dtype == np.int64 and source.groups == 3
    assert source.group_of.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert not source.redraws_masks and source.name == str(coco.root)


def test_masks_are_the_union_of_the_non_crowd_instances(coco):
    """pycocotools and cv2 rasterise polygons differently on their boundaries only (where
    two instances overlap, pycocotools' union may have a crack along either's edge)."""
    source = CocoSource(coco.root, coco.split)
    ring = np.ones((3, 3), np.uint8)
    for k, expected in enumerate(coco.used):
        mask = source.read_sample(k, seed=0).mask
        assert mask.shape == expected.size and mask.dtype == np.uint8
        assert mask.flags.c_contiguous and set(np.unique(mask)) <= {0, CROWD_VALUE, 255}
        boundary = np.any([cv2.dilate(drawn, ring) != cv2.erode(drawn, ring)
                           for drawn in expected.instances], axis=0)
        objects = np.where(mask == CROWD_VALUE, 0, mask)
        assert not np.any((objects != expected.mask) & ~boundary)
        inter = np.count_nonzero(objects & expected.mask)
        assert inter / np.count_nonzero(objects | expected.mask) > 0.8  # small: ~1 px edge
        if expected.crowd is not None:  # the crowd region is ignored, not background
            outside = expected.crowd & (cv2.dilate(expected.mask, ring) == 0)
            assert outside.sum() > 50 and (mask[outside] == CROWD_VALUE).all()
            assert (mask[expected.crowd == 0] != CROWD_VALUE).all()
        else:
            assert not (mask == CROWD_VALUE).any()


def test_objects_are_the_annotation_boxes_largest_first(coco):
    source = CocoSource(coco.root, coco.split)
    for k, expected in enumerate(coco.used):
        boxes = source.objects(k)
        assert boxes.dtype == np.float32 and boxes.shape == expected.boxes.shape
        np.testing.assert_array_equal(boxes, expected.boxes)  # the sliver is not an object
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        assert np.all(np.diff(area) <= 0)


def test_fraction_keeps_a_seeded_subset_in_id_order(single):
    everything = [p.name for p in CocoSource(single.root, single.split).paths]
    subsets = [[p.name for p in CocoSource(single.root, single.split, fraction=0.5,
                                           seed=s).paths] for s in (0, 0, 1, 2)]
    assert subsets[0] == subsets[1]
    assert len({tuple(s) for s in subsets}) > 1
    for subset in subsets:
        assert len(subset) == round(0.5 * len(everything)) == 5 and subset == sorted(subset)
        assert set(subset) <= set(everything)
    assert len(CocoSource(single.root, single.split, fraction=0.01).paths) == 1


@pytest.mark.parametrize("degrade", [{}, {"degrade_kernel": 5, "truncate_fraction": 0.2}])
def test_read_group_and_read_sample_give_the_same_bytes(coco, degrade):
    source = CocoSource(coco.root, coco.split, group_size=3, **degrade)
    assert source.redraws_masks == bool(degrade)
    for group in range(source.groups):
        samples, buffers = whole(source, group, seed=11)
        assert len(buffers) == 1  # one buffer for the whole group
        assert [s.index for s in samples] == np.flatnonzero(source.group_of == group).tolist()
        for s in samples:
            alone = source.read_sample(s.index, seed=11)
            assert np.shares_memory(s.image, buffers[0]) and not s.mask_is_jpeg
            assert s.image.tobytes() == source.paths[s.index].read_bytes()
            assert np.array_equal(s.image, alone.image) and np.array_equal(s.mask, alone.mask)


def test_degraded_masks_depend_on_the_seed(coco):
    source = CocoSource(coco.root, coco.split, degrade_kernel=5, truncate_fraction=0.2)
    masks = {seed: [source.read_sample(k, seed).mask for k in range(len(source))]
             for seed in (1, 2)}
    again = [source.read_sample(k, 1).mask for k in range(len(source))]
    assert all(np.array_equal(a, b) for a, b in zip(masks[1], again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(masks[1], masks[2], strict=True))


def test_boundary_noise_erodes_or_dilates_with_an_elliptic_kernel(single):
    """One instance per image: the degraded mask is exactly cv2's erosion or dilation of
    the clean one, and both happen."""
    clean = CocoSource(single.root, single.split)
    noisy = CocoSource(single.root, single.split, degrade_kernel=5)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    seen = set()
    for seed in (0, 1):
        for k in range(len(clean)):
            # instances only: crowd regions are not degraded
            mask, degraded = ((m(k, seed) == 255).astype(np.uint8) for m in (clean.mask,
                                                                              noisy.mask))
            eroded, dilated = cv2.erode(mask, kernel), cv2.dilate(mask, kernel)
            if np.array_equal(degraded, eroded):
                assert np.count_nonzero(degraded) < np.count_nonzero(mask)
                seen.add("erode")
            else:
                assert np.array_equal(degraded, dilated)
                assert np.count_nonzero(degraded) > np.count_nonzero(mask)
                seen.add("dilate")
    assert seen == {"erode", "dilate"}


def test_truncation_cuts_a_strip_of_the_box_area_from_one_side(tmp_path):
    """Rectangles, one per image: the cut is a strip along one side holding f of the
    mask's pixels, to within one row or column of the box (< 0.07 here: sides >= 16 px)."""
    folder = make_coco_folder(tmp_path, images=14, seed=2, shape="rectangle",
                              instances=(1, 1))
    clean = CocoSource(folder.root, folder.split)
    cut = CocoSource(folder.root, folder.split, truncate_fraction=0.3)
    sides = set()
    for k in range(len(clean)):
        mask, truncated = clean.mask(k, 5) > 0, cut.mask(k, 5) > 0
        removed = mask & ~truncated
        assert not np.any(truncated & ~mask)
        assert abs(removed.sum() / mask.sum() - 0.3) < 0.07
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        cut_rows, cut_cols = np.flatnonzero(removed.any(1)), np.flatnonzero(removed.any(0))
        if np.array_equal(cut_cols, cols):  # whole rows: a band at the top or the bottom
            axis, band, extent, names = 0, cut_rows, rows, ("top", "bottom")
        else:
            assert np.array_equal(cut_rows, rows)
            axis, band, extent, names = 1, cut_cols, cols, ("left", "right")
        assert np.array_equal(band, np.arange(band[0], band[-1] + 1))
        assert np.array_equal(np.take(removed, band, axis), np.take(mask, band, axis))
        assert band[0] == extent[0] or band[-1] == extent[-1]
        sides.add(names[0] if band[0] == extent[0] else names[1])
    assert len(sides) >= 3


@pytest.mark.parametrize("degrade", [{}, {"degrade_kernel": 3, "truncate_fraction": 0.2}])
def test_batched_loader_and_reference_dataloader_give_identical_batches(single, degrade):
    """Four batches of 4 cross an epoch of the 10 samples (4 groups); bit for bit."""
    source = CocoSource(single.root, single.split, group_size=3, **degrade)
    recipe = CropRecipe()
    fast = take(iter(BatchLoader(source, 4, seed=3, recipe=recipe, workers=2, window=2)), 4)
    plain = take(reference_loader(source, 4, seed=3, recipe=recipe, workers=2, window=2), 4)
    for a, b in zip(fast, plain, strict=True):
        assert np.array_equal(a.indices, b.indices) and a.position == b.position
        assert torch.equal(a.inputs, b.inputs)
        assert torch.equal(a.target, b.target) and torch.equal(a.weight, b.weight)
    served = np.concatenate([b.indices for b in fast])
    assert sorted(served[:10]) == list(range(10))  # epoch 0 serves every sample once
    targets = torch.stack([b.target for b in fast])
    assert 0.05 < targets.mean() < 0.5  # an object, not all background or all foreground


def test_a_run_opens_its_coco_folder_with_the_configs_settings(coco):
    from fastunlc.training.config import TrainConfig
    from fastunlc.training.run import open_sources

    source = open_sources(TrainConfig(coco=str(coco.root), coco_split=coco.split,
                                      coco_fraction=0.5, coco_degrade_kernel=3, seed=4))
    assert isinstance(source, CocoSource) and len(source) == 4 and source.redraws_masks
    assert source.paths == CocoSource(coco.root, coco.split, fraction=0.5, seed=4).paths


def test_train_program_trains_on_a_coco_folder_with_degradations(coco, tmp_path):
    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(Path(__file__).parents[1] / "train" / "train.py"), "--coco",
         str(coco.root), "--coco-split", coco.split, "--coco-degrade-kernel", "5",
         "--coco-truncate", "0.2", "--out", str(run), "--device", "cpu", "--steps", "4",
         "--batch-size", "4", "--workers", "1", "--window", "1", "--log-every", "2",
         "--quiet"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 4 and (run / "weights.pt").is_file()
    config = json.loads((run / "config.json").read_text())
    assert config["coco"] == str(coco.root) and config["coco_degrade_kernel"] == 5


def one_line_input_error(pattern, *args):
    with pytest.raises(InputError, match=pattern) as info:
        CocoSource(*args)
    assert "\n" not in str(info.value)


def test_bad_folders_are_input_errors(coco, tmp_path):
    one_line_input_error("nowhere: no such COCO folder", tmp_path / "nowhere")
    expected = coco.root / "annotations" / "instances_val2017.json"
    one_line_input_error(re.escape(f"{expected}: no annotations file for split 'val2017'"),
                         coco.root, "val2017")
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_x.json").write_text('{"images": [')
    one_line_input_error(r"[/\\]x: no image folder for split 'x'$", tmp_path, "x")
    (tmp_path / "x").mkdir()
    one_line_input_error("instances_x.json: cannot read the annotations", tmp_path, "x")
    (tmp_path / "annotations" / "instances_x.json").write_text("[]")
    one_line_input_error("instances_x.json: not a COCO annotations file", tmp_path, "x")
    (tmp_path / "annotations" / "instances_x.json").write_text(
        (coco.root / "annotations" / f"instances_{coco.split}.json").read_text())
    # annotated, but the image folder is empty
    one_line_input_error("instances_x.json: no usable image in split 'x'", tmp_path, "x")


@pytest.mark.parametrize("argument, message", [
    ({"fraction": 0.0}, r"fraction must be in \(0, 1\], got 0.0"),
    ({"fraction": 1.5}, r"fraction must be in \(0, 1\]"),
    ({"degrade_kernel": -1}, "degrade_kernel must be >= 0"),
    ({"truncate_fraction": 1.0}, r"truncate_fraction must be in \[0, 1\)"),
    ({"group_size": 0}, "group_size must be >= 1")])
def test_bad_arguments_are_value_errors(coco, argument, message):
    with pytest.raises(ValueError, match=message):
        CocoSource(coco.root, coco.split, **argument)
