"""Builds from and to object storage, against a real S3 API on localhost (moto's server):
the dataset equals the local-disk build sample for sample, with the local and the Ray
engine; a SIGKILL midway and a rerun give the same; a reader opened during the build
sees whole shards only; retried attempts cannot spoil a part; a missing bucket and wrong
credentials get one line naming the URL; the traffic is counted."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import s3fs
from moto import server as moto_server

from fastunlc import dataset
from fastunlc.build import WORK, BuildOptions, build_dataset, process_video
from fastunlc.storage import Storage, counting
from fastunlc.synthetic import make_clip, write_video

from .test_build import CLI_OPTIONS, OPTIONS, dataset_digest

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3():
    """An S3 API on localhost; the environment points every client (and every worker
    process started from here) at it. Yields the s3fs file system."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = {name: os.environ.get(name) for name in (*CREDENTIALS, "AWS_ENDPOINT_URL")}
    os.environ.update(CREDENTIALS, AWS_ENDPOINT_URL=f"http://{host}:{port}")
    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    fs.mkdir("videos")
    fs.mkdir("data")
    yield fs
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server.stop()


@pytest.fixture(scope="module")
def remote_videos(s3, tmp_path_factory) -> list[str]:
    """Four synthetic clips uploaded to s3://videos/clips/, and a list file naming two of
    them relative to itself and two by URL."""
    folder = tmp_path_factory.mktemp("uploads")
    urls = []
    for seed, camera in enumerate(("static", "pan", "shake", "static")):
        clip = make_clip(24, (192, 256), camera=camera, seed=seed + 11)
        path = write_video(folder / f"clip {seed}.mp4", clip.frames)
        s3.put_file(str(path), f"videos/clips/clip {seed}.mp4")
        urls.append(f"s3://videos/clips/clip {seed}.mp4")
    s3.pipe_file("videos/clips/list.txt",
                 f"clip 0.mp4\n# a comment\n{urls[1]}\n\nclip 2.mp4\n{urls[3]}\n".encode())
    return urls


def download(s3, url: str, to: Path) -> Path:
    """A local copy of the dataset at ``url`` (its committed files)."""
    s3.invalidate_cache()
    s3.get(url.removeprefix("s3://") + "/", str(to) + "/", recursive=True)
    return to


@pytest.fixture(scope="module")
def local_build(remote_videos, tmp_path_factory) -> Path:
    """The build of the S3 videos to a local folder: what every S3 build must equal."""
    root = tmp_path_factory.mktemp("local") / "dataset"
    build_dataset(remote_videos, root, OPTIONS, engine_options={"workers": 2})
    return root


def test_storage_publishes_whole_files_and_counts_requests(s3):
    storage = Storage("s3://data/unit")
    with counting() as traffic:
        storage.write("a/b.bin", b"x" * 1000)
        assert storage.read("a/b.bin", 10, 20) == b"x" * 10
    # one PUT, one ranged GET: botocore's own requests
    assert traffic.to_dict() == {"bytes_read": 10, "bytes_written": 1000, "requests": 2}
    with storage.writing("a/c.bin") as tmp:
        tmp.write_bytes(b"partial")
        assert not storage.is_file("a/c.bin")  # invisible until the block ends
    assert storage.read("a/c.bin") == b"partial"
    with pytest.raises(RuntimeError), storage.writing("a/d.bin") as tmp:
        tmp.write_bytes(b"never")
        raise RuntimeError
    with storage.writing("a/e.bin") as tmp:
        tmp.unlink()  # publishes nothing
    assert storage.list("a") == ["a/b.bin", "a/c.bin"]
    assert storage.size("a/b.bin") == 1000 and storage.kind() == "dir"
    storage.remove("a/b.bin", "a/missing.bin")
    assert storage.list("a", ".bin") == ["a/c.bin"] and storage.list("nothing") == []


@pytest.fixture(scope="module")
def s3_build(s3, remote_videos) -> dict:
    """The same videos built to s3://data/one from a list file at a URL; its stats."""
    return build_dataset(["s3://videos/clips/list.txt"], "s3://data/one", OPTIONS,
                         engine_options={"workers": 2})


