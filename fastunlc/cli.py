"""Command line: ``fastunlc segment`` turns videos into soft foreground masks.

Only this module prints. Each input either succeeds or gets one line saying why it
failed; one bad input never stops the others.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import __version__
from .config import PRESETS, UNLCConfig
from .errors import FastUNLCError

logger = logging.getLogger("fastunlc")

SEGMENT_HELP = """\
Segment the moving objects of each INPUT (a video file, or a folder of .jpg/.png frames
as DAVIS and FBMS lay them out) with unsupervised Non-Local Consensus (uNLC), the method
the paper "Learning Features by Watching Objects Move" uses to make pseudo ground truth.

For every input NAME it writes, under --out:
  NAME/masks/00042.png   soft foreground mask of source frame 42: 8-bit grey,
                         value = round(255 * p); foreground is p > 0.7 (value > 178)
  NAME/report.json       shots, processed frames, which saliency was used and why,
                         seconds per stage, peak memory
  NAME/preview.png       a contact sheet of frames with their masks, to look at

Long shots are subsampled (at most 110 frames each), so not every frame gets a mask:
report.json lists the processed frames. Results appear only when complete.

Parameters: every uNLC parameter (reference defaults) can be changed with
--config FILE and --set NAME=VALUE; see "parameters" below.

examples:
  fastunlc segment bikes.mp4 --out masks/
  fastunlc segment DAVIS/JPEGImages/480p/bear --out masks/ --flow dis
  fastunlc segment a.mp4 b.mp4 --out masks/ --start 100 --max-frames 200
  fastunlc segment bikes.mp4 --out again/ --config masks/bikes/report.json
  fastunlc segment bikes.mp4 --out masks/ --set n_segments=800 --set voting_rounds=10
"""

CONFIG_HELP = """parameters:
  --config FILE takes a JSON file: a report.json of 'fastunlc segment' (its "config"),
  a build.json of 'fastunlc build' (its "options" -> "config") or a bare object of
  field names and values; the run then uses exactly that run's parameters. Fields it
  does not name keep the reference's values. --set NAME=VALUE (repeatable) sets one
  field, e.g. --set slic_compactness=20. --preset fast starts from faster values
  instead of the reference's:
    %(fast)s
  (masks within 0.02 mean IoU of the reference's on ground-truth clips, see
  benchmarks/RESULTS.md). Later wins: the preset, the file, the shortcut options
  (%(shortcuts)s), then each --set in order.
  Field names are those of fastunlc.config.UNLCConfig, as listed in any report.json.
"""


def _config_help(shortcuts: str) -> str:
    """CONFIG_HELP for a command whose shortcut options are ``shortcuts``."""
    fast = ", ".join(f"{name}={value}" for name, value in PRESETS["fast"].items())
    return CONFIG_HELP % {"fast": fast, "shortcuts": shortcuts}


BUILD_HELP = """\
Turn many videos into a training dataset of frames and their uNLC pseudo ground truth,
as the paper did (section 5): per video, shots -> uNLC soft masks -> pruning (foreground
under 10% or over 80% of the frame, or over 10% of the 5% border band) -> a seeded draw
of 5 to 10 kept frames per shot.

DATASET gets WebDataset tar shards (KEY.jpg frame, KEY.png soft mask, KEY.json) of about
--shard-size each, a Parquet manifest (one row per sample with its byte offsets, one per
video with its outcome), failures.jsonl, stats.json and build.log. Rerunning the same
command after an interruption keeps the finished shards and videos and does the rest; a
video that fails is listed in failures.jsonl and never stops the run.

INPUT and DATASET may be local or at any fsspec URL: s3://bucket/videos/ (MinIO, Ceph
and other S3-compatible servers through AWS_ENDPOINT_URL), gs://, az://. Credentials
come from the usual places (for S3 the AWS_* variables and ~/.aws) or --storage-options.

Parameters: every uNLC and pruning parameter can be changed with --config FILE and
--set NAME=VALUE; see "parameters" below.

