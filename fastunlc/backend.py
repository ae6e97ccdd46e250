"""The one place where a backend name becomes the kernels that run the stages.

Stage modules never branch on the device: they ask :func:`kernels` for the kernel
modules of ``config.device`` and call them. Today only ``cpu`` is built (Numba kernels
in :mod:`fastunlc._kernels.cpu`, the C++ coarse-to-fine flow in ``fastunlc._C``); a
``cuda`` backend will resolve to modules with the same names and the same out-array
contracts. This module imports nothing heavy at import time, so :mod:`fastunlc.config`
can check a device name without loading Numba.

>>> from fastunlc.backend import kernels
>>> k = kernels("cpu")                                   # doctest: +SKIP
>>> k.voting.paint(votes, labels, offsets, out)          # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Literal

Device = Literal["cpu", "cuda"]
DEVICES: tuple[str, ...] = ("cpu", "cuda")
"""Every device name a config may carry."""
BUILT: tuple[str, ...] = ("cpu",)
"""The devices whose kernels exist in this build."""

# Kernel modules every backend provides: fastunlc._kernels.<device>.<name>, each the
# Kernels attribute of the same name.
_STAGES = ("colour", "descriptors", "histograms", "kts", "saliency", "slic", "voting")


def check_device(device: object) -> None:
    """Raise ValueError, in one line naming ``device``, unless its backend is built.

    Parameters
    ----------
    device : str
        ``"cpu"`` (built) or ``"cuda"`` (not built yet).

    Raises
    ------
    ValueError
        ``device`` is not a known name, or names a backend this build lacks.
    """
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(map(repr, DEVICES))}, got "
                         f"{device!r}")
    if device not in BUILT:
        raise ValueError(f"device {device!r}: the CUDA backend is not built yet; use "
                         "device='cpu'")


@dataclass(frozen=True, eq=False)
class Kernels:
    """The kernel modules of one backend; get it from :func:`kernels`.

    Attributes
    ----------
    device : str
        The backend's name.
    colour, descriptors, histograms, kts, saliency, slic, voting : module
        The compiled kernels of each stage, ``fastunlc._kernels.<device>.<name>``.
    flow : module
        The coarse-to-fine flow (``fastunlc._C``), imported on use so that a build
        without the C++ extension can still run the ``dis`` flow; ImportError saying how
        to build it when it is missing.
    """

    device: str
    colour: ModuleType
    descriptors: ModuleType
    histograms: ModuleType
    kts: ModuleType
    saliency: ModuleType
    slic: ModuleType
    voting: ModuleType

    @property
    def flow(self) -> ModuleType:
        # Looked up on each use (a sys.modules hit once loaded), not cached: a build
        # without the extension must keep saying so.
        try:
            return importlib.import_module("fastunlc._C")
        except ImportError as err:
            raise ImportError(
                "fastunlc._C (the compiled c2f flow) is not built: install fastunlc with "
                "`pip install .` (needs CMake and a C++17 compiler with OpenMP), or use "
                "UNLCConfig(flow='dis')") from err


def kernels(device: str = "cpu") -> Kernels:
    """The kernels of ``device``, imported once and cached.

    Parameters
    ----------
    device : str
        A built backend (``"cpu"``).

    Returns
    -------
    Kernels

    Raises
    ------
    ValueError
        As :func:`check_device`.
    """
    check_device(device)
    return _load(device)


@cache
def _load(device: str) -> Kernels:
    # Keyed on the name alone, so kernels() and kernels("cpu") are one object.
    modules = {name: importlib.import_module(f"fastunlc._kernels.{device}.{name}")
               for name in _STAGES}
    return Kernels(device, **modules)
