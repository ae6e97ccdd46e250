"""An evaluation's run folder: its config, its checkpoint and its results.

``RUN/`` holds ``config.json`` (what the run was started with), ``checkpoint.pt`` (while
it trains: model, optimizer, schedule and RNG states and the iteration, written
atomically, loaded with ``weights_only=True``; deleted when the run finishes unless
asked to keep it), and at the end ``results.json`` (task,
config, metrics, per-class or per-sequence rows, fastunlc's version, seconds) and
``results.csv`` (the rows). ``results.json`` is written last: a folder holding it is a
finished run, which ``eval/table.py`` reads.

The transfer programs (``eval/detection.py``, ``eval/classification.py``,
``eval/segmentation.py``) share their options on the trunk, the run folder and the way
a run goes (:func:`add_transfer_arguments`, :func:`add_run_arguments`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from ..files import atomic_path, atomic_write

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
RESULTS = "results.json"
ROWS = "results.csv"


class RunFolderError(InputError):
    """A run folder that does not fit the command (one line, naming the folder)."""


def start_run(run: str | Path, config: Mapping[str, Any], resume: bool) -> Path:
    """Create or reopen ``run`` for ``config``.

    A new run needs a folder without a config; ``resume`` needs one whose ``config.json``
    equals ``config`` (so that a resumed run computes what the first one started).

    Raises
    ------
    RunFolderError
        The folder holds another run, or there is nothing to resume.
    """
    run = Path(run)
    saved = run / CONFIG
    plain = json.loads(json.dumps(dict(config)))  # tuples as lists, as the file holds them
    if saved.is_file():
        if not resume:
            raise RunFolderError(run, "holds a run already; pass --resume to continue it or "
                                      "choose another --out")
        if (run / RESULTS).is_file():
            raise RunFolderError(run, f"is finished ({RESULTS} holds its results); nothing "
                                      "to resume")
        previous = json.loads(saved.read_text())
        changed = sorted(k for k in previous.keys() | plain.keys()
                         if previous.get(k) != plain.get(k))
        if changed:
            raise RunFolderError(run, f"--resume needs the run's own settings; "
                                      f"{', '.join(changed)} differ")
        return run
    if resume:
        raise RunFolderError(run, f"no {CONFIG} to resume from")
    run.mkdir(parents=True, exist_ok=True)
    atomic_write(saved, json.dumps(plain, indent=1) + "\n")
    return run


def add_transfer_arguments(parser: argparse.ArgumentParser, *, freeze: str | None = "none"
                           ) -> None:
    """Add ``--weights``, ``--freeze``, ``--out`` and ``--resume``: what a transfer run
    starts from and where it goes. ``freeze`` is ``--freeze``'s default (None: the
    option is required)."""
    from .trunk import FREEZE_CHOICES  # imports torch, which eval/table.py does without

    parser.add_argument("--weights", required=True, metavar="PATH|random",
                        help="a train/ run folder, a .pt state dict (plain or torchvision "
                             "AlexNet names) or 'random'")
    default = "" if freeze is None else f"; default {freeze}"
    parser.add_argument("--freeze", choices=FREEZE_CHOICES, default=freeze,
                        required=freeze is None,
                        help=f"the last trunk layer kept fixed ('none': every layer "
                             f"trains{default})")
    parser.add_argument("--out", required=True, metavar="RUN", help="the run folder")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint.pt (same options)")


def add_run_arguments(parser: argparse.ArgumentParser, *, device: str | None = None) -> None:
    """Add ``--checkpoint-every``, ``--device``, ``--workers``, ``--keep-checkpoint``,
    ``--label`` and ``--quiet``: how a transfer run goes and how its report names it.
    ``device`` is ``--device``'s default (None: cuda when torch sees a GPU,
    :func:`resolve_device`)."""
    parser.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                        help="write checkpoint.pt every N iterations (default 1000)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=device,
                        help="default: cuda when torch sees a GPU" if device is None
                        else f"default: {device}")
    parser.add_argument("--workers", type=int, default=4,
                        help="image-reading processes (default 4; 0: in this one)")
    parser.add_argument("--keep-checkpoint", action="store_true",
                        help="keep checkpoint.pt (up to about 470 MB) when the run finishes "
                             "(default: deleted; results.json is the finished run)")
    parser.add_argument("--label", default="",
                        help="the initialisation's name in eval/table.py's report "
                             "(default: the weights' file or run-folder name)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def resolve_device(name: str | None):
    """The ``torch.device`` of ``"cpu"``, ``"cuda"`` or None (cuda when torch sees a
    GPU); ValueError for cuda when torch sees none."""
    import torch

    if name is None:
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch sees no GPU; pass --device cpu")
    return torch.device(name)


def save_checkpoint(run: Path, state: Mapping[str, Any]) -> None:
    """Write ``RUN/checkpoint.pt`` atomically (tensors, numbers, strings, lists, dicts)."""
    import torch

    with atomic_path(run / CHECKPOINT) as tmp:
        torch.save(dict(state), tmp)


def load_checkpoint(run: Path) -> dict[str, Any] | None:
    """``RUN/checkpoint.pt`` (``weights_only=True``), or None when there is none."""
    import torch

    path = run / CHECKPOINT
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RunFolderError(path, f"unreadable checkpoint ({type(err).__name__})") from None


def write_results(run: Path, task: str, config: Mapping[str, Any], metrics: Mapping[str, Any],
                  rows: Sequence[Mapping[str, Any]], seconds: float,
                  keep_checkpoint: bool = False) -> dict[str, Any]:
    """Write ``results.csv`` (``rows``, columns in the first row's order) then
    ``results.json``, and delete ``checkpoint.pt`` unless ``keep_checkpoint``: a
    finished run is its results (a detector's checkpoint is about 470 MB, and Table 1
    takes dozens of runs). Returns ``results.json``'s content."""
    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    atomic_write(run / ROWS, buffer.getvalue())
    results = {"task": task, "config": json.loads(json.dumps(dict(config))),
               "metrics": dict(metrics), "rows": [dict(r) for r in rows],
               "fastunlc": __version__, "seconds": round(seconds, 3),
               "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write(run / RESULTS, json.dumps(results, indent=1) + "\n")
    if not keep_checkpoint:
        (run / CHECKPOINT).unlink(missing_ok=True)
    return results


def read_results(run: str | Path) -> dict[str, Any]:
    """A finished run's ``results.json``.

    Raises InputError when ``run`` is not a finished run."""
    path = Path(run) / RESULTS
    if not path.is_file():
        raise InputError(Path(run), f"no {RESULTS} (not a finished evaluation run)")
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise InputError(path, f"unreadable ({err})") from None