examples:
  fastunlc build videos/ --out dataset/
  fastunlc build list.txt --out dataset/ --workers 2 --frames-per-shot 5..10 --seed 1
  fastunlc build videos/ --out dataset2/ --config dataset/build.json
  fastunlc build videos/ --out dataset/ --set max_foreground=0.7
  fastunlc build s3://bucket/videos/ --out s3://bucket/datasets/d1 --shard-size 1GB
  fastunlc build s3://bucket/list.txt --out s3://bucket/d2 --engine ray --address auto
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastunlc",
        description="fastunlc: fast unsupervised video segmentation (uNLC) for motion-based "
                    "pseudo ground truth.",
        epilog="Run 'fastunlc segment --help' to start, 'fastunlc build --help' to make a "
           "training dataset.",
    )
    parser.add_argument("--version", action="version", version=f"fastunlc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    seg = sub.add_parser("segment", help="videos or frame folders in, soft masks out",
                         description=SEGMENT_HELP, epilog=_config_help("--flow, --device"),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    seg.add_argument("inputs", nargs="+", metavar="INPUT", help="video file or folder of frames")
    seg.add_argument("--out", required=True, type=Path, metavar="DIR",
                     help="output folder (created if missing)")
    seg.add_argument("--flow", choices=("c2f", "dis", "c2f-fast"), default=None,
                     help="optical flow: c2f = the reference's coarse-to-fine variational flow "
                          "(default), dis = OpenCV's DIS, faster (on the CPU); c2f-fast = c2f "
                          "with fewer iterations, --device cuda only; same as --set flow=...")
    _add_device_option(seg)
    _add_config_options(seg)
    seg.add_argument("--start", type=int, default=0, metavar="N",
                     help="first source frame to use (0-based, default 0)")
    seg.add_argument("--max-frames", type=int, default=None, metavar="N",
                     help="use at most N frames from --start (default: all)")
    seg.add_argument("--no-preview", action="store_true", help="skip preview.png")
    seg.add_argument("--quiet", action="store_true", help="no progress bars, errors only")
    seg.add_argument("--debug", action="store_true",
                     help="print full tracebacks of unexpected errors")

    build = sub.add_parser("build", help="many videos in, a sharded training dataset out",
                           description=BUILD_HELP,
                           epilog=_config_help("--flow, --device, --min-foreground"),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    build.add_argument("inputs", nargs="+", metavar="INPUT",
                       help="video file, folder (searched recursively) or .txt list of paths "
                            "or URLs; local or a URL")
    build.add_argument("--out", required=True, metavar="DATASET",
                       help="dataset folder or URL (created; an unfinished build there is "
                            "resumed)")
    build.add_argument("--storage-options", type=_json_object, default=None, metavar="JSON",
                       help="keyword arguments of the fsspec storage of the URLs, e.g. "
                            "'{\"endpoint_url\": \"http://minio:9000\"}' (default: the "
                            "storage's own configuration)")
    build.add_argument("--workers", type=int, default=1, metavar="N",
                       help="worker processes (default 1; each gets an equal share of the "
                            "cores); with --device cuda, worker processes per visible GPU")
    _add_device_option(build)
    build.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="where the work runs: local = a process pool on this machine "
                            "(default); ray = Ray tasks on a cluster (--address) or on a "
                            "local Ray instance")
    build.add_argument("--address", default=None, metavar="ADDR",
                       help="with --engine ray: the cluster to join, 'auto' or HOST:PORT "
                            "(default: start a local instance); DATASET must be where "
                            "every node can write: an object store URL, or a shared mount")
    build.add_argument("--gpus-per-video", type=float, default=0.5, metavar="F",
                       help="with --engine ray and --device cuda: GPUs each video asks for "
                            "(default 0.5: two videos share a GPU, one decoding while the "
                            "other's shot runs)")
    build.add_argument("--cpus-per-video", type=float, default=1.0, metavar="N",
                       help="with --engine ray: CPUs each video's task asks for (default 1)")
    build.add_argument("--frames-per-shot", type=_frame_range, default=(5, 10), metavar="A..B",
                       help="frames kept per shot, drawn at random from A to B (default 5..10)")
    build.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    build.add_argument("--flow", choices=("c2f", "dis", "c2f-fast"), default=None,
                       help="optical flow, as for 'fastunlc segment' (default c2f)")
    build.add_argument("--shard-size", type=_byte_size, default=None, metavar="SIZE",
                       help="close a shard once its samples take SIZE (e.g. 256MB, 1GB, "
                            "1.5GiB; default 512MiB); shards take whole videos, in input "
                            "order")
    build.add_argument("--videos-per-shard", type=int, default=None, metavar="N",
                       help="close a shard once it holds N videos (default: no limit)")
    build.add_argument("--max-frames", type=int, default=None, metavar="N",
                       help="use at most the first N frames of each video (default: all)")
    build.add_argument("--min-foreground", type=float, default=None, metavar="F",
                       help="discard frames whose foreground covers less than this share of "
                            "the frame (default 0.1, the paper's); same as --set "
                            "min_foreground=F")
    _add_config_options(build)
    build.add_argument("--video-timeout", type=float, default=None, metavar="SECONDS",
                       help="give up on a video after this many seconds and record it as "
                            "failed (default: no limit)")
    build.add_argument("--max-memory", type=int, default=None, metavar="MB",
                       help="address space of each worker process; a video that needs more "
                            "is recorded as failed (default: no limit; not applied with "
                            "--device cuda, whose driver reserves more address space than "
                            "it uses)")
    build.add_argument("--quiet", action="store_true", help="no progress bar, errors only")

    show = sub.add_parser("show", help="a picture of random samples of a built dataset",
                          description="Render random samples of a dataset that 'fastunlc "
                                      "build' wrote to a PNG: each frame with its soft mask "
                                      "(red tint, foreground outlined in green) beside its "
                                      "training trimap (green foreground, yellow ignored by "
                                      "the loss, background as it is).")
    show.add_argument("dataset", metavar="DATASET", help="dataset folder or URL")
    show.add_argument("--out", type=Path, default=None, metavar="PNG",
                      help="picture to write (default: DATASET/preview.png for a local "
                           "dataset, ./preview.png for one at a URL)")
    show.add_argument("--count", type=int, default=16, metavar="N",
                      help="samples to show (default 16)")
    show.add_argument("--seed", type=int, default=0, help="which samples (default 0)")
    show.add_argument("--quiet", action="store_true", help="errors only")

    upgrade = sub.add_parser("upgrade", help="bring a dataset of an older format up to date",
                             description="Rewrite, shard by shard and in place, a dataset "
                                         "that an older fastunlc built, adding what training "
                                         "reads (each sample's object boxes in the manifest "
                                         "and KEY.json, and KEY.mask.jpg), computed from the "
                                         "stored masks: the result is the dataset a build "
                                         "with this version writes. Resumable: rerun after "
                                         "an interruption.")
    upgrade.add_argument("dataset", metavar="DATASET", help="dataset folder (local)")
    upgrade.add_argument("--quiet", action="store_true", help="no progress bar, errors only")

    demo = sub.add_parser("demo", help="the whole chain on a generated clip: try this first",
                          description="Generate a short synthetic clip (a moving object over a "
                                      "panning textured scene) and run 'fastunlc segment', "
                                      "'fastunlc build' and 'fastunlc show' on it with the "
                                      "reference defaults. Rerunning on the same folder "
                                      "replaces the masks and keeps the built dataset.")
    demo.add_argument("--out", type=Path, default=Path("fastunlc-demo"), metavar="DIR",
                      help="folder for the clip, masks, dataset and picture (default: "
                           "./fastunlc-demo, created)")
    _add_device_option(demo)
    demo.add_argument("--quiet", action="store_true", help="errors only")
    return parser


def _add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="where the kernels run: cpu (default) or cuda, which keeps each "
                             "shot on the GPU (needs an NVIDIA GPU and fastunlc[gpu]); same as "
                             "--set device=...")


