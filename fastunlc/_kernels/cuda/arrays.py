"""Device arrays and launch shapes shared by the CUDA kernels."""

from __future__ import annotations

import numpy as np
from numba import config, cuda

BLOCK_1D = 128
"""Threads per block of a 1-D launch (a multiple of the 32-thread warp)."""
BLOCK_2D = (8, 16)
"""Threads per block of a 2-D launch, (rows, columns): 128 threads."""
SIMULATOR = bool(config.ENABLE_CUDASIM)
"""Whether kernels run on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""

if SIMULATOR:
    def mul_rn(a, b):
        """``a * b`` rounded on its own (the simulator runs Python, which never fuses;
        NumPy float32 scalars round their product once too)."""
        return a * b

    mul_rn32 = mul_rn
else:  # pragma: no cover - needs a GPU
    from numba.cuda import libdevice

    # NVVM contracts a plain ``a * b + c`` into one fused multiply-add, which the CPU
    # never does; __dmul_rn / __fmul_rn are never contracted (CUDA Math API), so the
    # kernels that match the CPU bit for bit multiply through these.
    mul_rn = libdevice.dmul_rn
    mul_rn32 = libdevice.fmul_rn


def as_device(array, stream=0):
    """A device array for ``array`` without copying what is already on the GPU.

    Parameters
    ----------
    array : numpy.ndarray or object with ``__cuda_array_interface__``
        A host array is copied to the GPU on ``stream``; a device array (Numba's, a
        torch CUDA tensor, a CuPy array) is wrapped zero-copy.
    stream : numba.cuda.Stream or 0
        Stream of the copy (0: the default stream).

    Returns
    -------
    numba.cuda.cudadrv.devicearray.DeviceNDArray
    """
    if hasattr(array, "copy_to_host"):  # Numba's own (the simulator's too): as it is
        return array
    if hasattr(array, "__cuda_array_interface__"):
        return cuda.as_cuda_array(array)
    return cuda.to_device(np.ascontiguousarray(array), stream=stream)


def launch_1d(n: int, block: int = BLOCK_1D) -> tuple[int, int]:
    """``(blocks, threads)`` covering ``n >= 0`` items, at least one block; a grid
    smaller than ``block`` gets a single block of just enough (warp-rounded) threads."""
    threads = min(block, max(32, -(-n // 32) * 32))
    return max(1, -(-n // threads)), threads


def grid_1d(n: int) -> tuple[int, int]:
    """``(blocks, threads)`` of a grid-stride kernel over ``n`` items.

    On a GPU :func:`launch_1d`'s one thread per item. The simulator runs every thread as
    a Python thread that costs about 0.5 ms to start, so there one warp loops over all
    the items (blocks run one after another there anyway).
    """
    if SIMULATOR:
        return 1, min(32, max(1, n))
    return launch_1d(n)


def stream_sync(stream) -> None:
    """Wait for the copies queued on ``stream`` to land in host memory. Copies on the
    default stream (0) are synchronous already; nothing waits for other streams."""
    if stream:
        stream.synchronize()


def launch_2d(rows: int, columns: int, block: tuple[int, int] = BLOCK_2D
              ) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((blocks_y, blocks_x), (threads_y, threads_x))`` covering a ``rows x columns``
    grid, one thread per element: thread ``(y, x)`` is ``cuda.grid(2)``."""
    ty, tx = min(block[0], max(1, rows)), min(block[1], max(1, columns))
    return (max(1, -(-rows // ty)), max(1, -(-columns // tx))), (ty, tx)
