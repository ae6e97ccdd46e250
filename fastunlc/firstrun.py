"""Whether the Numba kernels still have to be compiled (the CLI's first-run notice).

The first call of each kernel compiles it (about 40 s to 1.5 min on a 2-core machine) and
stores the machine code in Numba's cache. Rather than a marker file, which can outlive or
miss the cache it stands for, this asks the cache itself: for every kernel module below
the package, is there an index file (``*.nbi``) written by this Numba version for the
module's current source, where Numba would look for it?
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent

FIRST_RUN_NOTICE = (
    "note: first run: compiling fastunlc's kernels before the work starts "
    "(about 40 s to 1.5 min on 2 cores, once; later runs use the cache)"
)


def kernel_modules() -> list[Path]:
    """Source files of the CPU backend's Numba kernels (``fastunlc/_kernels/cpu/``).

    Only the CPU backend's: a CUDA backend's kernels are never cached on a machine
    without a GPU, so counting them would show the notice on every run there. Modules
    over the compiled extension (no ``numba`` import) have no cache to wait for.
    """
    return sorted(p for p in (PACKAGE / "_kernels" / "cpu").glob("*.py")
                  if p.name != "__init__.py" and "from numba import" in p.read_text())


def _cache_dirs(source: Path) -> list[Path]:
    """Where Numba's locators (``numba.core.caching``) put the cache of ``source``.

    ``NUMBA_CACHE_DIR`` wins when set; otherwise the ``__pycache__`` beside the source,
    or, for a read-only install, the user-wide cache, both under a subfolder named
    ``<parent>_<sha1 of the parent's path>``.
    """
    parent = source.parent
    subpath = f"{parent.name}_{hashlib.sha1(str(parent).encode()).hexdigest()}"
    configured = os.environ.get("NUMBA_CACHE_DIR")
    if configured:
        return [Path(configured) / subpath]
    from numba.misc.appdirs import AppDirs

    user_wide = Path(AppDirs(appname="numba", appauthor=False).user_cache_dir) / subpath
    return [parent / "__pycache__", user_wide]


def _fresh_index(index: Path, numba_version: str, stamp: bytes) -> bool:
    """True when ``index`` was written by this Numba for this source and lists entries."""
    try:
        with open(index, "rb") as f:
            if pickle.load(f) != numba_version:
                return False
            saved_stamp, overloads = pickle.loads(f.read())
    except Exception:  # unreadable or foreign index: Numba itself would recompile
        return False
    return saved_stamp == stamp and bool(overloads)


def kernels_compiled() -> bool:
    """True when every kernel module has a fresh, non-empty Numba cache index."""
    import numba

    tag = f"py{sys.version_info[0]}{sys.version_info[1]}"
    for source in kernel_modules():
        stamp = hashlib.sha256(source.read_bytes()).digest()
        indexes = [index for folder in _cache_dirs(source)
                   for index in folder.glob(f"{source.stem}.*.{tag}*.nbi")]
        if not any(_fresh_index(index, numba.__version__, stamp) for index in indexes):
            return False
    return True
