"""fastunlc beside the ORIGINAL uNLC (the paper's videoseg + pyflow) on the same frames.

For each clip: read the frames once (fastunlc's FrameSource, shrunk to the 650-px working
size exactly as fastunlc does), run the original in a subprocess through
benchmarks/reference_driver.py (its own functions, run_full.py's parameters, a few shims
for library calls that no longer exist), run fastunlc in reference mode (c2f flow) in
another subprocess, and report per-stage seconds with the ratio original / fastunlc,
flow seconds per 100x100 pair, peak resident memory of each process, end-to-end seconds
per frame and mask agreement (mean IoU of the masks at p > 0.7 over the frames where the
original finds foreground; Pearson correlation of the soft masks). Where the original
processed one shot, also the agreement of every stage before the masks (flow, saliency,
superpixel labels, descriptors, initial votes; :func:`stage_agreement`), so that a mask
difference shows where it starts. Prints a Markdown table and writes compare_reference.json
(and .md) to --out.

    python benchmarks/compare_reference.py --reference ~/src/videoseg \\
        --video vtest.avi --video bikes.mp4 --start 0 80 --frames 40

--start and --frames take one value for every clip or one per --video.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

HOW_TO_GET_REFERENCE = """\
The original uNLC is not part of fastunlc; get and build it yourself:

  git clone https://github.com/pathak22/videoseg.git
  git clone https://github.com/pathak22/pyflow.git videoseg/lib/pyflow
  python -m venv /tmp/refenv --system-site-packages    # keeps Cython out of your environment
  /tmp/refenv/bin/pip install cython                    # Python >= 3.12: also setuptools
  cd videoseg/lib/pyflow && /tmp/refenv/bin/python setup.py build_ext -i && cd -

Build pyflow with the same Python version that runs this script (the module is loaded
into it). pyflow lands in videoseg/lib/pyflow, where the original looks for it; built
elsewhere, pass --pyflow DIR (the folder holding pyflow*.so). With Python 3.11, Cython
3.3 and NumPy 2.4 pyflow builds unmodified (compiler warnings only). Then:

  python benchmarks/compare_reference.py --reference videoseg --video clip.mp4
