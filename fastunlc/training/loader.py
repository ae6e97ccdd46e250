"""The training loader: whole batches decoded, cut and normalised on the device.

:class:`BatchLoader` plays the role NVIDIA DALI plays in image training, written on
torch:

1. a rank's groups (shards) are read whole by ``workers`` reader threads, each group in
   large sequential reads into one buffer of pinned host memory (when the device is a
   GPU), ahead of the batches that need them;
2. each batch's crops are drawn on the host from the sources' boxes
   (:func:`fastunlc.training.crops.draw_crop`), before anything is decoded;
3. the batch's JPEGs, frames and masks, are decoded in two batched calls of
   ``torchvision.io.decode_jpeg`` (nvJPEG on a GPU);
4. crop, resize, flip, normalisation and the trimap target run for the whole batch on
   the device (:func:`fastunlc.training.crops.make_batch`);
5. a producer thread prepares the next ``prefetch`` batches on a side CUDA stream while
   the step runs; the step's stream waits on each batch's event, and the batch's tensors
   are recorded on that stream so that the allocator does not hand their memory back to
   the side stream while the step still reads it.

Two known torchvision problems with GPU decoding: nvJPEG's memory leak (torchvision
issue 4378) was fixed in CUDA 11.6, and the wheels this package pins are built on CUDA
13; ``decode_jpeg(device="cuda")`` allocates its outputs on the current stream but
decodes on a stream of its own without waiting on it (torchvision PR 9606), so it can
be handed memory that kernels still queued on the current stream will read. The
producer therefore waits for the side stream to be idle before each batch's decoding:
no kernel is queued on it when the decoder allocates.

:func:`reference_loader` is the plain path: a ``torch.utils.data.DataLoader`` whose
workers read each sample on its own, decode it with PIL and cut it with the same kernel.
For the same seed both give the same batches, bit for bit on the CPU.

The sample order (:class:`SampleOrder`) is a function of the seed, the epoch and the
rank: each epoch shuffles the rank's groups, then shuffles the samples within windows of
``window`` consecutive groups (a shuffle buffer that needs only ``window`` groups in
memory). A loader's whole state is the number of samples it has served, so a resumed run
sees the batches an uninterrupted one would have.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .crops import CropRecipe, draw_crop, make_batch, sample_rng
from .sources import EncodedSample, Source


class LoaderError(RuntimeError):
    """A rank's share of the data does not fit the loader's settings."""


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed a source's ``read_group`` gets in ``epoch`` (its masks' randomness)."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


class SampleOrder:
    """The order in which one rank serves its samples, epoch after epoch.

    Parameters
    ----------
    source : Source
    seed : int
    rank, world : int
        This rank and the number of ranks: rank ``r`` owns groups ``r, r + world, …``.
    window : int
        Groups whose samples are shuffled together.
    min_groups : int
        Groups each rank needs at least (its reader threads' count).

    Raises
    ------
    LoaderError
        A rank would own fewer than ``min_groups`` groups, or no sample.
    """

    def __init__(self, source: Source, seed: int, rank: int = 0, world: int = 1,
                 window: int = 4, min_groups: int = 1) -> None:
        if source.groups < world * min_groups:
            raise LoaderError(
                f"{source.name}: {source.groups} group(s) (shards) for {world} rank(s) × "
                f"{min_groups} reader(s); each rank reads its own shards, so it needs at "
                f"least {world * min_groups}: use fewer ranks or --workers, or build with "
                "a smaller --videos-per-shard")
        self.seed, self.rank, self.window = seed, rank, max(1, window)
        self.groups = np.arange(rank, source.groups, world)
        starts = np.searchsorted(source.group_of, np.arange(source.groups + 1))
        self.members = {int(g): np.arange(starts[g], starts[g + 1]) for g in self.groups}
        self.length = sum(len(m) for m in self.members.values())
        if self.length == 0:
            raise LoaderError(f"{source.name}: rank {rank} of {world} owns no sample")
        self._epochs: dict[int, tuple[np.ndarray, np.ndarray, list[list[int]]]] = {}

    def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray, list[list[int]]]:
        """``(samples, window of each, groups of each window)`` of ``epoch``: the sample
        indices in serving order and their windows, ``(length,)`` int64 each."""
        if epoch not in self._epochs:
            rng = np.random.default_rng([self.seed, epoch, self.rank, 1])
            groups = rng.permutation(self.groups)
            windows = [groups[k:k + self.window].tolist()
                       for k in range(0, len(groups), self.window)]
            samples, which = [], []
            for w, members in enumerate(windows):
                pool = np.concatenate([self.members[g] for g in members])
                samples.append(rng.permutation(pool))
                which.append(np.full(len(pool), w))
            if len(self._epochs) >= 2:  # a batch spans at most two epochs
                del self._epochs[min(self._epochs)]
            self._epochs[epoch] = (np.concatenate(samples), np.concatenate(which), windows)
        return self._epochs[epoch]

    def at(self, position: int) -> tuple[int, int]:
        """``(epoch, sample index)`` served at ``position`` (0-based, over all epochs)."""
        epoch, offset = divmod(position, self.length)
        return epoch, int(self.epoch(epoch)[0][offset])

    def window_at(self, position: int) -> tuple[int, int]:
        """``(epoch, window)`` of the sample served at ``position``."""
        epoch, offset = divmod(position, self.length)
        return epoch, int(self.epoch(epoch)[1][offset])

    def next_window(self, epoch: int, window: int) -> tuple[int, int]:
        """The ``(epoch, window)`` served after ``window`` of ``epoch``."""
        if window + 1 < len(self.epoch(epoch)[2]):
            return epoch, window + 1
        return epoch + 1, 0


@dataclass
class Batch:
    """One training batch on the loader's device.

    ``inputs`` ``(B, 3, 227, 227)`` float32 normalised (channels-last when asked);
    ``target`` and ``weight`` ``(B, 56, 56)`` float32; ``indices`` ``(B,)`` the samples'
    indices in the source; ``position`` the loader position after this batch.
    """

    inputs: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor
    indices: np.ndarray
    position: int


def _decode_rgb(data: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)


def _decode_masks(samples: list[EncodedSample], device: torch.device) -> list[torch.Tensor]:
    from torchvision.io import ImageReadMode, decode_jpeg

    masks: list[torch.Tensor | None] = [None] * len(samples)
    coded = [k for k, s in enumerate(samples) if s.mask_is_jpeg]
    if coded:
        decoded = decode_jpeg([torch.from_numpy(samples[k].mask) for k in coded],
                              mode=ImageReadMode.GRAY, device=device)
        for k, plane in zip(coded, decoded, strict=True):
            masks[k] = plane
    for k, s in enumerate(samples):
        if not s.mask_is_jpeg:
            masks[k] = torch.from_numpy(s.mask)[None].to(device, non_blocking=True)
    return masks


class BatchLoader:
    """Batches of one rank, prepared on ``device`` ahead of the step (see the module).

    Parameters
    ----------
    source : Source
    batch_size : int
    seed : int
    recipe : CropRecipe
    device : torch.device or str
    rank, world : int
        This process's rank and the number of ranks (DDP).
    workers : int
        Reader threads (and, on the CPU, decoding threads); each rank needs at least this
        many groups.
    window : int
        Groups shuffled together (see :class:`SampleOrder`).
    prefetch : int
        Batches prepared ahead.
    keep_in_memory : bool
        Keep every group read in (pinned) host memory for the whole run, so that later
        epochs read nothing from disk. The decoders read the bitstream from host memory
        (``decode_jpeg`` takes CPU tensors, also for ``device="cuda"``), so host memory is
        where a resident compressed dataset is useful.
    channels_last : bool
        Hand out inputs in channels-last memory format.
    position : int
        Samples already served (a resumed run's loader state).
    """

    def __init__(self, source: Source, batch_size: int, seed: int, recipe: CropRecipe,
                 device: torch.device | str = "cpu", rank: int = 0, world: int = 1,
                 workers: int = 4, window: int = 4, prefetch: int = 3,
                 keep_in_memory: bool = False, channels_last: bool = True,
                 position: int = 0) -> None:
        if batch_size < 1 or workers < 1 or prefetch < 1:
            raise ValueError(f"batch_size, workers and prefetch must be >= 1, got "
                             f"{batch_size}, {workers}, {prefetch}")
        if keep_in_memory and source.redraws_masks:
            raise ValueError(f"{source.name}: keep_in_memory needs sources whose masks do not "
                             "change between epochs (COCO's degradations redraw them)")
        self.source, self.batch_size, self.seed, self.recipe = source, batch_size, seed, recipe
        self.device = torch.device(device)
        self.order = SampleOrder(source, seed, rank, world, window, min_groups=workers)
        self.workers, self.prefetch = workers, prefetch
        self.keep_in_memory, self.channels_last = keep_in_memory, channels_last
        self.position = position
        self.bytes_read = 0
        self._pin = self.device.type == "cuda"
        self._stream = torch.cuda.Stream(self.device) if self._pin else None

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = int(state["position"])

    # -- reading ---------------------------------------------------------------------

    def _allocate(self, nbytes: int) -> np.ndarray:
        return torch.empty(nbytes, dtype=torch.uint8, pin_memory=self._pin).numpy()

    def _read(self, epoch: int, group: int) -> dict[int, EncodedSample]:
        samples = self.source.read_group(group, epoch_seed(self.seed, epoch), self._allocate)
        self.bytes_read += sum(s.image.nbytes + s.mask.nbytes for s in samples)
        return {s.index: s for s in samples}

    def __iter__(self) -> Iterator[Batch]:
        """Batches from :attr:`position` on, without end (steps are the caller's count)."""
        ready: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        producer = threading.Thread(target=self._produce, args=(self.position, ready, stop),
                                    name="fastunlc-loader", daemon=True)
        producer.start()
        try:
            while True:
                item = ready.get()
                if isinstance(item, BaseException):
                    raise item
                batch, event = item
                if event is not None:
                    current = torch.cuda.current_stream(self.device)
                    current.wait_event(event)
                    for tensor in (batch.inputs, batch.target, batch.weight):
                        tensor.record_stream(current)
                self.position = batch.position
                yield batch
        finally:
            stop.set()
            while producer.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get_nowait()
                except queue.Empty:
                    producer.join(0.05)

    def _produce(self, position: int, ready: queue.Queue, stop: threading.Event) -> None:
        readers = ThreadPoolExecutor(self.workers, thread_name_prefix="fastunlc-read")
        decoders = ThreadPoolExecutor(self.workers, thread_name_prefix="fastunlc-decode")
        reads: dict[tuple[int, int], Future] = {}
        left: dict[tuple[int, int], int] = {}
        try:
            while not stop.is_set():
                end = position + self.batch_size
                for at in (position, end - 1):
                    self._schedule(*self.order.window_at(at), readers, reads, left)
                picks = [self.order.at(p) for p in range(position, end)]
                samples = []
                for epoch, index in picks:
                    key = (epoch, int(self.source.group_of[index]))
                    samples.append(reads[(0, key[1]) if self.keep_in_memory else key]
                                   .result()[index])
                    left[key] -= 1
                    if left[key] == 0 and not self.keep_in_memory:
                        del reads[key]  # `left` keeps the key: the group is not read again
                position = end
                item = self._assemble(samples, picks, position, decoders)
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as err:  # hand it to the consumer, which raises it
            ready.put(err)
        finally:
            readers.shutdown(wait=False, cancel_futures=True)
            decoders.shutdown(wait=False, cancel_futures=True)

    def _schedule(self, epoch: int, window: int, readers: ThreadPoolExecutor,
                  reads: dict, left: dict) -> None:
        """Start reading the groups of ``window`` of ``epoch`` and of the window after it,
        unless already under way (the look-ahead that hides a window's reads)."""
        for e, w in ((epoch, window), self.order.next_window(epoch, window)):
            for group in self.order.epoch(e)[2][w]:
                key = (e, group)
                if key in left:
                    continue
                left[key] = len(self.order.members[group])
                if not self.keep_in_memory:
                    reads[key] = readers.submit(self._read, e, group)
                elif (0, group) not in reads:  # read once, kept for the whole run
                    reads[(0, group)] = readers.submit(self._read, 0, group)

    # -- decoding and cutting ----------------------------------------------------------

    def _assemble(self, samples: list[EncodedSample], picks: list[tuple[int, int]],
                  position: int, decoders: ThreadPoolExecutor):
        windows = np.zeros((len(samples), 3))
        flips = np.zeros(len(samples), bool)
        for k, (epoch, index) in enumerate(picks):
            *window, flips[k] = draw_crop(self.source.objects(index),
                                          sample_rng(self.seed, epoch, index), self.recipe)
            windows[k] = window
        indices = np.array([index for _, index in picks])
        if self._stream is None:
            return self._cut(samples, windows, flips, indices, position, decoders), None
        self._stream.synchronize()  # nothing queued when the decoder allocates (PR 9606)
        with torch.cuda.stream(self._stream):
            batch = self._cut(samples, windows, flips, indices, position, decoders)
            event = torch.cuda.Event()
            event.record(self._stream)
        return batch, event

    def _cut(self, samples, windows, flips, indices, position, decoders) -> Batch:
        data = [torch.from_numpy(s.image) for s in samples]
        if self.device.type == "cpu" and self.workers > 1:
            # decode_jpeg loops over a list on one core on the CPU; split it over threads.
            chunks = [c for c in np.array_split(np.arange(len(data)), self.workers) if len(c)]
            parts = decoders.map(lambda c: _decode_rgb([data[k] for k in c], self.device),
                                 chunks)
            images = [plane for part in parts for plane in part]
        else:
            images = _decode_rgb(data, self.device)
        masks = _decode_masks(samples, self.device)
        inputs, target, weight = make_batch(images, masks, windows, flips, self.recipe)
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return Batch(inputs, target, weight, indices, position)


# -- the reference path -------------------------------------------------------------------


class ReferenceCrops(torch.utils.data.Dataset):
    """Map-style dataset of one rank's sample positions: item ``p`` is the ``p``-th sample
    this rank serves, read on its own, decoded with PIL and cut alone (batch of one)."""

    def __init__(self, source: Source, seed: int, recipe: CropRecipe, rank: int = 0,
                 world: int = 1, window: int = 4) -> None:
        self.source, self.seed, self.recipe = source, seed, recipe
        self.order = SampleOrder(source, seed, rank, world, window)

    def __len__(self) -> int:  # positions run on over epochs; the sampler bounds them
        return 2**62

    def __getitem__(self, position: int):
        epoch, index = self.order.at(position)
        sample = self.source.read_sample(index, epoch_seed(self.seed, epoch))
        image = np.asarray(Image.open(io.BytesIO(sample.image.tobytes())).convert("RGB"))
        if sample.mask_is_jpeg:
            mask = np.asarray(Image.open(io.BytesIO(sample.mask.tobytes())).convert("L"))
        else:
            mask = sample.mask
        *window, flip = draw_crop(self.source.objects(index),
                                  sample_rng(self.seed, epoch, index), self.recipe)
        inputs, target, weight = make_batch(
            [torch.from_numpy(image.copy()).permute(2, 0, 1)],
            [torch.from_numpy(mask.copy())[None]], np.array([window]), np.array([flip]),
            self.recipe)
        return inputs[0], target[0], weight[0], index


class _Positions(torch.utils.data.Sampler):
    def __init__(self, start: int) -> None:
        self.start = start

    def __iter__(self) -> Iterator[int]:
        position = self.start
        while True:
            yield position
            position += 1


def reference_loader(source: Source, batch_size: int, seed: int, recipe: CropRecipe,
                     device: torch.device | str = "cpu", rank: int = 0, world: int = 1,
                     workers: int = 2, window: int = 4, channels_last: bool = True,
                     position: int = 0) -> Iterator[Batch]:
    """The plain path: ``torch.utils.data.DataLoader`` with ``workers`` processes, PIL
    decoding and per-sample cutting on the CPU; batches copied to ``device``. Yields the
    same :class:`Batch` es as :class:`BatchLoader` with the same arguments."""
    device = torch.device(device)
    loader = torch.utils.data.DataLoader(
        ReferenceCrops(source, seed, recipe, rank, world, window), batch_size=batch_size,
        sampler=_Positions(position), num_workers=workers,
        pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    for inputs, target, weight, indices in loader:
        position += batch_size
        inputs = inputs.to(device, non_blocking=True)
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        yield Batch(inputs, target.to(device, non_blocking=True),
                    weight.to(device, non_blocking=True), indices.numpy(), position)