def _unavailable_backend(config: UNLCConfig) -> str | None:
    """The one-line reason ``config.device`` cannot run on this machine, or None."""
    from .backend import kernels
    from .errors import BackendUnavailable

    try:
        kernels(config.device)
    except BackendUnavailable as err:
        return str(err)
    return None


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=tuple(PRESETS), default="reference",
                        help="starting parameters: reference (the original uNLC's, default) "
                             "or fast (CPU: the c2f flow with fewer iterations in float32, "
                             "3.4x less flow time; on a GPU use --flow c2f-fast; see "
                             "'parameters' below)")
    parser.add_argument("--config", type=Path, default=None, metavar="FILE",
                        help="take the uNLC parameters from a report.json, build.json or "
                             "JSON object of fields (see 'parameters' below)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        dest="settings",
                        help="set one parameter, e.g. --set n_segments=800 (repeatable; "
                             "applied after --config and the shortcut options)")


class ConfigError(ValueError):
    """--config or --set cannot be used; the message is one line for ``error: ...``."""


def _config_file(path: Path) -> dict:
    """The config object of a report.json, build.json or bare JSON config ``path``."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"--config {path}: {err.strerror or err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"--config {path}: not JSON ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("config"), dict):  # report.json
        data = data["config"]
    elif isinstance(data, dict) and isinstance(data.get("options"), dict):  # build.json
        data = data["options"].get("config")
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a JSON object of config fields, a "
                          "report.json or a build.json")
    return data


def _make_config(args: argparse.Namespace, **shortcuts: object) -> UNLCConfig:
    """The run's config: --preset, then --config's file, the shortcut options given, --set.

    ``shortcuts`` are field values of options like ``--flow``; None means not given.
    Raises ConfigError with a one-line message naming the file or the field.
    """
    values: dict = dict(PRESETS[args.preset])
    if args.config is not None:
        values.update(_config_file(args.config))
        try:
            UNLCConfig.from_dict(values)
        except ValueError as err:
            raise ConfigError(f"--config {args.config}: {err}") from None
    values.update({name: value for name, value in shortcuts.items() if value is not None})
    for setting in args.settings:
        name, sep, text = setting.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--set {setting!r}: expected NAME=VALUE, e.g. n_segments=800")
        try:
            values[name] = UNLCConfig.parse_value(name, text.strip())
        except ValueError as err:
            raise ConfigError(f"--set {setting}: {err}") from None
    try:
        return UNLCConfig.from_dict(values)
    except ValueError as err:
        raise ConfigError(str(err)) from None


_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _byte_size(text: str) -> int:
    """``"512MB"``, ``"1.5GiB"`` or ``"1000000"`` as a count of bytes (at least 1)."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match and _UNITS.get(match.group(2).lower())
    if not unit:
        raise argparse.ArgumentTypeError(f"expected a size such as 512MB or 1GiB, got {text!r}")
    size = int(float(match.group(1)) * unit)
    if size < 1:
        raise argparse.ArgumentTypeError(f"expected a size of at least 1 byte, got {text!r}")
    return size


