"""The pipeline as a library: the Python API, shot handling, and the light engine."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import fastunlc
from fastunlc import pipeline
from fastunlc.config import UNLCConfig
from fastunlc.errors import InputError
from fastunlc.pipeline import segment_shot
from fastunlc.synthetic import make_clip, write_frames


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    clip = make_clip(26, (120, 160), camera="pan", seed=11)
    folder = tmp_path_factory.mktemp("api") / "clip"
    write_frames(folder, clip.frames)
    return folder, clip


def test_segment_video_returns_masks_at_source_size(clip_folder):
    folder, _ = clip_folder
    result = fastunlc.segment_video(folder, UNLCConfig(flow="dis", max_shot=13))
    # 26 frames in one shot, longer than max_shot = 13: step 26 // 13 + 1 = 3.
    assert [s.status for s in result.shots] == ["processed"]
    assert sorted(result.masks) == list(range(0, 26, 3))
    mask = result.masks[3]
    assert mask.shape == (120, 160) and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    assert result.plan.frames_read == 26 and result.plan.shots == [(0, 26)]
    for stage in ("decode", "shots", "flow", "superpixels", "graph", "voting"):
        assert result.seconds[stage] > 0


def test_working_size_and_back(tmp_path):
    clip = make_clip(12, (96, 128), seed=5)
    big = np.repeat(np.repeat(clip.frames, 6, axis=1), 6, axis=2)  # 576 x 768
    write_frames(tmp_path / "big", big, ext="jpg")
    result = fastunlc.segment_video(tmp_path / "big", UNLCConfig(flow="dis"))
    assert result.plan.working_size == (487, 650)
    assert result.masks[0].shape == (576, 768)


def test_short_shots_are_skipped_and_streaming_matches_the_cache(clip_folder, monkeypatch):
    folder, _ = clip_folder
    config = UNLCConfig(flow="dis")
    monkeypatch.setattr(pipeline.shots, "detect_shots", lambda features, cfg: [(0, 19), (19, 26)])
    cached = fastunlc.segment_video(folder, config)
    assert [(s.status, s.start, s.end) for s in cached.shots] == [
        ("processed", 0, 19), ("skipped", 19, 26)]
    assert "fewer than min_shot" in cached.shots[1].reason
    assert sorted(cached.masks) == list(range(19))
    # Too big for the cache: the second pass decodes again and must give the same masks.
    monkeypatch.setattr(pipeline, "FRAME_CACHE_BYTES", 0)
    streamed = fastunlc.segment_video(folder, config)
    assert sorted(streamed.masks) == sorted(cached.masks)
    for i in cached.masks:
        np.testing.assert_array_equal(streamed.masks[i], cached.masks[i])


class _ShortSecondDecode(pipeline.FrameSource):
    """A source whose second decode stops after ``SECOND_PASS_FRAMES`` frames."""

    SECOND_PASS_FRAMES = 0
    passes = 0

    def frames(self, start=0, stop=None, wanted=None):
        type(self).passes += 1
        frames = super().frames(start, stop, wanted)
        if type(self).passes == 1:
            return frames
        return (item for item, _ in zip(frames, range(self.SECOND_PASS_FRAMES), strict=False))


@pytest.mark.parametrize(("shots", "second_pass", "processed"), [
    ([(0, 26)], 20, 0),  # the processed shot's frames 20..25 are missing
    ([(0, 13), (13, 26)], 15, 1),  # the first shot is whole, the second is not
    ([(0, 5), (5, 26)], 3, 0),  # the decode ends inside a skipped shot
])
def test_a_shorter_second_decode_is_the_inputs_error(clip_folder, monkeypatch, shots,
                                                     second_pass, processed):
    folder, _ = clip_folder
    segmented = []

    def fake_segment_shot(frames, config, **kwargs):
        segmented.append(len(frames))
        return pipeline.ShotSegmentation(np.zeros(frames.shape[:3], np.float32), "motion",
                                         "", 1.0, 0)

    monkeypatch.setattr(pipeline, "FRAME_CACHE_BYTES", 0)  # stream: decode twice
    monkeypatch.setattr(pipeline, "FrameSource", type("Short", (_ShortSecondDecode,),
                                                      {"SECOND_PASS_FRAMES": second_pass}))
    monkeypatch.setattr(pipeline.shots, "detect_shots", lambda features, cfg: shots)
    monkeypatch.setattr(pipeline, "segment_shot", fake_segment_shot)
    with pytest.raises(InputError, match=rf"clip: the second decode ended early at frame "
                                         rf"{second_pass};"):
        list(pipeline.iter_segment(folder, UNLCConfig(min_shot=10)))
    assert len(segmented) == processed  # nothing half-filled was segmented


def test_segment_shot_validates_frames():
    with pytest.raises(ValueError, match=r"uint8 \(n, h, w, 3\)"):
        segment_shot(np.zeros((4, 40, 40), np.uint8))
    with pytest.raises(ValueError, match="at least 2 frames"):
        segment_shot(np.zeros((1, 40, 40, 3), np.uint8))


def test_engine_never_imports_torch(clip_folder):
    folder, _ = clip_folder
    code = ("import sys, fastunlc; fastunlc.segment_video(sys.argv[1], "
            "fastunlc.UNLCConfig(flow='dis')); "
            "heavy = [m for m in ('torch', 'ray', 'cupy') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    proc = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
