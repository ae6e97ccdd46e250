"""benchmarks/compare_reference.py and reference_driver.py: their own logic, no original needed.

The original (videoseg + pyflow) is not part of this repository, so the driver is
exercised on a stand-in "reference" written here: a few files with the original's
module and function names, Python 2 print statements and removed library calls, that
return zeros. It checks the shims, the stage accounting, the memory-failure reports and
the command line's refusals; the comparison itself is measured in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def driver():
    return _load("reference_driver")


@pytest.fixture(scope="module")
def compare():
    return _load("compare_reference")


# -- scipy.misc.imresize shim --------------------------------------------------------------

def test_imresize_matches_pil_bilinear_and_old_size_rules(driver):
    from PIL import Image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (60, 100, 3), dtype=np.uint8)
    half = driver.imresize(image, 0.5)
    assert half.dtype == np.uint8 and half.shape == (30, 50, 3)
    expected = np.array(Image.fromarray(image).resize((50, 30), Image.BILINEAR))
    np.testing.assert_array_equal(half, expected)
    np.testing.assert_array_equal(driver.imresize(image, 50), half)  # int: percent
    square = driver.imresize(image, (100, 100))  # tuple: (height, width)
    assert square.shape == (100, 100, 3) and square.dtype == np.uint8


def test_imresize_truncates_fractional_sizes_like_old_scipy(driver):
    frame = np.zeros((576, 768, 3), np.uint8)
    scale = 650 / 768
    out = driver.imresize(frame, scale)
    assert out.shape == (int(576 * scale), int(768 * scale), 3)


def test_imresize_known_bilinear_answer(driver):
    # PIL's bilinear upsampling of [0, 255] to 4 pixels: sample centres 0.25, 0.75,
    # 1.25, 1.75 source pixels -> weights (1, 0), (0.75, 0.25), (0.25, 0.75), (0, 1).
    out = driver.imresize(np.array([[0, 255]], np.uint8), (1, 4))
    np.testing.assert_array_equal(out, [[0, 64, 191, 255]])


def test_imresize_bytescales_float_input(driver):
    out = driver.imresize(np.array([[0.0, 0.5], [1.0, 1.0]]), (2, 2), interp="nearest")
    np.testing.assert_array_equal(out, [[0, 128], [255, 255]])
    with pytest.raises(ValueError, match="handles"):
        driver.imresize(np.zeros((4, 4, 2), np.uint8), 0.5)


# -- print-statement rewrite --------------------------------------------------------------

PY2_SAMPLE = textwrap.dedent('''\
    def f(n, verbose=True):
        if verbose:
            print "Precomputing scatters..."
        print "n =", n  # a comment
        print
        print "no newline",
        if n: print "one-liner"
        print("already a call")
        text = "print 'inside a string'"
        print ("total:",
               n)
        return text
    ''')

PY3_EXPECTED = textwrap.dedent('''\
    def f(n, verbose=True):
        if verbose:
            print("Precomputing scatters...")
        print("n =", n)  # a comment
        print()
        print("no newline", end=" ")
        if n: print("one-liner")
        print("already a call")
        text = "print 'inside a string'"
        print ("total:",
               n)
        return text
    ''')


def test_print_rewrite_known_answer(driver, capsys):
    rewritten = driver.rewrite_print_statements(PY2_SAMPLE)
    assert rewritten == PY3_EXPECTED
    namespace: dict = {}
    exec(compile(rewritten, "<sample>", "exec"), namespace)
    assert namespace["f"](3) == "print 'inside a string'"
    assert capsys.readouterr().out == ("Precomputing scatters...\nn = 3\n\nno newline one-liner\n"
                                       "already a call\ntotal: 3\n")


def test_print_rewrite_leaves_python3_files_and_refuses_redirects(driver):
    modern = "from __future__ import print_function\nprint('x')\n"
    assert driver.rewrite_print_statements(modern) == modern
    with pytest.raises(ValueError, match="line 1"):
        driver.rewrite_print_statements("print >>f, 'x'\n")


def test_finder_imports_python2_module_without_writing_bytecode(driver, tmp_path, capsys):
    (tmp_path / "py2mod_cmpref.py").write_text("def run():\n    print 'from py2'\n    return 7\n")
    finder = driver.Py2PrintFinder(tmp_path)
    sys.path.insert(0, str(tmp_path))
    sys.meta_path.insert(0, finder)
    try:
        import py2mod_cmpref
        assert py2mod_cmpref.run() == 7
    finally:
        sys.meta_path.remove(finder)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("py2mod_cmpref", None)
    assert capsys.readouterr().out == "from py2\n"
    assert not (tmp_path / "__pycache__").exists()


# -- scikit-image keyword shims -----------------------------------------------------------

def test_hog_shim_renames_visualise_and_pins_l1(driver):
    from skimage.feature import hog

    patch = np.random.default_rng(1).random((15, 15))
    old_style = driver._hog_compat(hog)(patch, orientations=6, pixels_per_cell=(5, 5),
                                         cells_per_block=(3, 3), visualise=False)
    np.testing.assert_array_equal(old_style, hog(patch, orientations=6, pixels_per_cell=(5, 5),
                                                 cells_per_block=(3, 3), block_norm="L1"))
    assert not np.allclose(old_style, hog(patch, orientations=6, pixels_per_cell=(5, 5),
                                          cells_per_block=(3, 3)))  # today's L2-Hys differs
    seen = {}
    driver._hog_compat(lambda image, **kw: seen.update(kw))(patch, block_norm="L2")
    assert seen == {"block_norm": "L2"}  # an explicit choice is kept


def test_slic_shim_starts_labels_at_zero(driver):
    from skimage.segmentation import slic

    image = np.zeros((40, 40, 3))
    image[:, 20:] = 1.0
    labels = driver._slic_compat(slic)(image, n_segments=4, sigma=0)
    np.testing.assert_array_equal(np.unique(labels), [0, 1, 2, 3])  # today's default: 1..4


# -- the driver on a stand-in original ----------------------------------------------------

FAKE_NLC = '''\
"""Stand-in with the original's function names; returns zeros."""
import os
import signal
import numpy as np
from scipy.misc import imresize
from skimage.feature import hog
from skimage.segmentation import slic
from mr_saliency import MR
import pyflow


