"""Atomic writing, the one mask encoding, and the preview."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from fastunlc.dataset import encode_sample
from fastunlc.files import atomic_path, atomic_write, mask_to_uint8
from fastunlc.output import ResultWriter, contact_sheet, overlay


def test_mask_to_uint8_rounds_and_clips():
    m = np.array([[0.0, 0.5, 0.7, 1.0, 1.2, -0.1]])
    np.testing.assert_array_equal(mask_to_uint8(m), [[0, 128, 178, 255, 255, 0]])


def test_segment_masks_and_dataset_masks_are_the_same_png(tmp_path):
    mask = np.random.default_rng(0).random((9, 13)).astype(np.float32)
    w = ResultWriter(tmp_path, "clip")
    w.write_mask(0, mask)
    _, png = encode_sample(np.zeros((9, 13, 3), np.uint8), mask)
    assert (w.stage / "masks" / "00000.png").read_bytes() == png


def test_atomic_write_publishes_whole_files_or_nothing(tmp_path):
    path = tmp_path / "new" / "stats.json"  # the folder is created
    atomic_write(path, "{}\n")
    assert path.read_text() == "{}\n"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "{}\n"  # the old content stays, no temporary is left
    assert sorted(p.name for p in path.parent.iterdir()) == ["stats.json"]


def test_result_writer_publishes_only_on_commit(tmp_path):
    w = ResultWriter(tmp_path, "clip")
    w.write_mask(7, np.full((10, 12), 0.5))
    w.write_report({"ok": True})
    assert not (tmp_path / "clip").exists()
    final = w.commit()
    assert final == tmp_path / "clip"
    png = cv2.imread(str(final / "masks" / "00007.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint8 and png.shape == (10, 12) and (png == 128).all()
    assert json.loads((final / "report.json").read_text()) == {"ok": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]


def test_commit_replaces_an_earlier_result_and_discard_leaves_nothing(tmp_path):
    w = ResultWriter(tmp_path, "clip")
    w.write_mask(1, np.zeros((4, 4)))
    w.commit()
    w = ResultWriter(tmp_path, "clip")
    w.write_mask(2, np.zeros((4, 4)))
    w.commit()
    assert [p.name for p in (tmp_path / "clip" / "masks").iterdir()] == ["00002.png"]
    w = ResultWriter(tmp_path, "other")
    w.write_mask(0, np.zeros((4, 4)))
    w.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip"]


def test_overlay_and_contact_sheet_shapes():
    frame = np.full((60, 80, 3), 100, np.uint8)
    mask = np.zeros((60, 80))
    mask[20:40, 30:50] = 1.0
    tile = overlay(frame, mask)
    assert tile.shape == frame.shape and tile[30, 40, 0] > tile[30, 40, 1]
    assert (tile[5, 5] == 100).all()
    sheet = contact_sheet([("a", tile)] * 5, columns=4, width=160)
    assert sheet.shape == (2 * 120, 4 * 160, 3)