"""

STAGES = ("shots", "flow", "saliency", "superpixels", "descriptors", "graph", "voting")
STAGE_LABELS = {"shots": "shots (KTS)", "flow": "flow (c2f)", "saliency": "saliency",
                "superpixels": "superpixels (SLIC)", "descriptors": "descriptors",
                "graph": "neighbour graph", "voting": "voting + blob removal"}
DRIVER = Path(__file__).with_name("reference_driver.py")
_POLL_SECONDS = 0.2


class ReferenceCheckoutError(ValueError):
    """The --reference path is missing or not a videoseg checkout."""


def check_reference(path: str | os.PathLike[str] | None) -> Path:
    """The videoseg checkout at ``path``, resolved.

    Raises
    ------
    ReferenceCheckoutError
        When ``path`` is None, does not exist, or lacks the original's
        ``src/nlc.py``, ``src/vid2shots.py`` or ``lib/kts/cpd_auto.py``.
    """
    if path is None:
        raise ReferenceCheckoutError("--reference PATH (a checkout of pathak22/videoseg) is "
                                     "required")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ReferenceCheckoutError(f"--reference {path}: no such folder")
    missing = [p for p in ("src/nlc.py", "src/vid2shots.py", "lib/kts/cpd_auto.py")
               if not (root / p).is_file()]
    if missing:
        raise ReferenceCheckoutError(f"--reference {path} is not a videoseg checkout (no "
                                     f"{', '.join(missing)})")
    return root.resolve()


# -- agreement ---------------------------------------------------------------------------

def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks of the same shape (1.0 if both empty)."""
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} and {b.shape}")
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation of all values of ``a`` and ``b`` (None if either is constant)."""
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"arrays differ in size: {x.size} and {y.size}")
    x = x - x.mean()
    y = y - y.mean()
    scale = np.sqrt(np.dot(x, x) * np.dot(y, y))
    return None if scale == 0 else float(np.dot(x, y) / scale)


def mask_agreement(original: np.ndarray, fast: np.ndarray, threshold: float = 0.7
                   ) -> dict[str, Any]:
    """How far fastunlc's soft masks agree with the original's.

    Parameters
    ----------
    original, fast : (n, h, w) float ndarray
        Soft masks in [0, 1] of the same n frames.
    threshold : float
        Foreground is ``mask > threshold`` (0.7 in uNLC).

    Returns
    -------
    dict
        ``frames`` (n), ``foreground_frames`` (frames where the original has any
        foreground), ``mean_iou`` (mean IoU over those frames, None if there are none),
        ``fast_only_frames`` (frames where only fastunlc finds foreground) and
        ``pearson`` (correlation of all soft-mask values of the n frames; None if a side
        is constant).
    """
    if original.shape != fast.shape or original.ndim != 3:
        raise ValueError(f"need two (n, h, w) mask stacks of one shape, got {original.shape} "
                         f"and {fast.shape}")
    ours, theirs = fast > threshold, original > threshold
    has_fg = theirs.any(axis=(1, 2))
    ious = [iou(theirs[i], ours[i]) for i in np.flatnonzero(has_fg)]
    return {
        "frames": int(original.shape[0]),
        "foreground_frames": int(has_fg.sum()),
        "mean_iou": float(np.mean(ious)) if ious else None,
        "fast_only_frames": int((ours.any(axis=(1, 2)) & ~has_fg).sum()),
        "pearson": pearson(original, fast),
    }


def stage_agreement(frames: np.ndarray, record: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each stage of fastunlc (reference mode) beside the original's, on the same frames.

    Parameters
    ----------
    frames : (n, h, w, 3) uint8
        The frames of the ONE shot the original processed.
    record : dict
        The original's stage outputs (``reference_driver.py --record``) on those frames.

    Raises
    ------
    ValueError
        If the record's flows are not the pairs fastunlc computes, in the original's order.

    Returns
    -------
    dict
        ``flow_max_px``/``flow_mean_px``: largest and mean |difference| of u and v over all
        pairs (pixels at 100x100); ``saliency_max``: largest |difference| of the upsampled,
        shot-normalised saliency (in [0, 1]); ``labels_equal``: fraction of pixels with the
        same superpixel label; ``descriptors_max`` and ``votes_initial_max``: largest
        |difference| (only where every label is equal, else None: rows would not correspond).
        Where a stage differs, the first stage that does is where to look.
    """
    from fastunlc import descriptors, flow, saliency, superpixels
    from fastunlc.config import REFERENCE
    from fastunlc.reference import saliency as reference_saliency

    n, h, w, _ = frames.shape
    small = flow.resize_for_flow(frames, REFERENCE.flow_size)
    pairs = flow.flow_pairs(n, REFERENCE.flow_radius)
    original_order = [(i, i + j) for i in range(n) for j in range(-REFERENCE.flow_radius,
                      REFERENCE.flow_radius + 1) if j and 0 <= i + j < n]
    if pairs.tolist() != [list(p) for p in original_order]:
        raise ValueError("fastunlc's flow pairs are not in the original's order")
    if record["flow_u"].shape != (len(pairs), *small.shape[1:3]):
        raise ValueError(f"the original's record holds flows {record['flow_u'].shape}, not "
                         f"{len(pairs)} pairs at {small.shape[1]}x{small.shape[2]}")
    flows = flow.optical_flow(small, pairs, REFERENCE)
    flow_diff = np.abs(np.stack([flows[..., 0] - record["flow_u"],
                                 flows[..., 1] - record["flow_v"]]))
    motion = saliency.motion_saliency(flows, pairs, n, REFERENCE)
    # fastunlc pools saliency into superpixels without painting it; its oracle paints it
    # (the kernel agrees with it to 1e-12, tests/test_saliency.py).
    upsampled = reference_saliency.upsample_saliency(motion.saliency, (h, w), REFERENCE)
    labels, counts = superpixels.slic_superpixels_batch(frames, REFERENCE)
    same_labels = labels == record["superpixels"]
    # descriptor rows and votes correspond only on frames whose labels are all equal
    same_frames = np.flatnonzero(same_labels.all(axis=(1, 2)))
    result: dict[str, Any] = {
        "flow_max_px": float(flow_diff.max()), "flow_mean_px": float(flow_diff.mean()),
        "saliency_max": float(np.abs(upsampled - record["saliency"]).max()),
        "labels_equal": float(same_labels.mean()), "label_frames_equal": len(same_frames),
        "frames": int(n), "descriptors_max": None, "votes_initial_max": None,
    }
    if len(same_frames):
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in same_frames])
        ours = np.concatenate([descriptors.superpixel_descriptors(
            frames[i], labels[i], int(counts[i]), REFERENCE) for i in same_frames])
        votes = saliency.superpixel_saliency(motion.saliency, labels, offsets, REFERENCE)[0]
        result["descriptors_max"] = float(np.abs(ours - record["descriptors"][rows]).max())
        result["votes_initial_max"] = float(
            np.abs(votes[rows] - record["votes_initial"][0][rows]).max())
    return result