def superpixels(im, maxsp=200, vis=False, redirect=False):
    return np.zeros(im.shape[:3], dtype=np.int)


def compute_descriptor(im, sp, redirect=False):
    small = imresize(im[0], (8, 8))
    return np.zeros((3 * len(im), small.shape[0])), np.arange(len(im)) * 3 + 2


def compute_nn(regions, frameEnd, F=15, L=4, redirect=False):
    failure = os.environ.get("FAKE_NLC_FAIL")
    if failure == "memory":
        raise MemoryError("Unable to allocate 9.00 GiB")
    if failure == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    return np.zeros((len(regions), len(regions)), dtype=np.float)


def normalize_nn(transM, sigma=1):
    return transM


def compute_saliency(imSeq, redirect=False):
    for i in range(len(imSeq) - 1):
        pyflow.coarse2fine_flow(imSeq[i] / 255., imSeq[i + 1] / 255., 0.012, 0.75, 20, 7, 1, 30, 0)
    return np.zeros(imSeq.shape[:3])


def remove_low_energy_blobs(maskSeq, binTh, relSize=0.6, relEnergy=None, target=None):
    return maskSeq


def salScore2votes(salImSeq, sp):
    return np.zeros(sp.max() + 1)


def consensus_vote(votes, transM, frameEnd, iters):
    return votes


def nlc(imSeq, maxsp, iters, outdir, suffix="", clearBlobs=False, binTh=None,
        relEnergy=None, redirect=False, doload=False, dosave=None):
    sp = superpixels(imSeq, maxsp)
    regions, frameEnd = compute_descriptor(imSeq, sp)
    transM = normalize_nn(compute_nn(regions, frameEnd), sigma=np.sqrt(0.1))
    saliency = compute_saliency(imSeq)
    consensus_vote(salScore2votes(saliency, sp), transM, frameEnd, iters)
    return remove_low_energy_blobs(saliency + 0.5, binTh) if clearBlobs else saliency
