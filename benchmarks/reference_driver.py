"""Run the ORIGINAL uNLC (the paper's ``videoseg`` + ``pyflow``) on saved frames.

``compare_reference.py`` starts this in a subprocess of the same Python interpreter::

    python benchmarks/reference_driver.py --reference VIDEOSEG --frames F.npy --out DIR
                                          [--pyflow DIR] [--check]

It imports the original's own modules from ``VIDEOSEG/src`` and ``VIDEOSEG/lib`` and
calls its own functions with ``run_full.py``'s parameters; nothing of the original is
copied here. Modern Python and libraries lack a few calls the original makes, so it
installs compatibility shims first, and only these:

- ``scipy.misc.imresize`` (removed in SciPy 1.3): reimplemented with PIL like old SciPy
  (:func:`imresize`: uint8 out, bilinear, size from a percentage, a fraction or a tuple).
- ``np.float``, ``np.int`` (removed in NumPy 1.24): the builtins they aliased.
- ``skimage.feature.hog(..., visualise=...)`` (keyword removed): renamed ``visualize``,
  and ``block_norm`` pinned to ``"L1"``, scikit-image's default when the original was
  written (today's default is L2-Hys).
- ``skimage.segmentation.slic``: ``start_label`` pinned to 0, the behaviour when the
  original was written (scikit-image >= 0.19 starts at 1, which leaves an empty label 0
  that turns the original's votes into NaN).
- Python 2 ``print`` statements in ``lib/`` (``lib/kts/cpd_nonlin.py``): rewritten to
  calls at import time (:func:`rewrite_print_statements`); nothing else in the text changes.
  ``lib/kts`` also goes on ``sys.path`` for ``cpd_auto``'s Python 2 implicit relative import.
- ``mr_saliency`` (appearance saliency; imported by ``nlc.py`` but used only when fewer
  than half of the frames have a dominant motion): a stub that fails with an explanation
  if the fallback runs and the real package is not in ``lib/``.

Stages are timed by wrapping the original's functions (``superpixels``,
``compute_descriptor``, ``compute_nn``, ``normalize_nn``, ``compute_saliency`` and
``pyflow.coarse2fine_flow``); voting is the rest of ``nlc.nlc`` plus the final
``remove_low_energy_blobs``. Results go to ``DIR/result.json`` (timings, peak resident
memory from ``resource.getrusage``, shots, processed frames) and
``DIR/original_masks.npy`` (soft masks, float32); ``DIR/progress.jsonl`` is appended
after every stage so that a run killed for memory still leaves its timings behind.
"""

from __future__ import annotations

import argparse
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import resource
import sys
import time
import tokenize
import traceback
import types
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# run_full.py's parameters (the paper's pseudo ground truth settings).
MAX_SHOTS = 5
KTS_VMAX = 0.6
SHOT_COLOUR_BINS = 40
MIN_SHOT = 10
MAX_SHOT = 110
MAX_SUPERPIXELS = 400
VOTING_ITERATIONS = 50
BIN_THRESHOLD = 0.7
RELATIVE_ENERGY = BIN_THRESHOLD - 0.1  # written this way in run_full.py

EXIT_MEMORY = 3
"""Exit status when the original raised MemoryError (result.json says where)."""


# -- shims ---------------------------------------------------------------------------------

def bytescale(data: np.ndarray, high: int = 255, low: int = 0) -> np.ndarray:
    """Old SciPy's ``bytescale``: map ``[data.min(), data.max()]`` linearly onto
    ``[low, high]`` as uint8; uint8 input is returned unchanged."""
    if data.dtype == np.uint8:
        return data
    cmin, cmax = float(data.min()), float(data.max())
    scale = (high - low) / ((cmax - cmin) or 1.0)
    scaled = (data.astype(np.float64) - cmin) * scale + low
    return (scaled.clip(low, high) + 0.5).astype(np.uint8)


