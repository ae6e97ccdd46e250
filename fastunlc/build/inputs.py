"""What a build reads: the videos named, found in folders or listed in files, and their keys.

Inputs are local paths or fsspec URLs (``s3://bucket/videos/``, ``gs://...``); a list file
may itself be at a URL and may name both. A local video is named by its absolute path, a
remote one by its URL.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import dataset
from ..storage import Storage, is_url

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg",
                              ".flv", ".wmv", ".3gp", ".ts", ".ogv"})
"""File endings taken as videos when a folder is searched."""
LIST_EXTENSIONS = frozenset({".txt", ".lst", ".list"})
"""File endings of text files that list inputs, one path a line."""


@dataclass(frozen=True)
class Inputs:
    """The videos to build from (absolute local paths and URLs), sorted and unique, and
    the inputs that are no videos (``(input, reason)`` pairs)."""

    videos: list[str]
    missing: list[tuple[str, str]] = field(default_factory=list)


def _suffix(name: str) -> str:
    return posixpath.splitext(name)[1].lower()


def discover_inputs(inputs: Sequence[str | os.PathLike[str]],
                    storage_options: Mapping[str, Any] | None = None) -> Inputs:
    """Video files named directly, found in folders (recursively, by :data:`VIDEO_EXTENSIONS`)
    or listed in text files (:data:`LIST_EXTENSIONS`; one path or URL a line, a relative
    one relative to the list's folder; blank lines and lines starting with ``#``
    skipped). Each may be a local path or an fsspec URL (``storage_options`` are the
    back end's keyword arguments).

    Paths that do not exist are returned in ``missing`` with the reason, not raised: in a
    long list some always are.

    Raises
    ------
    InputError
        A URL's storage cannot be read (wrong credentials, an unknown protocol).
    """
    videos: set[str] = set()
    missing: list[tuple[str, str]] = []
    options = dict(storage_options or {})

    def add(item: str, listed_in: str | None = None) -> None:
        storage = Storage(item, options)
        kind = storage.kind()
        if kind == "dir":
            videos.update(_canonical(p) for p in storage.find()
                          if _suffix(p) in VIDEO_EXTENSIONS)
        elif kind == "file" and _suffix(item) in LIST_EXTENSIONS and listed_in is None:
            folder = posixpath.dirname(storage.url) if is_url(item) else os.path.dirname(
                storage.url)
            for line in storage.read("").decode(errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    entry = line if is_url(line) else os.path.expanduser(line)
                    if not is_url(entry) and not os.path.isabs(entry):
                        entry = (posixpath.join(folder, entry) if is_url(item)
                                 else os.path.join(folder, entry))
                    add(entry, storage.url)
        elif kind == "file":
            videos.add(_canonical(storage.url))
        else:
            where = f" (listed in {listed_in})" if listed_in else ""
            missing.append((item, f"no such file or folder{where}"))

    for item in inputs:
        add(os.fspath(item))
    return Inputs(sorted(videos), missing)


def _canonical(video: str) -> str:
    """A video's name in the dataset: its URL, or its local path with links resolved."""
    return video if is_url(video) else str(Path(video).resolve())


def video_key(video: str | os.PathLike[str]) -> str:
    """A dataset-wide key for a video: its sanitised name and a hash of its full path
    (or URL)."""
    name = os.fspath(video)
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    stem = posixpath.splitext(posixpath.basename(name.replace(os.sep, "/")))[0]
    return f"{dataset.safe_name(stem)}-{digest}"