'''

FAKE_VID2SHOTS = '''\
import numpy as np
from kts.cpd_auto import cpd_auto


def vid2shots(imSeq, maxShots=5, vmax=0.6, colBins=40):
    cps, _ = cpd_auto(np.eye(len(imSeq)), maxShots - 1, vmax)
    return np.concatenate(([0], cps)).astype(int)
'''

FAKE_CPD_AUTO = '''\
from cpd_nonlin import cpd_nonlin


def cpd_auto(K, ncp, vmax):
    return cpd_nonlin(K, ncp)
'''

FAKE_CPD_NONLIN = '''\
import numpy as np


def cpd_nonlin(K, ncp):
    print "Precomputing scatters..."
    return np.array([12]), None
'''

FAKE_PYFLOW = '''\
import numpy as np


def coarse2fine_flow(im1, im2, *options):
    return np.zeros(im1.shape[:2]), np.zeros(im1.shape[:2]), im2
'''


@pytest.fixture
def fake_reference(tmp_path):
    root = tmp_path / "videoseg"
    files = {"src/nlc.py": FAKE_NLC, "src/vid2shots.py": FAKE_VID2SHOTS,
             "lib/__init__.py": "", "lib/kts/__init__.py": "", "lib/kts/cpd_auto.py": FAKE_CPD_AUTO,
             "lib/kts/cpd_nonlin.py": FAKE_CPD_NONLIN}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    pyflow = tmp_path / "pyflow"
    pyflow.mkdir()
    (pyflow / "pyflow.py").write_text(FAKE_PYFLOW)
    frames = tmp_path / "frames.npy"
    np.save(frames, np.random.default_rng(2).integers(0, 256, (20, 24, 32, 3), dtype=np.uint8))
    return root, pyflow, frames


def test_driver_check_imports_the_stand_in_through_the_shims(fake_reference):
    root, pyflow, _ = fake_reference
    command = [sys.executable, str(BENCHMARKS / "reference_driver.py"), "--reference", str(root),
               "--check"]
    assert subprocess.run([*command, "--pyflow", str(pyflow)], capture_output=True).returncode == 0
    missing = subprocess.run(command, capture_output=True, text=True)
    assert missing.returncode == 1 and "pyflow" in missing.stdout


def test_run_original_times_stages_and_saves_masks(compare, fake_reference, tmp_path):
    root, pyflow, frames = fake_reference
    work = tmp_path / "work"
    work.mkdir()
    result = compare.run_original(root, pyflow, frames, work, memory_limit_gb=None, timeout=60)
    assert result["status"] == "ok", result.get("message")
    assert result["shots"] == [[0, 12], [12, 20]]  # the 8-frame shot is below min_shot 10
    assert result["frame_indices"] == list(range(12))
    assert result["flow_pairs"] == 11 and result["calls"]["nlc"] == 1
    assert set(compare.STAGES) <= set(result["stages"])
    assert result["stages"]["graph"] == pytest.approx(
        result["stages"]["graph_knn"] + result["stages"]["graph_normalise"], abs=2e-4)
    assert all(v >= 0 for v in result["stages"].values())
    assert result["dense_matrix"] == {"k": 36, "gib": 0.0}
    masks = np.load(result["masks_file"])
    assert masks.shape == (12, 24, 32) and masks.dtype == np.float32
    np.testing.assert_array_equal(masks, 0.5)
    assert result["peak_rss_mb"] > 10


@pytest.mark.parametrize(("failure", "status", "says"), [
    ("memory", "memory_error", "out of memory (MemoryError) in graph_knn"),
    ("kill", "killed", "killed for memory at"),
])
def test_run_original_reports_memory_failures(compare, fake_reference, tmp_path, monkeypatch,
                                              failure, status, says):
    root, pyflow, frames = fake_reference
    monkeypatch.setenv("FAKE_NLC_FAIL", failure)
    work = tmp_path / "work"
    work.mkdir()
    result = compare.run_original(root, pyflow, frames, work, memory_limit_gb=None, timeout=60)
    assert result["status"] == status
    assert says in result["message"] and "(k = 36)" in result["message"]
    assert "graph_knn" in result["message"]
    if failure == "memory":  # the driver survived and reported the stages it finished
        assert result["stages"]["superpixels"] >= 0 and result["stages"]["graph_knn"] >= 0


# -- command line ------------------------------------------------------------------------

def test_no_reference_explains_and_fails_with_one_line(compare, capsys):
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--video", "clip.mp4"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "git clone https://github.com/pathak22/videoseg.git" in "\n".join(err)
    assert err[-1].endswith("error: --reference PATH (a checkout of pathak22/videoseg) is required")


def test_not_a_checkout_fails_with_one_line(tmp_path):
    done = subprocess.run([sys.executable, str(BENCHMARKS / "compare_reference.py"),
                           "--reference", str(tmp_path), "--video", "clip.mp4"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert "is not a videoseg checkout (no src/nlc.py, src/vid2shots.py, lib/kts/cpd_auto.py)" \
        in last


def test_unimportable_original_fails_with_the_reason(compare, fake_reference, capsys):
    root, _, _ = fake_reference  # no --pyflow: pyflow cannot be imported
    with pytest.raises(SystemExit) as exit_info:
        compare.main(["--reference", str(root), "--video", "clip.mp4"])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "the original cannot be imported" in last and "pyflow" in last


def test_per_clip_values_must_match_the_videos(compare, fake_reference, capsys):
    root, pyflow, _ = fake_reference
    with pytest.raises(SystemExit):
        compare.main(["--reference", str(root), "--pyflow", str(pyflow), "--video", "a.mp4",
                      "--video", "b.mp4", "--start", "0", "1", "2"])
    assert "--start takes one value or one per --video (2), got 3" in capsys.readouterr().err


# -- agreement helpers and report ---------------------------------------------------------

def test_iou_and_pearson_known_answers(compare):
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert compare.iou(a, b) == 1.0
    a[:2] = True   # 8 pixels
    b[1:3] = True  # 8 pixels, 4 shared
    assert compare.iou(a, b) == pytest.approx(4 / 12)
    x = np.random.default_rng(3).random((3, 5, 5))
    assert compare.pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert compare.pearson(x, -x) == pytest.approx(-1.0)
    assert compare.pearson(x, np.ones_like(x)) is None
    with pytest.raises(ValueError, match="shape"):
        compare.iou(a, b[:2])


def test_mask_agreement_counts_foreground_frames(compare):
    original = np.zeros((3, 4, 4))
    fast = np.zeros((3, 4, 4))
    original[0, :2] = 0.9            # frame 0: 8 px foreground
    fast[0, :1] = 0.8                # ... fastunlc finds 4 of them: IoU 0.5
    original[1, :, :2] = 1.0         # frame 1: identical
    fast[1, :, :2] = 0.95
    fast[2, 0, 0] = 0.75             # frame 2: only fastunlc has foreground
    got = compare.mask_agreement(original, fast)
    assert got["frames"] == 3 and got["foreground_frames"] == 2
    assert got["mean_iou"] == pytest.approx((0.5 + 1.0) / 2)
    assert got["fast_only_frames"] == 1
    assert got["pearson"] == pytest.approx(compare.pearson(original, fast))
    empty = compare.mask_agreement(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)))
    assert empty["mean_iou"] is None and empty["pearson"] is None


def _side(stages, pairs, frames, peak, status="ok", **extra):
    side = {"status": status, "stages": stages, "flow_pairs": pairs, "peak_rss_mb": peak,
            "frame_indices": list(range(frames)), "process_wall_s": 1.0, **extra}
    side["seconds_per_frame"] = sum(stages.get(s, 0) for s in
                                    ("shots", "flow", "saliency", "superpixels", "descriptors",
                                     "graph", "voting")) / frames if status == "ok" else None
    return side


def test_markdown_reports_ratios_per_pair_and_failures(compare):
    original = _side({"shots": 0.3, "flow": 22.8, "saliency": 0.7, "superpixels": 11.5,
                      "descriptors": 9.0, "graph_knn": 10.4, "graph_normalise": 5.0,
                      "graph": 15.4, "voting": 7.5}, 228, 40, 3600)
    fast = _side({"shots": 0.3, "flow": 2.28, "saliency": 0.2, "superpixels": 1.0,
                  "descriptors": 0.09, "graph": 0.3, "voting": 0.15}, 228, 40, 700)
    row = {"clip": "vtest.avi 0-39", "working_size": [650, 487], "frames": 40,
           "original": original, "fastunlc": fast,
           "agreement": {"frames": 40, "foreground_frames": 38, "mean_iou": 0.9,
                         "fast_only_frames": 1, "pearson": 0.95},
           "load_before_original": (1.0, 1.2, 1.3), "load_before_fastunlc": (1.1, 1.2, 1.3)}
    text = compare.markdown([row])
    assert "| flow (c2f) | 22.80 | 2.280 | 10.0x |" in text
    assert "15.40 (10.40 + 5.00)" in text
    assert "| flow s per pair (pairs) | 0.100 (228) | 0.0100 (228) | 10.0x |" in text
    assert "0.900 (38 of 40)" in text and "where the original finds foreground" in text
    failed = dict(row, original=_side({}, 0, 40, 23000, status="killed",
                                      message="killed for memory at 22.5 GB"))
    failed.pop("agreement")
    text = compare.markdown([failed])
    assert "- original: killed: killed for memory at 22.5 GB" in text
    assert "| vtest.avi 0-39 | 650x487 | 40 | killed |" in text


def test_stage_agreement_is_zero_on_itself_and_names_the_first_differing_stage():
    from fastunlc import descriptors, flow, saliency, superpixels
    from fastunlc.config import REFERENCE
    from fastunlc.reference import saliency as reference_saliency
    from fastunlc.synthetic import make_clip

    compare = _load("compare_reference")
    frames = make_clip(6, (64, 64), camera="pan", seed=1).frames
    n, h, w, _ = frames.shape
    pairs = flow.flow_pairs(n, REFERENCE.flow_radius)
    flows = flow.optical_flow(flow.resize_for_flow(frames, REFERENCE.flow_size), pairs)
    motion = saliency.motion_saliency(flows, pairs, n, REFERENCE)
    labels, counts = superpixels.slic_superpixels_batch(frames, REFERENCE)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    record = {  # what reference_driver.py --record would hold if the original were fastunlc
        "flow_u": flows[..., 0].astype(np.float64), "flow_v": flows[..., 1].astype(np.float64),
        "saliency": reference_saliency.upsample_saliency(motion.saliency, (h, w)),
        "superpixels": labels,
        "descriptors": np.concatenate([descriptors.superpixel_descriptors(
            frames[i], labels[i], int(counts[i])) for i in range(n)]),
        "votes_initial": saliency.superpixel_saliency(motion.saliency, labels, offsets)[0][None],
    }
    same = compare.stage_agreement(frames, record)
    assert same["flow_max_px"] == 0 and same["labels_equal"] == 1.0
    assert same["saliency_max"] < 1e-12 and same["descriptors_max"] < 1e-6
    assert same["votes_initial_max"] < 1e-12

    record["flow_u"] = record["flow_u"] + 0.5  # a flow that differs by half a pixel
    record["superpixels"] = np.roll(labels, 1, axis=2)
    moved = compare.stage_agreement(frames, record)
    assert moved["flow_max_px"] == pytest.approx(0.5) and moved["labels_equal"] < 1.0
    assert moved["descriptors_max"] is None  # no frame keeps its labels: rows not compared