def imresize(arr: np.ndarray, size: int | float | tuple[int, ...],
             interp: str = "bilinear", mode: str | None = None) -> np.ndarray:
    """``scipy.misc.imresize`` as SciPy < 1.3 behaved, with PIL.

    Parameters
    ----------
    arr : (h, w) or (h, w, 3|4) ndarray
        Image; anything but uint8 is first byte-scaled to its own min..max (old
        ``toimage``).
    size : int, float or tuple
        int: percentage of the current size; float: fraction of it; tuple:
        ``(height, width)``. Fractional sizes are truncated (``int``), as SciPy did.
    interp : {"nearest", "lanczos", "bilinear", "bicubic", "cubic"}
        PIL resampling filter.
    mode : str, optional
        PIL image mode for the input (``None``: L, RGB or RGBA from the shape).

    Returns
    -------
    (H, W[, C]) uint8 ndarray
    """
    filters = {"nearest": 0, "lanczos": 1, "bilinear": 2, "bicubic": 3, "cubic": 3}
    from PIL import Image

    data = np.asarray(arr)
    if (data.ndim == 3 and data.shape[2] not in (3, 4)) or data.ndim not in (2, 3):
        raise ValueError(f"imresize shim handles (h, w) and (h, w, 3|4) images, got {data.shape}")
    image = Image.fromarray(np.ascontiguousarray(bytescale(data)), mode=mode)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        new = tuple((np.array(image.size) * (size / 100.0)).astype(int))
    elif isinstance(size, (float, np.floating)):
        new = tuple((np.array(image.size) * size).astype(int))
    else:
        new = (int(size[1]), int(size[0]))
    return np.array(image.resize(new, resample=filters[interp]))


def rewrite_print_statements(source: str) -> str:
    """Turn Python 2 ``print`` statements into Python 3 calls, and change nothing else.

    ``print x, y`` becomes ``print(x, y)``, a bare ``print`` becomes ``print()``, and a
    trailing comma (Python 2's "no newline") becomes ``end=" "``. Statements that already
    call ``print(...)`` and files that import ``print_function`` are left alone.
    ``print >>file, x`` is not supported (it raises ValueError).

    Parameters
    ----------
    source : str
        Python 2 source text.

    Returns
    -------
    str
        The source with every print statement rewritten.
    """
    if "print_function" in source:
        return source
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(position: tuple[int, int]) -> int:
        return starts[position[0] - 1] + position[1]

    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in the source text
    statement_start = True
    for i, tok in enumerate(tokens):
        at_start = statement_start
        if tok.type in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            statement_start = True
        elif tok.type == tokenize.OP and tok.string in (";", ":"):
            statement_start = True
        elif tok.type not in (tokenize.NL, tokenize.COMMENT):
            statement_start = False
        if not (at_start and tok.type == tokenize.NAME and tok.string == "print"):
            continue
        following = tokens[i + 1]
        if following.type == tokenize.OP and following.string == "(":
            continue
        if following.type == tokenize.OP and following.string == ">>":
            raise ValueError(f"line {tok.start[0]}: 'print >>file' is not supported")
        depth, last = 0, None
        for later in tokens[i + 1:]:
            if later.type == tokenize.OP and later.string in "([{":
                depth += 1
            elif later.type == tokenize.OP and later.string in ")]}":
                depth -= 1
            if depth == 0 and (later.type in (tokenize.NEWLINE, tokenize.COMMENT,
                                              tokenize.ENDMARKER)
                               or (later.type == tokenize.OP and later.string == ";")):
                break
            if later.type not in (tokenize.NL, tokenize.COMMENT):
                last = later
        if last is None:
            edits.append((offset(tok.end), offset(tok.end), "()"))
            continue
        edits.append((offset(tok.end), offset(following.start), "("))
        if last.type == tokenize.OP and last.string == ",":
            edits.append((offset(last.start), offset(last.end), ', end=" ")'))
        else:
            edits.append((offset(last.end), offset(last.end), ")"))
    for begin, end, text in sorted(edits, reverse=True):
        source = source[:begin] + text + source[end:]
    return source


class _Py2PrintLoader(importlib.machinery.SourceFileLoader):
    """Compiles the file after :func:`rewrite_print_statements`; writes no bytecode."""

    def get_code(self, fullname: str) -> types.CodeType:
        source = importlib.util.decode_source(self.get_data(self.path))
        return compile(rewrite_print_statements(source), self.path, "exec", dont_inherit=True)