def _json_object(text: str) -> dict:
    """A JSON object given on the command line."""
    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not JSON ({err})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _frame_range(text: str) -> tuple[int, int]:
    """``"5..10"`` or ``"7"`` as a closed range of frame counts."""
    low, _, high = text.partition("..")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A..B or N, got {text!r}") from None
    if not 1 <= lo <= hi:
        raise argparse.ArgumentTypeError(f"expected 1 <= A <= B, got {text!r}")
    return lo, hi


def _segment_one(path: str, name: str, args: argparse.Namespace, config: UNLCConfig) -> Path:
    from tqdm import tqdm

    from . import pipeline
    from .output import ResultWriter, contact_sheet

    timer = pipeline.StageTimer()
    plan = pipeline.SourcePlan()
    began = time.perf_counter()
    bar = None

    def on_stage(stage: str) -> None:
        nonlocal bar
        if args.quiet:
            return
        if bar is None and plan.shots:
            from .shots import shot_frames

            total = sum(len(f) for s, e in plan.shots if (f := shot_frames(s, e, config))
                        is not None)
            bar = tqdm(total=total, desc=name, unit="frame", leave=True, dynamic_ncols=True)
        if bar is not None:
            bar.set_postfix_str(stage)
        else:
            print(f"{name}: {stage}", file=sys.stderr)

    writer = None
    try:
        results = pipeline.iter_segment(path, config, start=args.start, max_frames=args.max_frames,
                                        timer=timer, plan=plan, on_stage=on_stage,
                                        previews_per_shot=0 if args.no_preview else 4)
        shots, tiles = [], []
        for shot in results:
            if writer is None:
                args.out.mkdir(parents=True, exist_ok=True)
                writer = ResultWriter(args.out, name)
            with timer("write"):
                for k, index in enumerate(shot.frame_indices):
                    writer.write_mask(int(index), shot.source_mask(k))
            tiles += [(f"frame {i}", tile) for i, tile in shot.previews]
            shots.append(shot.summary())
            if bar is not None:
                bar.update(len(shot.frame_indices))
        if bar is not None:
            bar.close()
        processed = [i for s in shots for i in s["frames"]]
        info = plan.info
        report = {
            "input": str(path),
            "name": name,
            "fastunlc_version": __version__,
            "source": {
                "kind": info.kind, "width": info.width, "height": info.height,
                "fps": info.fps, "frame_count_claimed": info.frame_count,
                "first_frame": plan.first_frame, "frames_read": plan.frames_read,
                "decode_note": plan.decode_note,
            },
            "working_size": {"width": plan.working_size[1], "height": plan.working_size[0]},
            "flow": config.flow,
            "shots": shots,
            "processed_frames": processed,
            "seconds": {k: round(v, 3) for k, v in timer.seconds.items()}
            | {"total": round(time.perf_counter() - began, 3)},
            "seconds_per_processed_frame": round((time.perf_counter() - began)
                                                 / max(1, len(processed)), 4),
            "peak_memory_mb": round(pipeline.peak_memory_mb(), 1),
            "config": config.to_dict(),
        }
        if not processed:
            report["note"] = "no shot had at least min_shot frames: no masks were written"
        if tiles and not args.no_preview:
            writer.write_preview(contact_sheet(tiles))
        writer.write_report(report)
        return writer.commit()
    except BaseException:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.discard()
        raise