# -- running the two sides ------------------------------------------------------------------

class PeakWatcher(threading.Thread):
    """Polls a child's peak resident memory (``VmHWM`` in /proc) until stopped, so that a
    child killed for memory still leaves its last peak behind (0 where /proc is absent)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.status = Path(f"/proc/{pid}/status")
        self.peak_mb = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(_POLL_SECONDS):
            try:
                for line in self.status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_mb = max(self.peak_mb, int(line.split()[1]) / 1024.0)
            except (OSError, ValueError):
                return


def available_memory_gb() -> float | None:
    """MemAvailable from /proc/meminfo in GiB (None where unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except (OSError, ValueError):
        pass
    return None


def _run_child(command: list[str], log: Path, *, env: dict[str, str] | None = None,
               memory_limit_gb: float | None = None, timeout: float | None = None
               ) -> tuple[int | None, float, float]:
    """Run a child with stdout/stderr to ``log``; return (exit status or None on timeout,
    wall seconds, polled peak MiB). ``memory_limit_gb`` caps its address space (RLIMIT_AS)
    so that it fails with MemoryError instead of being killed."""
    def limit() -> None:
        size = int(memory_limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (size, size))

    began = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                 preexec_fn=limit if memory_limit_gb else None)
        watcher = PeakWatcher(child.pid)
        watcher.start()
        try:
            code: int | None = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            code = None
        watcher.done.set()
        watcher.join()
    return code, time.perf_counter() - began, watcher.peak_mb


def _tail(log: Path, lines: int = 5) -> str:
    text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return " | ".join(text[-lines:])


def run_original(reference: Path, pyflow: Path | None, frames: Path, work: Path,
                 memory_limit_gb: float | None, timeout: float | None) -> dict[str, Any]:
    """Run the original through reference_driver.py; never raises for its failures.

    Returns the driver's result.json plus ``process_wall_s``; ``status`` is "ok",
    "memory_error" (MemoryError raised), "killed" (SIGKILL: the kernel's out-of-memory
    killer, most likely), "timeout" or "error", with ``message`` saying where.
    """
    out = work / "original"
    out.mkdir()
    command = [sys.executable, str(DRIVER), "--reference", str(reference),
               "--frames", str(frames), "--out", str(out), "--record", str(out / "stages.npz")]
    if pyflow is not None:
        command += ["--pyflow", str(pyflow)]
    code, wall, polled_mb = _run_child(command, out / "log.txt", memory_limit_gb=memory_limit_gb,
                                       timeout=timeout)
    result_file = out / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else {}
    result["process_wall_s"] = round(wall, 3)
    progress = [json.loads(line) for line in (out / "progress.jsonl").read_text().splitlines()
                ] if (out / "progress.jsonl").exists() else []
    dense = [p for p in progress if p.get("event") == "dense_matrix"]
    if dense:
        result["dense_matrix"] = {"k": dense[-1]["k"], "gib": dense[-1]["gib"]}
    if result.get("status") == "ok":
        result["masks_file"] = str(out / "original_masks.npy")
        result["stages_file"] = str(out / "stages.npz")
        return result
    peak_gb = max(polled_mb, result.get("peak_rss_mb", 0.0)) / 1024.0
    result["peak_rss_mb"] = round(peak_gb * 1024.0, 1)
    stage = result.get("stage") or _running_stage(progress)
    needs = f"; its dense k x k matrix alone is {dense[-1]['gib']} GiB (k = {dense[-1]['k']})" \
        if dense else ""
    if result.get("status") == "memory_error":
        result["message"] = (f"out of memory (MemoryError) in {stage} at {peak_gb:.1f} GB "
                             f"resident{needs}")
    elif code is None:
        result.update(status="timeout", message=f"stopped after {timeout:.0f} s in {stage}")
    elif code == -signal.SIGKILL:
        result.update(status="killed", message=f"killed for memory at {peak_gb:.1f} GB "
                                               f"(SIGKILL in {stage}){needs}")
    elif result.get("status") != "error":
        result.update(status="error", message=f"exit status {code}: {_tail(out / 'log.txt')}")
    return result