class Py2PrintFinder(importlib.abc.MetaPathFinder):
    """Imports ``.py`` files under ``root`` through :class:`_Py2PrintLoader`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def find_spec(self, fullname: str, path: Any, target: Any = None
                  ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        if self.root not in Path(spec.origin).resolve().parents:
            return None
        spec.loader = _Py2PrintLoader(fullname, spec.origin)
        return spec


def _hog_compat(hog: Callable) -> Callable:
    @functools.wraps(hog)
    def hog_with_old_keywords(image: np.ndarray, *args: Any, visualise: bool | None = None,
                              **kwargs: Any) -> Any:
        if visualise is not None:
            kwargs.setdefault("visualize", visualise)
        kwargs.setdefault("block_norm", "L1")
        return hog(image, *args, **kwargs)
    return hog_with_old_keywords


def _slic_compat(slic: Callable) -> Callable:
    @functools.wraps(slic)
    def slic_from_zero(image: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("start_label", 0)
        return slic(image, *args, **kwargs)
    return slic_from_zero


def _mr_saliency_stub(lib: Path) -> types.ModuleType:
    package = types.ModuleType("mr_saliency")
    package.__path__ = []
    mr = types.ModuleType("mr_saliency.MR")

    class MR_saliency:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError(
                "the original fell back to appearance saliency (fewer than half of the frames "
                "have a dominant motion), which needs mr_saliency: git clone "
                f"https://github.com/ruanxiang/mr_saliency.git {lib / 'mr_saliency'}")

    mr.MR_saliency = MR_saliency
    package.MR = mr
    return package


def install_shims(reference: Path, pyflow_dir: Path | None) -> None:
    """Put the original on ``sys.path`` and install the shims listed in the module notes."""
    lib = reference / "lib"
    for entry in (pyflow_dir, lib / "kts", lib, reference / "src"):
        if entry is not None and str(entry) not in sys.path:
            sys.path.insert(0, str(entry))
    sys.meta_path.insert(0, Py2PrintFinder(lib))
    for name, builtin in (("float", float), ("int", int)):
        if not hasattr(np, name):
            setattr(np, name, builtin)
    import scipy.misc
    if not hasattr(scipy.misc, "imresize"):
        scipy.misc.imresize = imresize
    if importlib.util.find_spec("mr_saliency") is None:
        stub = _mr_saliency_stub(lib)
        sys.modules["mr_saliency"] = stub
        sys.modules["mr_saliency.MR"] = stub.MR


# -- timing --------------------------------------------------------------------------------

class StageClock:
    """Seconds and calls per stage; appends a JSON line to ``log`` as each call begins and
    ends (pyflow calls excepted), so that the stage a killed run was in can be told."""

    def __init__(self, log: Path) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.failed_in: str | None = None
        self.shot = -1
        self._log = log

    def note(self, **event: Any) -> None:
        event.update(shot=self.shot, peak_rss_mb=round(peak_rss_mb(), 1))
        with self._log.open("a") as f:
            f.write(json.dumps(event) + "\n")

    def wrap(self, stage: str, func: Callable, before: Callable | None = None) -> Callable:
        logged = stage != "flow"  # two lines per pyflow call would be noise

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if logged:
                self.note(event="begin", stage=stage)
            if before is not None:
                before(*args, **kwargs)
            began = time.perf_counter()
            try:
                return func(*args, **kwargs)
            except BaseException:
                self.failed_in = self.failed_in or stage  # the innermost stage is first here
                raise
            finally:
                seconds = time.perf_counter() - began
                self.seconds[stage] += seconds
                self.calls[stage] += 1
                if logged:
                    self.note(event="end", stage=stage, seconds=round(seconds, 4))
        return timed


class StageRecorder:
    """Keeps what the original's stage functions return, for ``--record`` (see :meth:`save`)."""

    def __init__(self) -> None:
        self.items: dict[str, list[np.ndarray]] = defaultdict(list)

    def wrap(self, stage: str, func: Callable, keep: Callable[[Any], dict[str, Any]]) -> Callable:
        @functools.wraps(func)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            value = func(*args, **kwargs)
            for name, item in keep(value).items():
                self.items[f"{stage}_{name}" if name else stage].append(np.array(item))
            return value
        return recorded

    def save(self, path: Path, **extra: np.ndarray) -> None:
        """One compressed ``.npz``: each key's calls in call order (shots in order).

        ``flow_u``/``flow_v`` (P, 100, 100) float64, pairs in the original's loop order
        (frame i, then j = -3..3); ``saliency`` (n, h, w); ``superpixels`` (n, h, w) int;
        ``descriptors`` (k, 176) and ``descriptors_frame_end`` (n,); ``votes_initial``
        (rounds + 1, k): superpixel means of the saliency, then of each blob-removed mask;
        ``votes_round`` (rounds, k): the votes after each round of iterations. The stacked
        keys assume one shot (shots' k differ). Plus ``extra``.
        """
        # one array per call: a flow field, a shot's round of votes; else one per shot
        stacked = ("flow_u", "flow_v", "votes_initial", "votes_round")
        arrays = {key: np.stack(items) if key in stacked else np.concatenate(items)
                  for key, items in self.items.items()}
        np.savez_compressed(path, **arrays, **extra)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux ``ru_maxrss`` is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def import_original(reference: Path, pyflow_dir: Path | None) -> tuple[Any, Any]:
    """Install the shims and import the original's ``nlc`` and ``vid2shots``."""
    install_shims(reference, pyflow_dir)
    import nlc
    import vid2shots

    nlc.hog = _hog_compat(nlc.hog)
    nlc.slic = _slic_compat(nlc.slic)
    return nlc, vid2shots


