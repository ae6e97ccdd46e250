"""Mask quality (J, F and their statistics) on cases worked out by hand and against a
plain reimplementation of the DAVIS 2017 toolkit's definitions; the readers of each
human-mask layout on generated folders; eval/masks.py end to end."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from fastunlc.errors import InputError
from fastunlc.evaluation.masks import (
    boundary_measure,
    boundary_tolerance,
    detect_layout,
    evaluate_masks,
    list_sequences,
    read_davis,
    read_fbms,
    read_segtrack,
    region_similarity,
    seg2bmap,
    statistics,
)

from .mask_layouts import (
    SIZE,
    disc,
    square,
    void_band,
    write_davis,
    write_davis2016,
    write_fbms,
    write_predictions,
    write_segtrack,
)

ROOT = Path(__file__).resolve().parents[1]
PROGRAM = ROOT / "eval" / "masks.py"


def box(shape: tuple[int, int], rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[rows, cols] = True
    return mask


# -- J ------------------------------------------------------------------------------------

def test_region_similarity_of_overlapping_squares():
    # Two 4x4 squares sharing 2 columns: intersection 8, union 24.
    a = box((10, 10), slice(2, 6), slice(2, 6))
    b = box((10, 10), slice(2, 6), slice(4, 8))
    assert region_similarity(a, b) == pytest.approx(1 / 3, abs=0)
    assert region_similarity(b, a) == region_similarity(a, b)
    assert region_similarity(a, a) == 1.0


def test_region_similarity_empty_masks_and_void():
    empty = np.zeros((6, 6), bool)
    full = box((6, 6), slice(1, 4), slice(1, 4))
    assert region_similarity(empty, empty) == 1.0
    assert region_similarity(full, empty) == 0.0
    assert region_similarity(empty, full) == 0.0
    # A prediction that spills only into void pixels is perfect.
    void = box((6, 6), slice(4, 5), slice(0, 6))
    spilled = full | void
    assert region_similarity(spilled, full) < 1.0
    assert region_similarity(spilled, full, void) == 1.0
    with pytest.raises(ValueError, match="one size"):
        region_similarity(full, full[:5])


# -- boundaries and F ------------------------------------------------------------------------

def test_seg2bmap_of_a_small_square():
    mask = box((5, 5), slice(1, 3), slice(1, 3))
    # A pixel is boundary where it differs from its right, bottom or bottom-right
    # neighbour: the square's own right/bottom pixels and the pixels left of / above it.
    expected = np.array([[1, 1, 1, 0, 0],
                         [1, 0, 1, 0, 0],
                         [1, 1, 1, 0, 0],
                         [0, 0, 0, 0, 0],
                         [0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(seg2bmap(mask), expected)


def test_seg2bmap_on_the_image_border():
    # The last column is compared with the pixel below only, the last row with the pixel
    # to the right only: an edge along the border is no boundary.
    mask = box((3, 3), slice(0, 3), slice(2, 3))
    expected = np.array([[0, 1, 0],
                         [0, 1, 0],
                         [0, 1, 0]], bool)
    np.testing.assert_array_equal(seg2bmap(mask), expected)
    assert not seg2bmap(np.ones((4, 5), bool)).any()


def test_boundary_tolerance_is_a_fraction_of_the_diagonal():
    assert boundary_tolerance((100, 100)) == 2            # ceil(0.008 * 141.4) = ceil(1.13)
    assert boundary_tolerance((480, 854)) == 8            # ceil(0.008 * 979.6) = ceil(7.84)
    assert boundary_tolerance((480, 854), 3) == 3         # >= 1: pixels
    with pytest.raises(ValueError, match="integer"):
        boundary_tolerance((10, 10), 2.5)


@pytest.mark.parametrize("shift, expected", [(1, 1.0), (2, 1.0), (3, 84 / 160), (5, 80 / 160)])
def test_boundary_measure_of_a_shifted_square(shift, expected):
    # 100x100: tolerance 2 pixels. The 40x40 square's boundary map has 160 pixels: rows
    # 19 and 59 (41 each, columns 19..59) and columns 19 and 59 of rows 20..58 (39 each).
    # Shifted right by s > 2, its top and bottom rows miss s - 2 pixels each, its left
    # column all 39, its right column all but the 2 + 2 nearest the other's rows:
    # (2 (43 - s) + 4) / 160 matched, each way alike.
    gt = box((100, 100), slice(20, 60), slice(20, 60))
    pred = box((100, 100), slice(20, 60), slice(20 + shift, 60 + shift))
    assert boundary_measure(pred, gt) == pytest.approx(expected)
    assert boundary_measure(gt, pred) == pytest.approx(expected)
    assert boundary_measure(pred, gt, bound_th=shift) == 1.0


def test_boundary_measure_empty_cases():
    empty = np.zeros((20, 20), bool)
    square_ = box((20, 20), slice(5, 10), slice(5, 10))
    assert boundary_measure(empty, empty) == 1.0
    assert boundary_measure(square_, empty) == 0.0
    assert boundary_measure(empty, square_) == 0.0
    # A full mask has no boundary (edges on the border do not count): as empty as empty.
    assert boundary_measure(np.ones((20, 20), bool), empty) == 1.0


# -- against a plain reimplementation of the toolkit's definitions --------------------------

def reference_bmap(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            out[y, x] = any(y + dy < h and x + dx < w and mask[y, x] != mask[y + dy, x + dx]
                            for dy, dx in ((0, 1), (1, 0), (1, 1)))
    return out


def reference_j(pred, gt, void):
    keep = ~void
    union = int(np.sum((pred | gt) & keep))
    return 1.0 if union == 0 else int(np.sum(pred & gt & keep)) / union


def reference_f(pred, gt, bound_th, void):
    pred, gt = pred & ~void, gt & ~void
    radius = bound_th if bound_th >= 1 else math.ceil(bound_th * np.linalg.norm(gt.shape))
    pb, gb = reference_bmap(pred), reference_bmap(gt)
    if not pb.any() and not gb.any():
        return 1.0
    if not pb.any() or not gb.any():
        return 0.0
    # A boundary pixel is matched when the other boundary is within `radius` (Euclidean).
    to_pred = ndimage.distance_transform_edt(~pb)
    to_gt = ndimage.distance_transform_edt(~gb)
    precision = np.mean(to_gt[pb] <= radius)
    recall = np.mean(to_pred[gb] <= radius)
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def blobs(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(rng.standard_normal(shape), sigma) > 0.05


@pytest.mark.parametrize("seed, shape, bound_th", [
    (0, (37, 53), 0.008), (1, (48, 64), 0.05), (2, (20, 90), 3), (3, (60, 41), 0.1)])
def test_measures_match_the_reference(seed, shape, bound_th):
    rng = np.random.default_rng(seed)
    for _ in range(3):
        gt = blobs(rng, shape, 3.0)
        pred = gt ^ blobs(rng, shape, 1.5) & blobs(rng, shape, 4.0)
        void = ndimage.binary_dilation(reference_bmap(gt)) & (rng.random(shape) < 0.5)
        none = np.zeros(shape, bool)
        for v in (none, void):
            assert region_similarity(pred, gt, v) == pytest.approx(reference_j(pred, gt, v))
            assert boundary_measure(pred, gt, bound_th, v) == pytest.approx(
                reference_f(pred, gt, bound_th, v))
        np.testing.assert_array_equal(seg2bmap(pred), reference_bmap(pred))


# -- statistics -------------------------------------------------------------------------------

def test_statistics_on_a_hand_made_list():
    values = [1.0, 1.0, 0.2, 0.8, 0.4, 0.6, 0.0, 0.3]
    stats = statistics(values)
    assert stats.mean == pytest.approx(4.3 / 8)
    assert stats.recall == 0.5                              # 1, 1, 0.8, 0.6 are > 0.5
    # Bins start at round(linspace(1, 8, 5)) - 1 = 0, 2, 4, 5, 7 and run to the next
    # start inclusive: the first is values[0:3], the last values[5:8].
    assert stats.decay == pytest.approx((2.2 - 0.9) / 3)
    assert statistics([0.5, 0.5]).recall == 0.0              # strictly above 0.5
    assert statistics([0.7]).decay == 0.0


def test_statistics_decay_past_255_frames():
    # 300 frames, the first 75 perfect: bins start at 0, 75, 150, 224, 299, so the first
    # bin (0..75) holds 75 ones of 76 and the last none. (uint8 bounds would wrap.)
    values = np.r_[np.ones(75), np.zeros(225)]
    assert statistics(values).decay == pytest.approx(75 / 76)
    with pytest.raises(ValueError):
        statistics([])


# -- readers ---------------------------------------------------------------------------------

def test_davis_reader_merges_objects_and_marks_void(tmp_path):
    write_davis(tmp_path, frames=4)
    assert detect_layout(tmp_path) == "davis"
    assert list_sequences(tmp_path, "davis") == ["bear", "dogs"]
    assert list_sequences(tmp_path, "davis", split="val") == ["dogs"]
    masks = read_davis(tmp_path, "bear")
    assert sorted(masks) == [0, 1, 2, 3]
    for t, mask in masks.items():
        np.testing.assert_array_equal(mask.foreground, square(t) | disc(t))
        np.testing.assert_array_equal(mask.void, void_band(t))
    with pytest.raises(InputError, match="split list"):
        list_sequences(tmp_path, "davis", split="test-dev")


def test_davis_reader_prefers_unsupervised_annotations_and_reads_davis2016(tmp_path):
    write_davis(tmp_path, sequences=("bear",), frames=2)
    write_davis(tmp_path, sequences=("camel",), frames=2, folder="Annotations_unsupervised/480p")
    assert list_sequences(tmp_path, "davis") == ["camel"]
    old = write_davis2016(tmp_path / "d16")
    masks = read_davis(tmp_path / "d16", "bear")
    assert sorted(masks) == sorted(old)
    for t, mask in masks.items():
        np.testing.assert_array_equal(mask.foreground, old[t])
        assert mask.void is None


def test_fbms_reader_maps_frame_numbers_and_finds_the_background(tmp_path):
    expected = write_fbms(tmp_path)
    assert detect_layout(tmp_path) == "fbms"
    assert list_sequences(tmp_path, "fbms") == ["cars1", "marple1", "tennis"]
    for seq, frames in expected.items():
        masks = read_fbms(tmp_path, seq)
        # cars1's images are numbered from 1, tennis's from 0; marple1 has none (n - 1).
        assert sorted(masks) == sorted(frames), seq
        for index, fg in frames.items():
            np.testing.assert_array_equal(masks[index].foreground, fg)
    assert sorted(read_fbms(tmp_path, "cars1")) == [0, 4]
    assert sorted(read_fbms(tmp_path, "tennis")) == [3]
    assert sorted(read_fbms(tmp_path, "marple1")) == [0, 20]
    (tmp_path / "cars1" / "cars1_05.jpg").unlink()
    with pytest.raises(InputError, match="no image numbered 5"):
        read_fbms(tmp_path, "cars1")


def test_segtrack_reader_merges_object_folders_in_natural_order(tmp_path):
    expected = write_segtrack(tmp_path)
    assert detect_layout(tmp_path) == "segtrack"
    assert list_sequences(tmp_path, "segtrack") == ["bird", "bmx"]
    for seq, frames in expected.items():
        masks = read_segtrack(tmp_path, seq)
        assert sorted(masks) == sorted(frames)
        for index, fg in frames.items():
            np.testing.assert_array_equal(masks[index].foreground, fg)


def test_unknown_layout_is_one_line(tmp_path):
    (tmp_path / "frames" / "a").mkdir(parents=True)
    with pytest.raises(InputError) as err:
        detect_layout(tmp_path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path))
    assert "DAVIS" in message and "FBMS" in message and "SegTrack" in message
    with pytest.raises(InputError, match="no such folder"):
        detect_layout(tmp_path / "nowhere")
    with pytest.raises(InputError, match="FBMS layout"):
        list_sequences(tmp_path, "fbms")


# -- evaluate_masks ----------------------------------------------------------------------------

def test_evaluate_masks_scores_missing_frames_resizes_and_lists_missing_sequences(tmp_path):
    gt = tmp_path / "davis"
    labels = write_davis(gt, frames=4)
    perfect = {t: (a != 0) & (a != 255) for t, a in labels["bear"].items()}
    pred = tmp_path / "pred"
    write_predictions(pred, "bear", {t: m for t, m in perfect.items() if t != 2})
    metrics, rows = evaluate_masks(pred, gt)
    assert metrics["layout"] == "davis"
    assert metrics["missing_sequences"] == ["dogs"] and metrics["sequences"] == 1
    assert metrics["frames"] == 4 and metrics["missing_frames"] == 1
    assert metrics["void_frames"] == 4 and metrics["resized_frames"] == 0
    [row] = rows
    assert row["sequence"] == "bear" and row["missing_frames"] == 1
    assert row["J_mean"] == pytest.approx(3 / 4) and row["F_mean"] == pytest.approx(3 / 4)
    assert row["J_recall"] == 0.75
    assert metrics["J&F_mean"] == pytest.approx(3 / 4)

    # Half-size predictions of a mask made of 2x2 blocks come back exact by nearest
    # neighbour.
    small = np.arange(SIZE[0] * SIZE[1] // 4).reshape(SIZE[0] // 2, SIZE[1] // 2) % 7 < 3
    blocky = np.kron(small, np.ones((2, 2), bool))
    seg = tmp_path / "seg"
    (seg / "GroundTruth" / "clip").mkdir(parents=True)
    for t in range(2):
        Image.fromarray(blocky.astype(np.uint8) * 255).save(
            seg / "GroundTruth" / "clip" / f"{t}.png")
    write_predictions(tmp_path / "seg_pred", "clip", {0: small, 1: small})
    metrics, _ = evaluate_masks(tmp_path / "seg_pred", seg)
    assert metrics["resized_frames"] == 2 and metrics["J_mean"] == 1.0

    with pytest.raises(InputError, match="no SEQ/masks/ folder"):
        evaluate_masks(pred, gt, sequences=["dogs"])
    with pytest.raises(InputError, match="no annotated sequence cat"):
        evaluate_masks(pred, gt, sequences=["cat"])


def test_evaluate_masks_void_threshold_and_skip_ends(tmp_path):
    gt = tmp_path / "davis"
    labels = write_davis(gt, sequences=("bear",), frames=5)
    # Foreground spilling into the void band, at p = 0.8.
    spilled = {t: 0.8 * (a != 0) for t, a in labels["bear"].items()}
    pred = tmp_path / "pred"
    write_predictions(pred, "bear", spilled)
    excluded, _ = evaluate_masks(pred, gt)
    assert excluded["J_mean"] == 1.0 and excluded["F_mean"] == 1.0
    background, _ = evaluate_masks(pred, gt, void="background")
    assert background["J_mean"] < 1.0 and background["F_mean"] < 1.0
    above, _ = evaluate_masks(pred, gt, threshold=0.8)     # 0.8 is not > 0.8
    assert above["J_mean"] == 0.0
    ends, rows = evaluate_masks(pred, gt, skip_ends=True)
    assert ends["frames"] == 3 and rows[0]["frames"] == 3
    with pytest.raises(ValueError, match="threshold"):
        evaluate_masks(pred, gt, threshold=1.0)


@pytest.mark.parametrize("writer", [write_fbms, write_segtrack])
def test_evaluate_masks_perfect_on_fbms_and_segtrack(tmp_path, writer):
    expected = writer(tmp_path / "gt")
    for seq, frames in expected.items():
        write_predictions(tmp_path / "pred", seq, frames)
    metrics, rows = evaluate_masks(tmp_path / "pred", tmp_path / "gt")
    assert metrics["J&F_mean"] == 1.0 and metrics["missing_frames"] == 0
    assert [r["sequence"] for r in rows] == sorted(expected)


# -- the program -----------------------------------------------------------------------------

def run_program(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROGRAM), *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_program_end_to_end(tmp_path):
    gt = tmp_path / "DAVIS"
    labels = write_davis(gt, frames=5)
    rng = np.random.default_rng(0)
    pred = tmp_path / "pred"
    for seq, frames in labels.items():
        # The objects, shifted a pixel and with noise, as soft masks.
        write_predictions(pred, seq, {t: np.clip(np.roll((a != 0) & (a != 255), 1, axis=1)
                                                 + 0.4 * rng.random(SIZE), 0, 1)
                                      for t, a in frames.items()})
    run = tmp_path / "run"
    done = run_program("--pred", str(pred), "--gt", str(gt), "--out", str(run), "--quiet")
    assert done.returncode == 0, done.stderr
    assert "J&F" in done.stdout and str(run / "results.json") in done.stdout
    results = json.loads((run / "results.json").read_text())
    metrics, rows = evaluate_masks(pred, gt)
    assert results["task"] == "masks" and results["metrics"] == metrics
    assert results["config"]["layout"] == "davis" and results["config"]["threshold"] == 0.7
    assert 0 < metrics["J_mean"] < 1
    with open(run / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["sequence"] for r in table] == ["bear", "dogs"]
    assert float(table[0]["J_mean"]) == pytest.approx(rows[0]["J_mean"])

    again = run_program("--pred", str(pred), "--gt", str(gt), "--out", str(run), "--quiet")
    assert again.returncode == 2 and "holds a run already" in again.stderr


def test_program_perfect_predictions(tmp_path):
    gt = tmp_path / "DAVIS"
    labels = write_davis(gt, frames=3)
    for seq, frames in labels.items():
        write_predictions(tmp_path / "pred", seq,
                          {t: (a != 0) & (a != 255) for t, a in frames.items()})
    done = run_program("--pred", str(tmp_path / "pred"), "--gt", str(gt), "--out",
                       str(tmp_path / "run"), "--split", "val", "--quiet")
    assert done.returncode == 0, done.stderr
    metrics = json.loads((tmp_path / "run" / "results.json").read_text())["metrics"]
    assert metrics["J&F_mean"] == 1.0 and metrics["sequences"] == 1


def test_program_help_and_one_line_errors(tmp_path):
    shown = run_program("--help")
    assert shown.returncode == 0 and "--pred" in shown.stdout and "DAVIS" in shown.stdout
    (tmp_path / "pred").mkdir()
    wrong = run_program("--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "nowhere"),
                        "--out", str(tmp_path / "run"))
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1 and "masks.py: error:" in wrong.stderr
    assert "nowhere: no such folder" in wrong.stderr
    assert not (tmp_path / "run").exists()