def test_build_from_s3_to_s3_equals_the_local_disk_build(s3, remote_videos, local_build,
                                                         s3_build, tmp_path):
    stats = s3_build
    assert stats["outcomes"]["ok"] == 4 and stats["shards"] == 2
    copy = download(s3, "s3://data/one", tmp_path / "one")
    assert dataset_digest(copy) == dataset_digest(local_build)
    assert not s3.find("data/one/.work")  # every part went into its shard
    traffic = stats["this_run"]["storage"]
    shards = sum(s3.size(f"data/one/{dataset.shard_file(k)}") for k in range(2))
    videos = sum(s3.size(u.removeprefix("s3://")) for u in remote_videos)
    # the videos and the parts were read; parts, shards and manifests written
    assert traffic["bytes_read"] > videos and traffic["bytes_written"] > shards
    assert traffic["requests"] > 4 * 3  # per video at least a GET, a part and a record
    # the readers of the library and of training read it straight from the bucket
    remote = dataset.PseudoGTDataset("s3://data/one")
    here = dataset.PseudoGTDataset(local_build)
    assert len(remote) == len(here) > 0
    for i in range(len(remote)):
        assert remote.member_bytes(i, "mask.jpg") == here.member_bytes(i, "mask.jpg")
        np.testing.assert_array_equal(remote[i].frame, here[i].frame)
    assert [s.key for s in remote.iter_shards()] == [s.key for s in here.iter_shards()]
    from fastunlc.training.sources import BuiltSource

    source, reference = BuiltSource("s3://data/one"), BuiltSource(local_build)
    for group in range(source.groups):
        got = source.read_group(group, 0, lambda n: np.empty(n, np.uint8))
        want = reference.read_group(group, 0, lambda n: np.empty(n, np.uint8))
        assert [bytes(s.image) for s in got] == [bytes(s.image) for s in want]
    assert bytes(source.read_sample(0, 0).mask) == bytes(reference.read_sample(0, 0).mask)


def test_training_batches_from_s3_equal_those_from_disk(s3_build, local_build):
    import torch

    from fastunlc.training.crops import CropRecipe
    from fastunlc.training.loader import BatchLoader
    from fastunlc.training.sources import BuiltSource

    batches = [BatchLoader(BuiltSource(root), 4, seed=1, recipe=CropRecipe(), workers=1)
               for root in ("s3://data/one", local_build)]
    remote, here = (iter(b) for b in batches)
    for _ in range(3):
        a, b = next(remote), next(here)
        assert np.array_equal(a.indices, b.indices) and torch.equal(a.inputs, b.inputs)
        assert torch.equal(a.target, b.target)


def test_ray_builds_to_s3_without_the_drivers_disk(s3, remote_videos, local_build, tmp_path):
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        stats = build_dataset(remote_videos, "s3://data/ray", OPTIONS, engine="ray")
    finally:
        ray.shutdown()
    assert stats["this_run"]["videos"] == 4
    assert dataset_digest(download(s3, "s3://data/ray", tmp_path / "ray")) == dataset_digest(
        local_build)


def test_sigkill_midway_then_rerun_gives_the_same_dataset(s3, remote_videos, local_build,
                                                          tmp_path):
    command = [sys.executable, "-m", "fastunlc", "build", "s3://videos/clips/", "--out",
               "s3://data/killed", "--seed", "7", "--videos-per-shard", "2", *CLI_OPTIONS]
    process = subprocess.Popen(command, start_new_session=True)
    committed = f"data/killed/{dataset.videos_file(0)}"
    deadline = time.monotonic() + 300
    while process.poll() is None:
        s3.invalidate_cache()
        if s3.exists(committed):
            break
        assert time.monotonic() < deadline, "the first shard never finished"
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    s3.invalidate_cache()
    assert not s3.exists(f"data/killed/{dataset.videos_file(1)}"), "finished before the kill"
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    copy = download(s3, "s3://data/killed", tmp_path / "killed")
    assert dataset_digest(copy) == dataset_digest(local_build)
    # the log is uploaded as the run ends (the killed run's died with it)
    assert "videos to do" in s3.cat_file("data/killed/build.log").decode()