def run(reference: Path, pyflow_dir: Path | None, frames_path: Path, out: Path,
        record: Path | None = None) -> int:
    """Run the original on the frames in ``frames_path``; see the module notes.

    With ``record``, also save every stage's outputs there (:meth:`StageRecorder.save`).
    """
    clock = StageClock(out / "progress.jsonl")
    recorder = StageRecorder()
    result: dict[str, Any] = {"status": "running", "stages": {}, "shots": [], "processed": []}
    began = time.perf_counter()
    try:
        nlc, vid2shots = import_original(reference, pyflow_dir)
        result["import_seconds"] = round(time.perf_counter() - began, 3)
        frames = np.load(frames_path)

        def announce_dense(regions: np.ndarray, *args: Any, **kwargs: Any) -> None:
            k = regions.shape[0]
            clock.note(event="dense_matrix", k=k, gib=round(k * k * 8 / 2**30, 2))

        if record is not None:  # inside the clock's wrappers, so not timed as a stage
            nlc.pyflow.coarse2fine_flow = recorder.wrap(
                "flow", nlc.pyflow.coarse2fine_flow, lambda r: {"u": r[0], "v": r[1]})
            for name, stage, keep in (
                    ("superpixels", "superpixels", lambda r: {"": r}),
                    ("compute_descriptor", "descriptors", lambda r: {"": r[0], "frame_end": r[1]}),
                    ("compute_saliency", "saliency", lambda r: {"": r}),
                    ("salScore2votes", "votes", lambda r: {"initial": r}),
                    ("consensus_vote", "votes", lambda r: {"round": r})):
                setattr(nlc, name, recorder.wrap(stage, getattr(nlc, name), keep))
        nlc.pyflow = types.SimpleNamespace(
            coarse2fine_flow=clock.wrap("flow", nlc.pyflow.coarse2fine_flow))
        for name, stage in (("superpixels", "superpixels"), ("compute_descriptor", "descriptors"),
                            ("normalize_nn", "graph_normalise"),
                            ("compute_saliency", "flow_and_saliency")):
            setattr(nlc, name, clock.wrap(stage, getattr(nlc, name)))
        nlc.compute_nn = clock.wrap("graph_knn", nlc.compute_nn, before=announce_dense)
        segment = clock.wrap("nlc", nlc.nlc)
        final_blobs = clock.wrap("final_blobs", nlc.remove_low_energy_blobs)
        shot_starts = clock.wrap("shots", vid2shots.vid2shots)

        starts = shot_starts(frames, maxShots=MAX_SHOTS, vmax=KTS_VMAX,
                             colBins=SHOT_COLOUR_BINS).astype(int).tolist()
        bounds = [*starts, len(frames)]
        result["shots"] = [[bounds[i], bounds[i + 1]] for i in range(len(starts))]
        masks, indices = [], []
        for shot, (start, end) in enumerate(result["shots"]):
            clock.shot = shot
            length = end - start
            if length < MIN_SHOT:
                continue
            gap = length // MAX_SHOT if length > MAX_SHOT else 0
            local = np.arange(start, end, gap + 1)
            soft = segment(frames[local], maxsp=MAX_SUPERPIXELS, iters=VOTING_ITERATIONS,
                           outdir=str(out), suffix=f"shot{shot + 1}", clearBlobs=True,
                           binTh=BIN_THRESHOLD, relEnergy=RELATIVE_ENERGY, redirect=True,
                           doload=False, dosave=False)
            soft = final_blobs(soft, BIN_THRESHOLD)
            masks.append(soft.astype(np.float32))
            indices.extend(int(i) for i in local)
            result["processed"].append({"shot": shot, "frames": len(local)})
        np.save(out / "original_masks.npy", np.concatenate(masks) if masks
                else np.zeros((0, *frames.shape[1:3]), np.float32))
        result["frame_indices"] = indices
        if record is not None:
            recorder.save(record, frames=frames[indices], masks=np.concatenate(masks),
                          frame_indices=np.array(indices))
        result["status"] = "ok"
        status = 0
    except MemoryError as err:
        result.update(status="memory_error", stage=clock.failed_in or "start",
                      message=str(err) or "MemoryError")
        status = EXIT_MEMORY
    except Exception as err:  # reported to the parent, which prints it
        result.update(status="error", stage=clock.failed_in or "start",
                      message=f"{type(err).__name__}: {err}", traceback=traceback.format_exc())
        status = 1
    result["stages"] = _stage_seconds(clock)
    if status:  # voting is what nlc() spent beyond the other stages: unknown when it failed
        del result["stages"]["voting"]
    result["calls"] = dict(clock.calls)
    result["flow_pairs"] = clock.calls.get("flow", 0)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    result["seconds"] = round(time.perf_counter() - began, 3)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return status


