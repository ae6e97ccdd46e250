"""What one video may cost a worker: wall-clock time (SIGALRM) and memory (RLIMIT_AS)."""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Limits:
    """What one video may cost a worker (not part of the dataset's identity).

    Attributes
    ----------
    seconds : float or None
        Wall-clock seconds per video; a video that takes longer is stopped and recorded
        as failed. Checked between compiled steps, so a step that never returns to
        Python (a decoder stuck in C) is caught only by the worker's death.
    memory_mb : int or None
        Memory a video may use, in MiB: each worker's address space (``RLIMIT_AS``) is
        capped at its size after start-up plus this. A video that needs more fails
        (out of memory, or a library that cannot map what it needs) instead of taking the
        machine down.
    """

    seconds: float | None = None
    memory_mb: int | None = None


NO_LIMITS = Limits()
"""No time or memory limit (the default)."""


class VideoTimeout(Exception):
    """A video ran past :attr:`Limits.seconds`."""


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise VideoTimeout in this (main) thread once ``seconds`` have passed, and again
    every second until the block ends: an exception raised while C code called back into
    Python (a JIT compiler's callback, say) can be swallowed there.

    An alarm can still arrive as the block ends, after the caller's last chance to catch
    it inside the block: the caller catches VideoTimeout around the ``with`` statement
    too. Once the block has ended, a late alarm is ignored rather than raised.
    """
    if not seconds:
        yield
        return
    armed = [True]

    def expire(signum: int, frame: Any) -> None:
        if armed[0]:
            raise VideoTimeout(f"took longer than {seconds:g} s (the per-video time limit)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        armed[0] = False  # first, so that an alarm from here on cannot escape the cleanup
        cancel_alarm()
        signal.signal(signal.SIGALRM, previous)


def cancel_alarm() -> None:
    """Stop the repeating alarm of :func:`time_limit` (a handler that has caught the
    timeout calls this so that the next one does not interrupt it)."""
    signal.setitimer(signal.ITIMER_REAL, 0)


_MEMORY_MB: int | None = None  # this worker's per-video memory limit, set by cap_memory


def memory_limit_mb() -> int | None:
    """The per-video memory limit this process runs under, in MiB (None: none)."""
    return _MEMORY_MB


def cap_memory(memory_mb: int | None) -> None:
    """Cap this process's address space (soft limit, so that it can be set again for the
    next video) at its present size plus ``memory_mb`` MiB; None or 0: no cap."""
    global _MEMORY_MB
    _MEMORY_MB = memory_mb
    if memory_mb:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        limit = _address_space_bytes() + memory_mb * 2**20
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _address_space_bytes() -> int:
    """This process's virtual memory size (Linux's ``VmSize``), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise OSError("VmSize not found in /proc/self/status")