def _run_segment(args: argparse.Namespace) -> int:
    try:
        config = _make_config(args, flow=args.flow, device=args.device)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if (reason := _unavailable_backend(config)) is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    from .output import unique_names

    failures = 0
    names = unique_names(args.inputs)
    for path, name in zip(args.inputs, names, strict=True):
        try:
            final = _segment_one(path, name, args, config)
        except FastUNLCError as err:
            failures += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        except OSError as err:  # disk full, permissions: the user's to fix
            failures += 1
            print(f"error: {path}: {err.strerror or err}", file=sys.stderr)
            continue
        except Exception as err:
            failures += 1
            print(f"error: {path}: internal error ({type(err).__name__}: {err}); "
                  "rerun with --debug for the traceback", file=sys.stderr)
            if args.debug:
                traceback.print_exc()
            continue
        if not args.quiet:
            print(f"{path}: masks in {final}", file=sys.stderr)
    if failures and len(args.inputs) > 1:
        print(f"{failures} of {len(args.inputs)} inputs failed", file=sys.stderr)
    return 1 if failures else 0


def _run_build(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from tqdm import tqdm

    from .build import BuildOptions, Limits, Resources, build_dataset
    from .build.options import SHARD_BYTES
    from .storage import Storage, is_url

    if args.workers < 1 or (args.videos_per_shard is not None and args.videos_per_shard < 1):
        parser.error("--workers and --videos-per-shard must be >= 1")
    if args.cpus_per_video <= 0 or args.gpus_per_video <= 0:
        parser.error("--cpus-per-video and --gpus-per-video must be > 0")
    if args.max_frames is not None and args.max_frames < 2:
        parser.error("--max-frames must be >= 2")
    if (args.video_timeout is not None and args.video_timeout <= 0) or (
            args.max_memory is not None and args.max_memory < 256):
        parser.error("--video-timeout must be > 0 and --max-memory at least 256 MB")
    try:
        config = _make_config(args, flow=args.flow, device=args.device,
                              min_foreground=args.min_foreground)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # A Ray cluster's GPUs are on its workers, not necessarily here.
    if args.engine == "local" and (reason := _unavailable_backend(config)) is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    options = BuildOptions(config, args.frames_per_shot, args.seed, args.videos_per_shard,
                           args.max_frames, args.shard_size or SHARD_BYTES)
    remote = is_url(args.out)
    try:
        out = Storage(args.out, args.storage_options)
        out.check_writable()
    except FastUNLCError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    # An object store cannot append: the run's log goes to a local file, uploaded at the end
    # after the earlier runs' log.
    log_path = (Path(tempfile.mkdtemp(prefix="fastunlc-log-")) / "build.log" if remote
                else Path(out.path("build.log")))
    log = logging.FileHandler(log_path)
    log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.setLevel(logging.INFO)
    logger.addHandler(log)
    logger.setLevel(logging.INFO)
    bar = None

    def on_plan(todo: int, done: int) -> None:
        nonlocal bar
        if done and not args.quiet:
            print(f"{args.out}: resuming, {done} videos already built", file=sys.stderr)
        if not args.quiet:
            bar = tqdm(total=todo, unit="video", desc="build", dynamic_ncols=True)

    failed = 0

    def on_video(video: str, status: str) -> None:
        nonlocal failed
        failed += status == "failed"
        if bar is not None:
            bar.set_postfix_str(f"{failed} failed")
            bar.update(1)

    try:
        # --workers is the local engine's, --address and --cpus-per-video the Ray engine's.
        if args.engine == "ray":
            resources = Resources(cpus=args.cpus_per_video,
                                  gpus=args.gpus_per_video if config.device == "cuda" else 0)
            engine_options: dict[str, object] = {"address": args.address}
        else:
            resources, engine_options = Resources(), {"workers": args.workers}
        stats = build_dataset(args.inputs, out, options, engine=args.engine,
                              engine_options=engine_options, resources=resources,
                              limits=Limits(args.video_timeout, args.max_memory),
                              storage_options=args.storage_options, on_video=on_video,
                              on_plan=on_plan)
    except FastUNLCError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # disk full, permissions: nothing half-written is left
        print(f"error: {args.out}: {getattr(err, 'strerror', None) or err}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
        logger.removeHandler(log)
        log.close()
        if remote:
            _upload_log(out, log_path)
    if args.quiet:
        return 0
    outcomes = stats["outcomes"]
    run = stats["this_run"]
    io = run["storage"]
    print(f"{args.out}: {stats['samples']} samples from {stats['videos']} videos in "
          f"{stats['shards']} shards ({outcomes['ok']} ok, {outcomes['empty']} without a kept "
          f"frame, {outcomes['failed'] + outcomes['missing']} failed: see failures.jsonl); "
          f"this run {run['videos']} videos in {run['seconds']:.1f} s, "
          f"{run['frames_per_second']:.2f} frames/s, {io['bytes_read'] / 1e6:.1f} MB read, "
          f"{io['bytes_written'] / 1e6:.1f} MB written, {io['requests']} storage requests",
          file=sys.stderr)
    return 0


def _upload_log(out, log_path: Path) -> None:
    """Append this run's log (a local file) to the dataset's build.log at a URL."""
    try:
        earlier = out.read("build.log") if out.is_file("build.log") else b""
        out.write("build.log", earlier + log_path.read_bytes())
    except (FastUNLCError, OSError) as err:
        print(f"warning: {out.where('build.log')}: log not uploaded ({err}); it is at "
              f"{log_path}", file=sys.stderr)
        return
    log_path.unlink()
    log_path.parent.rmdir()


def _run_show(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .dataset import PseudoGTDataset, preview
    from .files import atomic_write, encode_png

    if args.count < 1:
        parser.error("--count must be >= 1")
    from .storage import is_url

    out = args.out or (Path("preview.png") if is_url(args.dataset)
                       else Path(args.dataset) / "preview.png")
    try:
        data = PseudoGTDataset(args.dataset)
        atomic_write(out, encode_png(preview(data, args.count, args.seed)))
    except (FastUNLCError, FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {out}: {err.strerror or err}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"{out}: {min(args.count, len(data))} of {len(data)} samples", file=sys.stderr)
    return 0


def _run_upgrade(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .build.upgrade import upgrade_dataset

    bar = None

    def on_shard(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and not args.quiet:
            bar = tqdm(total=total, unit="shard", desc="upgrade", dynamic_ncols=True)
        if bar is not None:
            bar.update(1)

    try:
        summary = upgrade_dataset(args.dataset, on_shard)
    except FastUNLCError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {args.dataset}: {err.strerror or err}", file=sys.stderr)
        return 1
    finally:
        if bar is not None:
            bar.close()
    if not args.quiet:
        from .dataset import FORMAT

        print(f"{args.dataset}: format {summary['from_format']} -> {FORMAT}; "
              f"{summary['upgraded']} of {summary['shards']} shards rewritten "
              f"({summary['samples']} samples)", file=sys.stderr)
    return 0


def _run_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """segment -> build -> show on the demo's generated clip, into ``args.out``."""
    from .demo import CLIP_FRAMES, write_clip

    out: Path = args.out

    def say(text: str) -> None:
        if not args.quiet:
            print(text, file=sys.stderr)

    quiet = ["--quiet"] if args.quiet else []
    flags = quiet + (["--device", args.device] if args.device else [])
    try:
        out.mkdir(parents=True, exist_ok=True)
        say(f"demo 1/4: generating a {CLIP_FRAMES}-frame synthetic clip")
        clip = write_clip(out / "clip.mp4")
    except OSError as err:
        print(f"error: {out}: {err.strerror or err}", file=sys.stderr)
        return 1
    say(f"demo 2/4: fastunlc segment {clip}")
    status = _run_segment(parser.parse_args(
        ["segment", str(clip), "--out", str(out / "masks"), *flags]))
    if not status:
        say(f"demo 3/4: fastunlc build {clip}")
        status = _run_build(parser.parse_args(
            ["build", str(clip), "--out", str(out / "dataset"), *flags]), parser)
    if not status:
        say(f"demo 4/4: fastunlc show {out / 'dataset'}")
        status = _run_show(parser.parse_args(["show", str(out / "dataset"), *quiet]), parser)
    if not status:
        say(f"\nmasks:   {out / 'masks' / clip.stem}/masks/ (and report.json, preview.png)\n"
            f"dataset: {out / 'dataset'}/ (open it with fastunlc.dataset.PseudoGTDataset)\n"
            f"picture: {out / 'dataset' / 'preview.png'}")
    return status


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fastunlc`` command; returns the exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    level = logging.ERROR if args.quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s")
    for handler in logging.getLogger().handlers:  # build.log may take more than the terminal
        handler.setLevel(level)
    # Numba's CUDA driver logs each failed driver call (cuInit without a GPU) before it
    # raises; the backend turns the error into one line of its own, so its log stays quiet.
    logging.getLogger("numba").setLevel(logging.CRITICAL)
    try:
        if args.command == "build":
            return _run_build(args, parser)
        if args.command == "show":
            return _run_show(args, parser)
        if args.command == "demo":
            return _run_demo(args, parser)
        if args.command == "upgrade":
            return _run_upgrade(args)
        if args.start < 0 or (args.max_frames is not None and args.max_frames < 1):
            parser.error("--start must be >= 0 and --max-frames >= 1")
        return _run_segment(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