def _running_stage(progress: list[dict[str, Any]]) -> str:
    """The innermost stage that began and did not end, from the driver's progress lines."""
    running: list[str] = []
    for event in progress:
        if event.get("event") == "begin":
            running.append(event["stage"])
        elif event.get("event") == "end" and running:
            running.pop()
    return running[-1] if running else "start"


def run_fastunlc(frames: Path, work: Path, warmup: bool) -> dict[str, Any]:
    """Run fastunlc's pipeline on the frames in a fresh process (after an untimed warm-up
    process that loads the libraries into the page cache, unless ``warmup`` is False)."""
    import fastunlc

    env = dict(os.environ)
    root = str(Path(fastunlc.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    runs = ("warmup", "fastunlc") if warmup else ("fastunlc",)
    for name in runs:
        out = work / name
        out.mkdir()
        command = [sys.executable, str(Path(__file__).resolve()), "--fastunlc-worker",
                   str(frames), str(out)]
        code, wall, polled_mb = _run_child(command, out / "log.txt", env=env)
        result_file = out / "result.json"
        if code != 0 or not result_file.exists():
            return {"status": "error",
                    "message": f"fastunlc exit status {code}: {_tail(out / 'log.txt')}",
                    "peak_rss_mb": round(polled_mb, 1), "process_wall_s": round(wall, 3)}
    result = json.loads(result_file.read_text())
    result["process_wall_s"] = round(wall, 3)
    result["masks_file"] = str(out / "fastunlc_masks.npy")
    return result


def fastunlc_worker(frames_path: Path, out: Path) -> int:
    """Child process: fastunlc's pipeline in reference mode on saved frames."""
    began = time.perf_counter()
    from fastunlc import flow, shots
    from fastunlc.config import REFERENCE
    from fastunlc.pipeline import StageTimer, segment_shot

    import_seconds = time.perf_counter() - began
    config = REFERENCE
    frames = np.load(frames_path)
    timer = StageTimer()
    with timer("shots"):
        features = shots.shot_features(frames, config.shot_hist_bins)
        shot_list = shots.detect_shots(features, config)
    masks, indices, processed, pairs = [], [], [], 0
    for index, (start, end) in enumerate(shot_list):
        local = shots.shot_frames(start, end, config)
        if local is None:
            continue
        shot = segment_shot(frames[local], config, timer=timer)
        pairs += len(flow.flow_pairs(len(local), config.flow_radius))
        masks.append(shot.masks)
        indices.extend(int(i) for i in local)
        processed.append({"shot": index, "frames": len(local), "saliency": shot.saliency,
                          "reason": shot.reason, "superpixels": shot.n_superpixels})
    np.save(out / "fastunlc_masks.npy", np.concatenate(masks) if masks
            else np.zeros((0, *frames.shape[1:3]), np.float32))
    result = {"status": "ok", "stages": {k: round(v, 4) for k, v in timer.seconds.items()},
              "shots": [list(s) for s in shot_list], "processed": processed,
              "frame_indices": indices, "flow_pairs": pairs, "flow": config.flow,
              "import_seconds": round(import_seconds, 3),
              "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
              "seconds": round(time.perf_counter() - began, 3)}
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return 0


# -- one clip --------------------------------------------------------------------------------

def read_frames(video: Path, start: int, count: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames ``start .. start + count - 1`` of ``video`` at fastunlc's working size.

    Returns
    -------
    frames : (n, h, w, 3) uint8
    info : dict
        Source size, working size and the frame range actually read.
    """
    from fastunlc.config import REFERENCE
    from fastunlc.video import FrameSource, resize_frame, working_size

    source = FrameSource(video)
    size = working_size(source.info.height, source.info.width, REFERENCE.max_side)
    read = [(i, resize_frame(f, size)) for i, f in source.frames(start, start + count)]
    if len(read) < 2:
        raise SystemExit(f"{video}: only {len(read)} frame(s) from frame {start}")
    frames = np.stack([f for _, f in read])
    return frames, {"source_size": [source.info.width, source.info.height],
                    "working_size": [size[1], size[0]], "first": read[0][0],
                    "last": read[-1][0], "frames": len(read)}


def _per_frame(result: dict[str, Any]) -> float | None:
    n = len(result.get("frame_indices", []))
    return sum(result["stages"].get(s, 0.0) for s in STAGES) / n if n else None


def compare_clip(video: Path, start: int, count: int, reference: Path, pyflow: Path | None,
                 out: Path, memory_limit_gb: float | None, timeout: float | None,
                 warmup: bool, keep_masks: bool) -> dict[str, Any]:
    """Run both sides on one clip and compare them; see the module docstring."""
    frames, info = read_frames(video, start, count)
    row: dict[str, Any] = {"video": str(video), "clip": f"{video.name} {info['first']}-"
                                                        f"{info['last']}", **info}
    with tempfile.TemporaryDirectory(prefix="compare_reference_") as tmp:
        work = Path(tmp)
        np.save(work / "frames.npy", frames)
        del frames
        limit = memory_limit_gb if memory_limit_gb is not None else available_memory_gb()
        row["original_memory_limit_gb"] = round(limit, 1) if limit else None
        row["load_before_original"] = os.getloadavg()
        original = run_original(reference, pyflow, work / "frames.npy", work, limit or None,
                                timeout)
        row["load_before_fastunlc"] = os.getloadavg()
        fast = run_fastunlc(work / "frames.npy", work, warmup)
        row["load_after"] = os.getloadavg()
        if original["status"] == "ok" and fast["status"] == "ok":
            row["agreement"] = _agreement(original, fast)
            if len(original["processed"]) == 1:  # the record's stacked keys hold one shot
                record = dict(np.load(original["stages_file"]))
                shot = np.load(work / "frames.npy")[original["frame_indices"]]
                try:
                    row["stage_agreement"] = stage_agreement(shot, record)
                except ValueError as err:  # the record does not hold the stages it should
                    row["stage_agreement"] = {"note": str(err)}
        if keep_masks:
            target = out / video.stem
            target.mkdir(parents=True, exist_ok=True)
            for side in (original, fast):
                if side.get("masks_file"):
                    shutil.copy(side["masks_file"], target)
        for side in (original, fast):
            side.pop("masks_file", None)
            side.pop("stages_file", None)
    for side in (original, fast):
        side["seconds_per_frame"] = _per_frame(side) if side["status"] == "ok" else None
        if "frame_indices" in side:  # positions in the clip -> source frame numbers
            side["frame_indices"] = [info["first"] + i for i in side["frame_indices"]]
    row["original"], row["fastunlc"] = original, fast
    return row


def _agreement(original: dict[str, Any], fast: dict[str, Any]) -> dict[str, Any]:
    theirs = np.load(original["masks_file"])
    ours = np.load(fast["masks_file"])
    where = {f: i for i, f in enumerate(fast["frame_indices"])}
    common = [(i, where[f]) for i, f in enumerate(original["frame_indices"]) if f in where]
    if not common:
        return {"frames": 0, "note": "the two sides processed no frame in common (shots differ)"}
    rows_theirs, rows_ours = zip(*common, strict=True)
    return mask_agreement(theirs[list(rows_theirs)], ours[list(rows_ours)])


# -- report -----------------------------------------------------------------------------------

def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _sci(value: float | None) -> str:
    return "— (no frame with equal labels)" if value is None else f"{value:.2g}"


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or not b else f"{a / b:.1f}x"


def markdown(rows: list[dict[str, Any]]) -> str:
    """A summary table over clips, then one per-stage table per clip."""
    lines = ["| clip | size | frames | original s/frame | fastunlc s/frame | speed-up | "
             "original peak MB | fastunlc peak MB | mean IoU (fg frames) | Pearson r |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o, f, a = r["original"], r["fastunlc"], r.get("agreement", {})
        orig_spf = _num(o["seconds_per_frame"]) if o["status"] == "ok" else o["status"]
        iou_text = (f"{_num(a.get('mean_iou'), 3)} ({a['foreground_frames']} of {a['frames']})"
                    if "foreground_frames" in a else "—")
        lines.append(f"| {r['clip']} | {r['working_size'][0]}x{r['working_size'][1]} | "
                     f"{r['frames']} | {orig_spf} | {_num(f['seconds_per_frame'], 3)} | "
                     f"{_ratio(o['seconds_per_frame'], f['seconds_per_frame'])} | "
                     f"{o.get('peak_rss_mb', 0):.0f} | {f.get('peak_rss_mb', 0):.0f} | "
                     f"{iou_text} | {_num(a.get('pearson'), 3)} |")
    for r in rows:
        o, f = r["original"], r["fastunlc"]
        lines += ["", f"**{r['clip']}** ({r['working_size'][0]}x{r['working_size'][1]}, "
                      f"{r['frames']} frames)", ""]
        for side, name in ((o, "original"), (f, "fastunlc")):
            if side["status"] != "ok":
                lines += [f"- {name}: {side['status']}: {side.get('message', '')}", ""]
        lines += ["| stage | original s | fastunlc s | original / fastunlc |", "|---|---|---|---|"]
        os_, fs = o.get("stages", {}), f.get("stages", {})
        for stage in STAGES:
            label = STAGE_LABELS[stage]
            orig = os_.get(stage)
            if stage == "graph" and "graph_knn" in os_:
                label += " (original: KD-tree + normalisation)"
                orig_text = (f"{_num(orig)} ({_num(os_['graph_knn'])} + "
                             f"{_num(os_['graph_normalise'])})")
            else:
                orig_text = _num(orig)
            lines.append(f"| {label} | {orig_text} | {_num(fs.get(stage), 3)} | "
                         f"{_ratio(orig, fs.get(stage))} |")
        o_total = sum(os_.get(s, 0.0) for s in STAGES) if o["status"] == "ok" else None
        f_total = sum(fs.get(s, 0.0) for s in STAGES) if f["status"] == "ok" else None
        lines.append(f"| **total** | {_num(o_total)} | {_num(f_total, 3)} | "
                     f"{_ratio(o_total, f_total)} |")
        o_pair = os_.get("flow", 0) / o["flow_pairs"] if o.get("flow_pairs") else None
        f_pair = fs.get("flow", 0) / f["flow_pairs"] if f.get("flow_pairs") else None
        lines.append(f"| flow s per pair (pairs) | {_num(o_pair, 3)} ({o.get('flow_pairs', 0)})"
                     f" | {_num(f_pair, 4)} ({f.get('flow_pairs', 0)}) | "
                     f"{_ratio(o_pair, f_pair)} |")
        lines.append(f"| end to end s/frame | {_num(o['seconds_per_frame'])} | "
                     f"{_num(f['seconds_per_frame'], 3)} | "
                     f"{_ratio(o['seconds_per_frame'], f['seconds_per_frame'])} |")
        lines.append(f"| process wall s (start, imports) | {_num(o.get('process_wall_s'), 1)} | "
                     f"{_num(f.get('process_wall_s'), 1)} | "
                     f"{_ratio(o.get('process_wall_s'), f.get('process_wall_s'))} |")
        lines.append(f"| peak resident MB | {o.get('peak_rss_mb', 0):.0f} | "
                     f"{f.get('peak_rss_mb', 0):.0f} | "
                     f"{_ratio(o.get('peak_rss_mb'), f.get('peak_rss_mb'))} |")
        a = r.get("agreement")
        if a and "foreground_frames" in a:
            lines += ["", f"Masks: mean IoU at p > 0.7 = {_num(a['mean_iou'], 3)} over the "
                          f"{a['foreground_frames']} of {a['frames']} frames where the original "
                          f"finds foreground ({a['fast_only_frames']} frames where only fastunlc "
                          f"does); Pearson r of the soft masks = {_num(a['pearson'], 3)}."]
        elif a:
            lines += ["", f"Masks: {a['note']}."]
        g = r.get("stage_agreement")
        if g and "note" in g:
            lines += ["", f"Stages: not compared ({g['note']})."]
        elif g:
            lines += ["", "Stage by stage, largest |fastunlc - original| (first differing stage "
                          "is where to look):", "",
                      "| flow px (mean) | saliency | labels equal | descriptors | initial votes |",
                      "|---|---|---|---|---|",
                      f"| {g['flow_max_px']:.2g} ({g['flow_mean_px']:.2g}) | "
                      f"{g['saliency_max']:.2g} | {g['labels_equal']:.4f} "
                      f"({g['label_frames_equal']} of {g['frames']} frames) | "
                      f"{_sci(g['descriptors_max'])} | {_sci(g['votes_initial_max'])} |"]
        load = r["load_before_original"]
        lines += ["", f"Load average before the original: {load[0]:.2f} / {load[1]:.2f} / "
                      f"{load[2]:.2f} (1/5/15 min); before fastunlc: "
                      f"{r['load_before_fastunlc'][0]:.2f}."]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Where and with what the comparison ran."""
    import scipy
    import skimage

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__,
            "scikit-image": skimage.__version__, "date": time.strftime("%Y-%m-%d %H:%M"),
            "fastunlc_commit": _git_commit(Path(__file__).resolve().parents[1])}


def _git_commit(folder: Path) -> str | None:
    """HEAD of the git checkout at ``folder`` (working-tree changes are not reflected)."""
    try:
        done = subprocess.run(["git", "--no-optional-locks", "-C", str(folder), "rev-parse",
                               "--short", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _per_clip(values: list[int], n: int, name: str, parser: argparse.ArgumentParser) -> list[int]:
    if len(values) not in (1, n):
        parser.error(f"--{name} takes one value or one per --video ({n}), got {len(values)}")
    return values * n if len(values) == 1 else values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, epilog=HOW_TO_GET_REFERENCE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", metavar="PATH",
                        help="checkout of https://github.com/pathak22/videoseg")
    parser.add_argument("--pyflow", type=Path, metavar="DIR",
                        help="folder holding the built pyflow module, when it is not in "
                             "PATH/lib/pyflow or importable already")
    parser.add_argument("--video", type=Path, action="append", default=[], metavar="V",
                        help="clip to compare (repeat for more)")
    parser.add_argument("--start", type=int, nargs="+", default=[0], metavar="S",
                        help="first frame, one for all clips or one per clip (default 0)")
    parser.add_argument("--frames", type=int, nargs="+", default=[40], metavar="N",
                        help="frames to read from --start (default 40)")
    parser.add_argument("--out", type=Path, default=Path("compare_reference_results"),
                        metavar="DIR", help="folder for compare_reference.json/.md")
    parser.add_argument("--memory-limit", type=float, metavar="GB",
                        help="address-space cap for the original, so that it fails with "
                             "MemoryError rather than being killed (default: the memory "
                             "available when it starts; 0: no cap)")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="stop the original after S seconds per clip")
    parser.add_argument("--no-warmup", action="store_true",
                        help="skip fastunlc's untimed warm-up run (its libraries then load cold)")
    parser.add_argument("--keep-masks", action="store_true",
                        help="copy both sides' soft masks (.npy) to DIR/<clip>/")
    parser.add_argument("--fastunlc-worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.fastunlc_worker:
        return fastunlc_worker(*args.fastunlc_worker)
    try:
        reference = check_reference(args.reference)
    except ReferenceCheckoutError as err:
        print(HOW_TO_GET_REFERENCE, file=sys.stderr)
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    pyflow = args.pyflow.resolve() if args.pyflow else None
    if not args.video:
        parser.error("give at least one --video")
    starts = _per_clip(args.start, len(args.video), "start", parser)
    counts = _per_clip(args.frames, len(args.video), "frames", parser)
    if min(counts) < 2 or min(starts) < 0:
        parser.error("--frames must be >= 2 and --start >= 0")
    check = subprocess.run([sys.executable, str(DRIVER), "--reference", str(reference), "--check"]
                           + (["--pyflow", str(pyflow)] if pyflow else []),
                           capture_output=True, text=True)
    if check.returncode:
        print(HOW_TO_GET_REFERENCE, file=sys.stderr)
        reason = (check.stdout.strip().splitlines() or check.stderr.strip().splitlines()
                  or ["unknown failure"])[-1]
        parser.exit(2, f"{parser.prog}: error: the original cannot be imported from "
                       f"{reference}: {reason}\n")

    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for video, start, count in zip(args.video, starts, counts, strict=True):
        print(f"{video.name} {start}-{start + count - 1}: running the original, then fastunlc ...",
              file=sys.stderr)
        rows.append(compare_clip(video, start, count, reference, pyflow, args.out,
                                 args.memory_limit, args.timeout, not args.no_warmup,
                                 args.keep_masks))
    table = markdown(rows)
    print(table)
    report = {"machine": machine(), "reference": str(reference),
              "reference_commit": _git_commit(reference), "clips": rows}
    (args.out / "compare_reference.json").write_text(json.dumps(report, indent=1))
    (args.out / "compare_reference.md").write_text(table + "\n")
    print(f"\nwritten: {args.out / 'compare_reference.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