def test_a_reader_during_the_build_sees_whole_shards_only(s3, remote_videos, local_build):
    seen = []

    def read_everything(video: str, status: str) -> None:
        data = dataset.PseudoGTDataset("s3://data/watched")
        for i in range(len(data)):  # every listed sample's bytes are there and decode
            data[i]
        seen.append((len(data), len({s.key for s in data.iter_shards()})))

    build_dataset(remote_videos, "s3://data/watched", OPTIONS, on_video=read_everything)
    final = len(dataset.PseudoGTDataset(local_build))
    shards = dataset.read_manifest(local_build, "samples")["shard"].to_pylist()
    first_shard = shards.count(dataset.shard_file(0))
    # nothing before the first shard commits, then that shard whole, then everything
    assert [n for n, _ in seen] == [0, 0, first_shard, first_shard]
    assert all(n == streamed for n, streamed in seen)
    assert len(dataset.PseudoGTDataset("s3://data/watched")) == final


def test_two_attempts_at_one_video_cannot_spoil_its_part(s3, remote_videos, local_build,
                                                         tmp_path):
    storage = Storage("s3://data/retried")
    first = process_video(storage, 0, remote_videos[0], OPTIONS)
    second = process_video(storage, 0, remote_videos[0], OPTIONS)  # a retried task
    assert first["record"] != second["record"] and first["tar"] != second["tar"]
    assert len(storage.list(WORK, ".json")) == 2
    # the build starts where both attempts left: it uses one, deletes both
    plans = []
    build_dataset(remote_videos, storage, OPTIONS,
                  on_plan=lambda todo, done: plans.append((todo, done)))
    assert plans == [(3, 1)]
    assert storage.list(WORK) == []
    copy = download(s3, "s3://data/retried", tmp_path / "retried")
    assert dataset_digest(copy) == dataset_digest(local_build)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fastunlc", *args], capture_output=True,
                          text=True, timeout=300, env=env)


def test_a_missing_bucket_gets_one_line_naming_the_url(s3, remote_videos):
    result = run_cli("build", remote_videos[0], "--out", "s3://no-such-bucket/d",
                     *CLI_OPTIONS)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: s3://no-such-bucket/d: the bucket 'no-such-bucket' "
                           "does not exist")
    missing = run_cli("build", "s3://no-such-bucket/videos/", "--out", "s3://data/none",
                      *CLI_OPTIONS)
    assert missing.returncode == 1 and "no video found" in missing.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wrong_credentials_get_one_line_naming_the_url(remote_videos, tmp_path):
    """A second S3 server that checks credentials (moto with IAM authentication on):
    the test's keys are unknown to it."""
    port = _free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the checking S3 server never started"
                time.sleep(0.2)
        client = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        out = run_cli("build", remote_videos[0], "--out", "s3://data/d", *CLI_OPTIONS,
                      env=client)
        inputs = run_cli("build", "s3://videos/clips/", "--out", str(tmp_path / "never"),
                         *CLI_OPTIONS, env=client)
    finally:
        server.terminate()
        server.wait()
    for result, url in ((out, "s3://data/d"), (inputs, "s3://videos/clips")):
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {url}: access denied"), line
        assert "credentials" in line


def test_shards_sized_in_bytes_over_s3(s3, remote_videos, local_build):
    """--shard-size: a shard closes once its samples reach the size, in input order."""
    one = BuildOptions(OPTIONS.config, OPTIONS.frames_per_shot, OPTIONS.seed, None,
                       OPTIONS.max_frames, shard_bytes=1)
    stats = build_dataset(remote_videos, "s3://data/bytes", one)
    assert stats["shards"] == 4  # every video's samples pass one byte
    rows = dataset.read_manifest("s3://data/bytes", "videos").to_pylist()
    assert [r["shard"] for r in rows] == [0, 1, 2, 3]
    assert json.loads(Storage("s3://data/bytes").read_text("build.json"))["options"][
        "shard_bytes"] == 1
