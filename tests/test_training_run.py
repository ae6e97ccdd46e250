"""Training runs end to end on the CPU: the loss falls, a killed run resumes to the
uninterrupted one's weights, two DDP ranks agree, the run folder holds what the README
says, and the programs give one-line errors."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fastunlc.training.config import TrainConfig
from fastunlc.training.model import MaskAlexNet, PlainAlexNet, torchvision_layout
from fastunlc.training.run import train

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "train" / "train.py"
PREDICT = ROOT / "train" / "predict.py"
# A small synthetic run: 64 samples in 4 shards of 16, batch 4, one reader.
SMALL = dict(synthetic=64, device="cpu", batch_size=4, workers=1, window=2,
             warmup_steps=5, log_every=4)


def small_flags(**changes) -> list[str]:
    values = {**SMALL, **changes}
    return [arg for name, value in values.items()
            for arg in (f"--{name.replace('_', '-')}", str(value))]


def run_program(script: Path, *args: str, env: dict | None = None, timeout: float = 600
                ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env=env)


def read_log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def compiled_run(tmp_path_factory) -> tuple[Path, dict]:
    """200 compiled steps on synthetic data (the one torch.compile of the suite)."""
    run = tmp_path_factory.mktemp("compiled") / "run"
    config = TrainConfig(**{**SMALL, "batch_size": 8, "log_every": 20}, steps=200,
                         compile=True, checkpoint_every=200)
    return run, train(config, run, progress=False)


@pytest.mark.slow
def test_loss_falls_on_synthetic_data(compiled_run):
    run, _ = compiled_run
    losses = [float(row["loss"]) for row in read_log(run)]
    assert len(losses) == 10
    assert losses[-1] < 0.6 * losses[0], losses


@pytest.mark.slow
def test_run_folder_and_summary(compiled_run):
    run, summary = compiled_run
    for name in ("config.json", "checkpoint.pt", "weights.pt", "log.csv", "summary.json"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    assert TrainConfig.from_dict(json.loads((run / "config.json").read_text())).compile
    assert summary["steps"] == 200 and summary["images_per_s"] > 0
    assert summary["training_flops_per_image"] == 6_653_200_512
    assert summary["data_wait_ms"] + summary["compute_ms"] == pytest.approx(
        summary["step_ms"], abs=0.01)
    assert summary["mfu"] is None  # no known peak for a CPU
    checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 200 and checkpoint["loader"]["position"] == 200 * 8


@pytest.mark.slow
def test_weights_load_into_the_network_and_a_plain_alexnet(compiled_run):
    run, _ = compiled_run
    weights = torch.load(run / "weights.pt", weights_only=True)
    assert {name.split(".")[0] for name in weights} >= {"conv1", "fc7", "mask", "conv1_bn"}
    model = MaskAlexNet(batch_norm=True)
    model.load_state_dict(weights)
    model.eval()
    plain = PlainAlexNet()
    plain.load_state_dict(torchvision_layout(weights), strict=False)
    plain.eval()
    x = torch.randn(2, 3, 227, 227)
    with torch.no_grad():
        expected = model.features(x, "conv5")
        torch.testing.assert_close(plain.features(x), expected,
                                   atol=1e-4 * float(expected.abs().max()), rtol=1e-4)


@pytest.mark.slow
def test_predict_writes_segments_layout(compiled_run, tmp_path):
    import cv2

    from tests.helpers import VTEST, read_video_frames

    run, _ = compiled_run
    frames = tmp_path / "frames"
    frames.mkdir()
    for k, frame in enumerate(read_video_frames(VTEST, count=3)):
        cv2.imwrite(str(frames / f"{k:05d}.jpg"), frame[:, :, ::-1])
    done = run_program(PREDICT, "--weights", str(run), str(frames), str(frames / "00001.jpg"),
                       "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    masks = sorted((tmp_path / "out" / "frames" / "masks").iterdir())
    assert [m.name for m in masks] == ["00000.png", "00001.png", "00002.png"]
    image = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert image.dtype == "uint8" and image.shape == read_video_frames(VTEST, count=1)[0].shape[:2]
    assert (tmp_path / "out" / "00001" / "masks" / "00000.png").is_file()
    report = json.loads((tmp_path / "out" / "frames" / "report.json").read_text())
    assert report["frames"] == 3 and report["kind"] == "network"
    bad = run_program(PREDICT, "--weights", str(tmp_path / "none.pt"), str(frames), "--out",
                      str(tmp_path / "o2"))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no such weights" in bad.stderr


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_weights(tmp_path):
    steps, every = 24, 8
    whole = tmp_path / "whole"
    train(TrainConfig(**SMALL, steps=steps, checkpoint_every=every), whole, progress=False)

    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, str(TRAIN), "--out", str(cut), "--quiet",
                             "--steps", str(steps), "--checkpoint-every", str(every),
                             *small_flags()], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (cut / "checkpoint.pt").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(cut / "checkpoint.pt", weights_only=True)["step"]
    assert killed_at < steps

    done = run_program(TRAIN, "--out", str(cut), "--resume", "--quiet")
    assert done.returncode == 0, done.stderr
    a = torch.load(whole / "weights.pt", weights_only=True)
    b = torch.load(cut / "weights.pt", weights_only=True)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], msg=name)
    assert [r["loss"] for r in read_log(cut)] == [r["loss"] for r in read_log(whole)]


@pytest.mark.slow
def test_two_ddp_ranks_end_with_the_same_weights(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", "29533", str(TRAIN), "--out", str(tmp_path / "ddp"), "--quiet",
         "--steps", "6", "--checkpoint-every", "6", *small_flags()],
        capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["ranks"] == 2 and summary["ranks_in_sync"] is True
    assert torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)["world"] == 2


@pytest.mark.slow
def test_profile_writes_a_tensorboard_trace(tmp_path):
    train(TrainConfig(**SMALL, steps=8, checkpoint_every=100), tmp_path / "p", profile=True,
          progress=False)
    traces = list((tmp_path / "p" / "profile").glob("*.pt.trace.json*"))
    assert len(traces) == 1 and traces[0].stat().st_size > 1000


def test_run_folder_mistakes_are_one_line_errors(tmp_path):
    cases = [
        (["--out", str(tmp_path / "nothing"), "--resume"], "no checkpoint.pt to resume from"),
        (["--out", str(tmp_path / "x"), "--synthetic", "8", "--device", "cuda"]
         if not torch.cuda.is_available() else None, "torch sees no GPU"),
        (["--out", str(tmp_path / "x"), "--device", "cpu"], "no training data"),
        (["--out", str(tmp_path / "x"), "--synthetic", "8", "--lr", "-1"], "lr must be"),
        (["--out", str(tmp_path / "x"), "--config", str(tmp_path / "missing.json")],
         "not a readable JSON config"),
    ]
    for argv, message in cases:
        if argv is None:
            continue
        done = run_program(TRAIN, *argv)
        assert done.returncode == 2, (argv, done.stderr)
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr


def test_help_explains_the_recipe():
    done = run_program(TRAIN, "--help")
    assert done.returncode == 0
    for text in ("torchrun", "--resume", "--coco", "--compile", "2^±0.25", "weights.pt"):
        assert text in done.stdout, text
