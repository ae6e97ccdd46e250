"""What a build reads: the videos named, found in folders or listed in files, and their keys."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import dataset

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                              ".flv", ".wmv", ".3gp", ".ts", ".ogv"})
"""File endings taken as videos when a folder is searched."""
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
"""File endings of text files that list inputs, one path a line."""


@dataclass(frozen=True)
class Inputs:
    """The videos to build from, sorted and unique, and the inputs that are no videos
    (``(input, reason)`` pairs)."""

    videos: list[Path]
    missing: list[tuple[str, str]] = field(default_factory=list)


def discover_inputs(inputs: Sequence[str | os.PathLike[str]]) -> Inputs:
    """Video files named directly, found in folders (recursively, by :data:`VIDEO_EXTENSIONS`)
    or listed in text files (:data:`LIST_EXTENSIONS`; one path a line, relative to the list's
    folder; blank lines and lines starting with ``#`` skipped).

    Paths that do not exist are returned in ``missing`` with the reason, not raised: in a
    long list some always are.
    """
    videos: set[Path] = set()
    missing: list[tuple[str, str]] = []

    def add(path: Path, listed_in: Path | None = None) -> None:
        where = f" (listed in {listed_in})" if listed_in else ""
        if path.is_dir():
            videos.update(p.resolve() for p in path.rglob("*")
                          if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        elif path.is_file() and path.suffix.lower() in LIST_EXTENSIONS and listed_in is None:
            for line in path.read_text(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = Path(line).expanduser()
                    add(entry if entry.is_absolute() else path.parent / entry, path)
        elif path.is_file():
            videos.add(path.resolve())
        else:
            missing.append((str(path), f"no such file or folder{where}"))

    for item in inputs:
        add(Path(item).expanduser())
    return Inputs(sorted(videos), missing)


def video_key(path: Path) -> str:
    """A dataset-wide key for a video: its sanitised name and a hash of its full path."""
    digest = hashlib.sha1(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{dataset.safe_name(path.stem)}-{digest}"
