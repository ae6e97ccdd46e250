"""Training on what ``fastunlc build`` makes of real footage: the built dataset's source,
both loaders agreeing on it, a run whose loss falls, and one-line errors for datasets
training cannot read."""

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fastunlc import dataset
from fastunlc.training.crops import CropRecipe
from fastunlc.training.loader import BatchLoader, reference_loader
from fastunlc.training.sources import BuiltSource

from .old_formats import downgrade_to_format_2

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "train" / "train.py"


def train_program(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TRAIN), *args], capture_output=True, text=True,
                          timeout=900, cwd=ROOT)


def test_built_source_reads_the_shards_samples_and_boxes(real_dataset):
    source = BuiltSource(real_dataset)
    data = dataset.PseudoGTDataset(real_dataset)
    assert len(source) == len(data) and source.groups == 3
    by_key = {data.row(i)["key"]: i for i in range(len(data))}
    keys = dataset.read_manifest(real_dataset).sort_by([("shard", "ascending"),
                                                        ("jpg_offset", "ascending")])["key"]
    for group in range(source.groups):
        for sample in source.read_group(group, 0, lambda n: np.empty(n, np.uint8)):
            i = by_key[keys[sample.index].as_py()]
            assert sample.image.tobytes() == data.member_bytes(i, "jpg")
            assert sample.mask.tobytes() == data.member_bytes(i, "mask.jpg")
            assert source.image_size(sample.index) == data[i].mask.shape
            boxes = source.objects(sample.index)
            assert len(boxes) >= 1 and (boxes[:, 2:] > boxes[:, :2]).all()
            alone = source.read_sample(sample.index, 0)
            assert np.array_equal(alone.image, sample.image)
            assert np.array_equal(alone.mask, sample.mask)


@pytest.mark.slow
def test_both_loaders_give_identical_batches_on_a_built_dataset(real_dataset):
    source = BuiltSource(real_dataset)
    recipe = CropRecipe()
    fast = iter(BatchLoader(source, 6, seed=1, recipe=recipe, workers=2, window=1))
    plain = iter(reference_loader(source, 6, seed=1, recipe=recipe, workers=2, window=1))
    for _ in range(4):
        a, b = next(fast), next(plain)
        assert np.array_equal(a.indices, b.indices)
        assert torch.equal(a.inputs, b.inputs)
        assert torch.equal(a.target, b.target) and torch.equal(a.weight, b.weight)
        assert 0 < a.weight.mean() <= 1 and a.target.max() == 1  # an object in each batch


@pytest.mark.slow
def test_training_on_a_built_dataset_lowers_the_loss(real_dataset, tmp_path):
    run = tmp_path / "run"
    done = train_program("--data", str(real_dataset), "--out", str(run), "--device", "cpu",
                         "--steps", "60", "--batch-size", "8", "--workers", "2",
                         "--window", "1", "--warmup-steps", "5", "--log-every", "10",
                         "--checkpoint-every", "60", "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    with open(run / "log.csv", newline="") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) == 6
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2]), losses
    assert (run / "weights.pt").is_file()


def test_datasets_training_cannot_read_are_one_line_errors(real_dataset, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(real_dataset, old)
    downgrade_to_format_2(old)
    cut = tmp_path / "cut"
    shutil.copytree(real_dataset, cut)
    for shard in (cut / dataset.SHARDS).glob("*.tar"):  # whichever is read first
        shard.write_bytes(shard.read_bytes()[:shard.stat().st_size // 2])
    not_a_dataset = tmp_path / "videos"
    not_a_dataset.mkdir()
    cases = [
        (tmp_path / "nowhere", "no such dataset folder"),
        (not_a_dataset, "not a fastunlc dataset"),
        (old, f"add them with `fastunlc upgrade {old}`"),
        (cut, ".tar: truncated"),
    ]
    for root, message in cases:
        done = train_program("--data", str(root), "--out", str(tmp_path / "run"), "--device",
                             "cpu", "--steps", "2", "--batch-size", "4", "--workers", "1",
                             "--window", "1", "--quiet")
        assert done.returncode == 2, (root, done.stderr[-2000:])
        assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
