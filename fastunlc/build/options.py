"""What a dataset is built with, and the check that a rerun builds the same dataset."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..config import REFERENCE, UNLCConfig
from ..dataset import FORMAT
from ..errors import InputError
from ..storage import Storage

SHARD_BYTES = 512 * 2**20
"""Default shard size: a shard is closed once its samples take 512 MiB."""


@dataclass(frozen=True)
class BuildOptions:
    """What a dataset is built with; stored in ``build.json`` so that a rerun can check it.

    Attributes
    ----------
    config : UNLCConfig
        uNLC and pruning parameters (reference defaults).
    frames_per_shot : (int, int)
        Each shot keeps a number of frames drawn uniformly from this closed range (the
        paper: 5 to 10), or all its kept frames when it has fewer.
    seed : int
        Seed of the draws.
    videos_per_shard : int or None
        A shard is closed once it holds this many videos (None: no count limit).
    max_frames : int or None
        Use at most this many frames of each video.
    shard_bytes : int or None
        A shard is closed once its samples take this many bytes (None: no size limit);
        the default, 512 MiB, is in the 256 MB - 1 GB range WebDataset's authors advise.
    """

    config: UNLCConfig = REFERENCE
    frames_per_shot: tuple[int, int] = (5, 10)
    seed: int = 0
    videos_per_shard: int | None = None
    max_frames: int | None = None
    shard_bytes: int | None = SHARD_BYTES

    def __post_init__(self) -> None:
        lo, hi = self.frames_per_shot
        if not 1 <= lo <= hi:
            raise ValueError(f"frames_per_shot must be 1 <= low <= high, got {lo}..{hi}")
        if self.videos_per_shard is not None and self.videos_per_shard < 1:
            raise ValueError(f"videos_per_shard must be >= 1, got {self.videos_per_shard}")
        if self.shard_bytes is not None and self.shard_bytes < 1:
            raise ValueError(f"shard_bytes must be >= 1, got {self.shard_bytes}")
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError(f"max_frames must be >= 2, got {self.max_frames}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["config"] = self.config.to_dict()
        out["frames_per_shot"] = list(self.frames_per_shot)
        return out


DEFAULT_OPTIONS = BuildOptions()
"""The paper's recipe with the reference's parameters."""


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the entries in which two JSON-like values differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [name for key in sorted(old.keys() | new.keys())
                for name in _differences(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [prefix.rstrip(".") or "value"] if old != new else []


def check_or_record_plan(storage: Storage, plan: dict[str, Any]) -> None:
    """Store ``build.json``, or check that an existing one describes the same build.

    Raises
    ------
    InputError
        The dataset holds one built from other inputs or options, or one that an older
        fastunlc started.
    """
    root = storage.url
    if storage.is_file("build.json"):
        previous = json.loads(storage.read_text("build.json"))
        if previous != plan:
            changed = _differences(previous, plan)
            if changed == ["format"]:
                raise InputError(root, f"was started by an older fastunlc (dataset format "
                                       f"{previous.get('format')}, now {FORMAT}): finish it "
                                       f"with that version and run `fastunlc upgrade {root}`, "
                                       "or use a new --out folder")
            if "shard_bytes" not in previous.get("options", {}):
                raise InputError(root, "was started by an older fastunlc, which cut shards "
                                       "by video count only: finish it with that version, "
                                       "or use a new --out folder")
            raise InputError(root, "holds a dataset built from other inputs or options ("
                                   f"{', '.join(changed)} differ); use a new --out folder")
        return
    storage.write("build.json", json.dumps(plan, indent=1) + "\n")
