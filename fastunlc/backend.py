"""The one place where a backend name becomes the kernels that run the stages.

Two backends exist. ``cpu`` (the default): C++ kernels compiled when fastunlc is installed
(``fastunlc._C``, from ``csrc/``), reached through the thin modules of
:mod:`fastunlc._kernels.cpu` that the stage modules call into out-arrays; nothing is
compiled when they first run. ``cuda``: Numba CUDA kernels in :mod:`fastunlc._kernels.cuda`,
each batched over a whole shot and working on device arrays, which
:mod:`fastunlc.resident` chains so that a shot stays on the GPU from frames to masks.

A stage's public function takes ``config.device`` to this module and asks the returned
:class:`Kernels` for its stage's module; it never imports a backend itself. A name is
checked without importing anything (:func:`check_device`, so a config naming ``cuda``
can be made on a machine without a GPU, e.g. a Ray head node); the GPU itself is looked
for when the kernels are first asked for (:func:`kernels`).

>>> from fastunlc.backend import kernels
>>> k = kernels("cpu")                                   # doctest: +SKIP
>>> k.voting.pixel_counts(labels, offsets, counts)       # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import logging
from functools import cache
from types import ModuleType
from typing import Literal

from .errors import BackendUnavailable

logger = logging.getLogger(__name__)

# Measured on an NVIDIA H200 (benchmarks/RESULTS.md, issue 11's section): the SLIC kernels
# that equal the CPU's on Numba's simulator do not on the GPU, so the masks differ too.
_GPU_MASKS_DIFFER = (
    "device 'cuda' is experimental: on a real GPU (an NVIDIA H200, 2026-12-04) its SLIC "
    "superpixels differ from the CPU backend's and its masks with them (mean IoU 0.27 with "
    "the CPU's on vtest.avi); use device 'cpu' for the reference's masks")

Device = Literal["cpu", "cuda"]
DEVICES: tuple[str, ...] = ("cpu", "cuda")
"""Every device name a config may carry."""

# The kernel modules of each backend: fastunlc._kernels.<device>.<name>. The CPU's
# flow is the compiled extension (Kernels.flow).
STAGES: dict[str, tuple[str, ...]] = {
    "cpu": ("colour", "descriptors", "graph", "histograms", "saliency", "shots", "slic",
            "voting"),
    "cuda": ("arrays", "colour", "descriptors", "flow", "graph", "saliency", "shots", "slic",
             "voting"),
}


def check_device(device: object) -> None:
    """Raise ValueError, in one line naming ``device``, unless it is a backend's name.

    Parameters
    ----------
    device : str
        ``"cpu"`` or ``"cuda"``. Whether a GPU is present is :func:`kernels`'s question.

    Raises
    ------
    ValueError
        ``device`` is not a known name.
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}, got "
                         f"{device!r}")


class Kernels:
    """The kernel modules of one backend; get it from :func:`kernels`.

    Attributes
    ----------
    device : str
        The backend's name.
    <stage> : module
        ``fastunlc._kernels.<device>.<stage>`` for each name in ``STAGES[device]``,
        imported on first use.
    flow : module
        On ``cpu`` the coarse-to-fine flow (``fastunlc._C``).

    Asking for a CPU module when ``fastunlc._C`` is not built raises ImportError saying
    how to build it.
    """

    def __init__(self, device: str) -> None:
        self.device = device

    def __getattr__(self, name: str) -> ModuleType:
        if name == "flow" and self.device == "cpu":
            return compiled()
        if name not in STAGES.get(self.device, ()):
            raise AttributeError(f"the {self.device} backend has no {name!r} kernels")
        if self.device == "cpu":
            compiled()  # its message rather than a bare import error from the module
        module = importlib.import_module(f"fastunlc._kernels.{self.device}.{name}")
        setattr(self, name, module)  # later lookups skip __getattr__
        return module

    def __repr__(self) -> str:
        return f"Kernels({self.device!r})"


def compiled() -> ModuleType:
    """The compiled CPU kernels, ``fastunlc._C``; ImportError saying how to build them."""
    # Looked up on each use (a sys.modules hit once loaded), not cached: a build
    # without the extension must keep saying so.
    try:
        return importlib.import_module("fastunlc._C")
    except ImportError as err:
        raise ImportError(
            "fastunlc._C (the compiled CPU kernels) is not built: install fastunlc with "
            "`pip install .` (needs CMake and a C++17 compiler with OpenMP)") from err


def cpu_threads() -> int:
    """Threads the CPU kernels run on when called from this thread (``OMP_NUM_THREADS``
    when it was set at start-up, else one per available core, or :func:`set_cpu_threads`'s)."""
    return compiled().max_threads()


def set_cpu_threads(threads: int) -> None:
    """Run the CPU kernels called from this thread on ``threads`` (>= 1) threads from now
    on; ValueError otherwise."""
    compiled().set_max_threads(int(threads))


def kernels(device: str = "cpu") -> Kernels:
    """The kernels of ``device``, made once and cached.

    Parameters
    ----------
    device : str
        ``"cpu"``, or ``"cuda"`` where a GPU is visible (or Numba's CUDA simulator is
        switched on with ``NUMBA_ENABLE_CUDASIM=1``).

    Returns
    -------
    Kernels

    Raises
    ------
    ValueError
        As :func:`check_device`.
    BackendUnavailable
        ``cuda`` was asked for on a machine where it cannot run (the message says why).
    """
    check_device(device)
    return _load(device)


@cache
def _load(device: str) -> Kernels:
    # Keyed on the name alone, so kernels() and kernels("cpu") are one object; a
    # failed check is not cached, so a later call says the same again.
    if device == "cuda":
        require_gpu()
        from numba import config

        if not config.ENABLE_CUDASIM:
            logger.warning(_GPU_MASKS_DIFFER)
    return Kernels(device)


def require_gpu() -> None:
    """Raise :class:`BackendUnavailable` unless Numba can run CUDA kernels here.

    Imports ``numba.cuda`` (the ``gpu`` extra's numba-cuda) and asks it for a GPU; Numba's
    CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) counts as one, which is how the tests run
    the CUDA kernels on machines without a GPU.
    """
    try:
        from numba import cuda
    except ImportError as err:  # a Numba built without its CUDA target
        raise BackendUnavailable(f"device 'cuda': numba.cuda cannot be imported ({err}); "
                                 "install fastunlc[gpu]") from None
    if not cuda.is_available():
        raise BackendUnavailable(
            "device 'cuda': no CUDA GPU is visible to Numba (check nvidia-smi, the driver "
            "and CUDA_VISIBLE_DEVICES, and install fastunlc[gpu]); use device 'cpu'")