def _stage_seconds(clock: StageClock) -> dict[str, float]:
    """The original's seconds in the comparison's stage names (see the module notes)."""
    s = clock.seconds
    inner = sum(s[k] for k in ("superpixels", "descriptors", "graph_knn", "graph_normalise",
                               "flow_and_saliency"))
    stages = {
        "shots": s["shots"],
        "flow": s["flow"],
        "saliency": s["flow_and_saliency"] - s["flow"],
        "superpixels": s["superpixels"],
        "descriptors": s["descriptors"],
        "graph_knn": s["graph_knn"],
        "graph_normalise": s["graph_normalise"],
        "graph": s["graph_knn"] + s["graph_normalise"],
        "voting": max(s["nlc"] - inner, 0.0) + s["final_blobs"],
    }
    return {k: round(v, 4) for k, v in stages.items()}


def check(reference: Path, pyflow_dir: Path | None) -> int:
    """Import the original with the shims; print one line saying why when that fails."""
    try:
        nlc, _ = import_original(reference, pyflow_dir)
        nlc.pyflow.coarse2fine_flow  # noqa: B018 - a stale or foreign pyflow lacks it
    except Exception as err:
        print(f"{type(err).__name__}: {err}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="videoseg checkout")
    parser.add_argument("--pyflow", type=Path, help="folder holding the built pyflow module")
    parser.add_argument("--frames", type=Path, help="(n, h, w, 3) uint8 .npy")
    parser.add_argument("--out", type=Path, help="folder for result.json and the masks")
    parser.add_argument("--record", type=Path, metavar="NPZ",
                        help="also save every stage's outputs to this compressed .npz")
    parser.add_argument("--check", action="store_true", help="only check that it imports")
    args = parser.parse_args()
    reference = args.reference.resolve()
    pyflow_dir = args.pyflow.resolve() if args.pyflow else None
    if args.check:
        return check(reference, pyflow_dir)
    if args.frames is None or args.out is None:
        parser.error("--frames and --out are required unless --check")
    args.out.mkdir(parents=True, exist_ok=True)
    return run(reference, pyflow_dir, args.frames, args.out, args.record)


if __name__ == "__main__":
    sys.exit(main())
