"""Errors a user can cause and fix: each carries a one-line message naming the input."""

from __future__ import annotations

from os import PathLike


class FastUNLCError(Exception):
    """Base of every error fastunlc raises for a user mistake or unusable input."""


class InputError(FastUNLCError, ValueError):
    """An input (file, folder, frames) cannot be used; ``str(err)`` names it and says why."""

    def __init__(self, source: str | PathLike[str], reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


class BackendUnavailable(FastUNLCError, RuntimeError):
    """A backend this machine cannot run (``device="cuda"`` without a GPU); ``str(err)``
    is one line saying why and what to do."""
