"""The builder's placement of GPU work: workers per visible GPU, each pinned to one."""

from __future__ import annotations

import os
from multiprocessing import get_context

import pytest

from fastunlc.build import engines
from fastunlc.config import UNLCConfig


@pytest.mark.parametrize("listed, expected", [("2,3", ["2", "3"]), ("0", ["0"]),
                                              ("", []), (" 1 , 4 ,", ["1", "4"])])
def test_visible_gpus_follow_cuda_visible_devices(monkeypatch, listed, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    assert engines.visible_gpus() == expected


def test_without_the_variable_every_gpu_numba_sees_is_visible(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    from numba import cuda

    assert engines.visible_gpus() == [str(i) for i in range(len(cuda.gpus))]


@pytest.fixture
def worker_settings(monkeypatch):
    """Give back what _start_worker sets in this process: threads and the environment."""
    from fastunlc import backend

    threads = backend.cpu_threads()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", ""))
    yield
    backend.set_cpu_threads(threads)


def test_workers_take_the_gpus_in_turn_and_skip_the_memory_cap(monkeypatch, worker_settings):
    capped = []
    monkeypatch.setattr(engines, "cap_memory", capped.append)
    started = get_context("spawn").Value("i", 0)
    gpu = UNLCConfig(device="cuda")
    seen = []
    for _ in range(5):
        engines._start_worker(1, 512, gpu, ["2", "3"], started)
        seen.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert seen == ["2", "3", "2", "3", "2"]
    assert capped == []  # RLIMIT_AS would stop the CUDA driver from starting
    engines._start_worker(1, 512, UNLCConfig(flow="dis"), [], started)
    assert capped == [512] and os.environ["CUDA_VISIBLE_DEVICES"] == "2"


def test_the_local_engine_runs_workers_per_gpu(monkeypatch, tmp_path):
    pools = []

    def fake_pool(root, tasks, options, workers, threads, limits, on_video, work, gpus):
        pools.append((workers, gpus))
        return []

    monkeypatch.setattr(engines, "_run_pool", fake_pool)
    monkeypatch.setattr(engines, "visible_gpus", lambda: ["0", "1", "2"])
    from fastunlc.build import BuildOptions

    task = (0, 0, "clip.mp4")
    engines.run_local(tmp_path, [task], BuildOptions(UNLCConfig(device="cuda")),
                      lambda *a: None, workers=2)
    engines.run_local(tmp_path, [task], BuildOptions(UNLCConfig()), lambda *a: None,
                      workers=2)
    assert pools == [(6, ["0", "1", "2"]), (2, [])]
