"""The sample order, the batched loader and the reference DataLoader path."""

import numpy as np
import pytest
import torch

from fastunlc.training.crops import CropRecipe
from fastunlc.training.loader import BatchLoader, LoaderError, SampleOrder, reference_loader
from fastunlc.training.sources import ConcatSource, SyntheticSource


@pytest.fixture(scope="module")
def source():
    """40 samples in 10 groups of 4, two image sizes (so that batches are padded)."""
    return ConcatSource([SyntheticSource(24, (96, 128), group_size=4, seed=1),
                         SyntheticSource(16, (120, 90), group_size=4, seed=2)])


def take(batches, count):
    return [next(batches) for _ in range(count)]


def test_each_epoch_is_a_shuffle_of_the_ranks_own_groups(source):
    orders = [SampleOrder(source, seed=0, rank=r, world=2, window=2) for r in range(2)]
    seen = []
    for order in orders:
        first, which, windows = order.epoch(0)
        second = order.epoch(1)[0]
        assert sorted(first) == sorted(second) and not np.array_equal(first, second)
        groups = set(source.group_of[first])
        assert groups == set(range(order.rank, source.groups, 2))
        for w, members in enumerate(windows):  # a window's samples come from its groups
            assert set(source.group_of[first[which == w]]) == set(members)
        seen.append(set(first))
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(len(source)))


def test_too_few_shards_for_the_ranks_is_a_clear_error(source):
    with pytest.raises(LoaderError, match=r"10 group\(s\) \(shards\) for 4 rank\(s\) × 3"):
        SampleOrder(source, seed=0, world=4, min_groups=3)


def test_batched_loader_and_reference_dataloader_give_identical_batches(source):
    """Nine batches of 8 cross two epochs of the 40 samples; both paths, bit for bit."""
    recipe = CropRecipe()
    fast = take(iter(BatchLoader(source, 8, seed=3, recipe=recipe, workers=2, window=2)), 9)
    plain = take(reference_loader(source, 8, seed=3, recipe=recipe, workers=2, window=2), 9)
    for a, b in zip(fast, plain, strict=True):
        assert np.array_equal(a.indices, b.indices) and a.position == b.position
        assert torch.equal(a.inputs, b.inputs)
        assert torch.equal(a.target, b.target) and torch.equal(a.weight, b.weight)
        assert a.inputs.is_contiguous(memory_format=torch.channels_last)
    served = np.concatenate([b.indices for b in fast])
    assert sorted(served[:40]) == list(range(40))  # epoch 0 serves every sample once
    targets = torch.stack([b.target for b in fast])
    assert 0.05 < targets.mean() < 0.5  # an object, not all background or all foreground


def test_a_loader_started_at_a_position_goes_on_as_the_uninterrupted_one(source):
    recipe = CropRecipe()
    whole = take(iter(BatchLoader(source, 8, seed=4, recipe=recipe, workers=2)), 7)
    resumed = take(iter(BatchLoader(source, 8, seed=4, recipe=recipe, workers=2,
                                    position=4 * 8)), 3)
    for a, b in zip(whole[4:], resumed, strict=True):
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.target, b.target)


def test_keep_in_memory_reads_each_group_once_and_changes_nothing(source):
    recipe = CropRecipe()
    plain = BatchLoader(source, 10, seed=5, recipe=recipe, workers=2)
    kept = BatchLoader(source, 10, seed=5, recipe=recipe, workers=2, keep_in_memory=True)
    a, b = take(iter(plain), 12), take(iter(kept), 12)  # three epochs
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.inputs, y.inputs)
    assert kept.bytes_read < plain.bytes_read
    one_epoch = sum(s.image.nbytes + s.mask.nbytes for g in range(source.groups)
                    for s in source.read_group(g, 0, lambda n: np.empty(n, np.uint8)))
    assert kept.bytes_read == one_epoch


def test_seeds_change_the_crops(source):
    recipe = CropRecipe()
    a = take(iter(BatchLoader(source, 8, seed=0, recipe=recipe, workers=1)), 1)[0]
    b = take(iter(BatchLoader(source, 8, seed=1, recipe=recipe, workers=1)), 1)[0]
    assert not torch.equal(a.inputs, b.inputs)


def test_a_failing_read_reaches_the_consumer(source):
    class Broken(SyntheticSource):
        def read_group(self, group, seed, allocate):
            raise OSError(f"disk gone while reading group {group}")

    with pytest.raises(OSError, match="disk gone"):
        take(iter(BatchLoader(Broken(8, group_size=2), 4, seed=0, recipe=CropRecipe(),
                              workers=1)), 1)
