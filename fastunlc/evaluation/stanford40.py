"""Stanford 40 Actions (Yao et al., ICCV 2011), read from the user's copy in its standard
layout.

``Stanford40/`` holds ``JPEGImages/<action>_NNN.jpg`` and ``ImageSplits/``:
``actions.txt`` (a header line, then one ``<action> <number of images>`` line per
action, tab- or space-separated, in the benchmark's order) and, per action,
``<action>_train.txt`` / ``<action>_test.txt`` listing its image file names, one a line
(the benchmark's 4,000 training and 5,532 test images). Action ``k`` of ``actions.txt``
is class ``k``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError

SPLITS = ("train", "test")


def stanford40_folder(path: str | os.PathLike[str]) -> Path:
    """The folder holding ``JPEGImages/`` and ``ImageSplits/``: ``path`` itself or its
    ``Stanford40/``.

    Raises InputError naming what is missing."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "no such Stanford 40 folder")
    for root in (path, path / "Stanford40"):
        if (root / "JPEGImages").is_dir() and (root / "ImageSplits").is_dir():
            return root
    missing = [name for name in ("JPEGImages", "ImageSplits") if not (path / name).is_dir()]
    raise InputError(path, f"not a Stanford 40 folder: no {' or '.join(missing)}/ inside "
                           "(give the Stanford40 folder that holds JPEGImages/ and "
                           "ImageSplits/)")


def read_actions(root: Path) -> list[str]:
    """The action names of ``ImageSplits/actions.txt``, in order (its header skipped).

    Raises InputError when the file is missing or lists no action."""
    path = root / "ImageSplits" / "actions.txt"
    if not path.is_file():
        raise InputError(path, "missing: the list of actions")
    lines = [line.split() for line in path.read_text().splitlines()[1:] if line.strip()]
    actions = [fields[0] for fields in lines]
    if not actions:
        raise InputError(path, "lists no action (a header line, then '<action> <count>' "
                               "lines)")
    if len(set(actions)) != len(actions):
        raise InputError(path, "lists an action twice")
    return actions


def read_split(root: Path, split: str, actions: list[str] | None = None
               ) -> tuple[list[Path], np.ndarray]:
    """The images of ``split`` (``"train"`` or ``"test"``) and their classes.

    Returns
    -------
    images : list of Path
        ``JPEGImages/<name>``, action by action in the lists' order.
    labels : (n,) ndarray
        int64 index of each image's action in ``actions`` (default: :func:`read_actions`).

    Raises
    ------
    InputError
        A list is missing or empty, or names an image that is not in ``JPEGImages/``.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    actions = read_actions(root) if actions is None else actions
    images: list[Path] = []
    labels: list[int] = []
    for k, action in enumerate(actions):
        path = root / "ImageSplits" / f"{action}_{split}.txt"
        if not path.is_file():
            raise InputError(path, f"missing: the {split} list of action {action!r}")
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if not names:
            raise InputError(path, "lists no image")
        for name in names:
            image = root / "JPEGImages" / name
            if not image.is_file():
                raise InputError(image, f"listed in {path.name} but missing")
            images.append(image)
            labels.append(k)
    return images, np.array(labels, np.int64)
