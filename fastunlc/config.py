"""One typed configuration for the whole uNLC pipeline.

Every default is the reference's parameter (``shared/unlc-spec.md``; the
``videoseg`` repository's ``run_full.py`` and ``nlc.py``). Fields are grouped by
pipeline stage in the order the stages run. Where fastunlc adds a knob the
reference does not have, the field's comment says so and what the reference does.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from numbers import Integral, Real
from typing import Any, Literal, get_args

from .backend import DEVICES, Device, check_device

FlowMethod = Literal["c2f", "dis", "c2f-fast"]
BlockNorm = Literal["L1", "L1-sqrt", "L2", "L2-Hys"]
FlowPrecision = Literal["float64", "float32"]


@dataclass(frozen=True)
class UNLCConfig:
    """Parameters of every stage; defaults reproduce reference uNLC.

    Units: sizes in pixels, lengths in frames, thresholds in the units of the
    quantity they compare (flow magnitude in pixels of the 100x100 flow frame,
    directions in radians, saliency and masks in [0, 1]).
    """

    # -- where the kernels run ---------------------------------------------------------
    device: Device = "cpu"
    """Backend of the compiled kernels (:mod:`fastunlc.backend`): ``cpu``, or ``cuda`` to keep
    each shot on the GPU from frames to masks (:mod:`fastunlc.resident`)."""

    # -- 0. input ------------------------------------------------------------------
    max_side: int = 650
    """Frames are shrunk (never enlarged) so that the longer side is at most this."""
    min_side: int = 32
    """fastunlc's floor: smaller frames cannot hold a 15x15 descriptor patch and SLIC."""

    # -- 1. shots (Kernel Temporal Segmentation) --------------------------------------
    max_shots: int = 5
    kts_vmax: float = 0.6
    shot_hist_bins: int = 40
    min_shot: int = 10
    """Shots shorter than this many frames are skipped."""
    max_shot: int = 110
    """Longer shots are subsampled with step ``L // max_shot + 1``."""

    # -- 2. optical flow and motion saliency -----------------------------------------
    flow: FlowMethod = "c2f"
    """``c2f``: Brox/Ce Liu coarse-to-fine variational flow (reference); ``dis``: OpenCV DIS
    (on the CPU, also with ``device="cuda"``); ``c2f-fast``: the CUDA backend's fast mode,
    c2f with fewer iterations (``device="cuda"`` only)."""
    flow_size: int = 100
    """Flow is computed on frames resized to ``flow_size x flow_size`` (aspect not kept)."""
    flow_radius: int = 3
    """Frame i is paired with i+j for j in [-flow_radius, flow_radius] without 0."""
    c2f_alpha: float = 0.012
    c2f_ratio: float = 0.75
    c2f_min_width: int = 20
    c2f_outer_iterations: int = 7
    c2f_inner_iterations: int = 1
    c2f_sor_iterations: int = 30
    c2f_precision: FlowPrecision = "float64"
    """fastunlc addition: arithmetic of the CPU ``c2f`` solver. ``float64`` is the
    reference's; ``float32`` solves twice the pairs per SIMD register (about 0.7 of the
    time per pair) and moves the flow by its rounding (see ``tests/test_flow.py`` for the
    measured distance). The CUDA flow is float64 only."""
    dis_size: int = 0
    """fastunlc addition (``flow="dis"`` only): DIS runs on the flow frames enlarged to
    ``dis_size x dis_size`` (bilinear) and its flow is shrunk back to ``flow_size`` (area
    average, vectors rescaled). 0 runs it at ``flow_size``. Finer patches on the enlarged
    frames follow small objects' edges more closely; the reference has no DIS."""
    dis_finest_scale: int = 1
    """``flow="dis"``: finest pyramid level DIS computes (0 = full resolution; the MEDIUM
    preset's 1 stops at half resolution and upsamples)."""
    dis_patch_size: int = 8
    """``flow="dis"``: side of DIS's patches in pixels (MEDIUM preset: 8)."""
    dis_patch_stride: int = 3
    """``flow="dis"``: spacing of DIS's patches in pixels, at most ``dis_patch_size``
    (MEDIUM preset: 3)."""
    dis_refinement_alpha: float = 20.0
    """``flow="dis"``: smoothness weight of DIS's variational refinement (MEDIUM preset:
    20); smaller keeps motion edges sharper."""
    dis_refinement_iterations: int = 5
    """``flow="dis"``: variational refinement iterations per level (MEDIUM preset: 5;
    0 turns the refinement off)."""
    static_magnitude: float = 1.0
    """A pair is "static" when the median flow magnitude (pixels) is below this."""
    direction_bins: int = 20
    dominant_direction: float = 0.75
    """A pair is "translating" when its largest direction bin holds more than this share."""
    saliency_patch: int = 5
    """Side of the mean filter applied to each pair's deviation."""
    min_dominant_fraction: float = 0.5
    """Below this fraction of dominant frames the appearance fallback is used."""
    appearance_n_segments: int = 200
    """Appearance fallback (manifold ranking, Yang et al. 2013): SLIC superpixels per
    flow frame, the paper's 200."""
    appearance_compactness: float = 10.0
    """Appearance fallback: SLIC compactness (scikit-image's default)."""
    appearance_alpha: float = 0.99
    """Appearance fallback: manifold-ranking balance in (0, 1), the paper's 0.99."""
    appearance_sigma2: float = 0.1
    """Appearance fallback: edge-weight scale on colour distances normalised to [0, 1]."""
    border_fraction: float = 0.125
    """Saliency within ``int(min(h, w) * border_fraction)`` pixels of the border is zeroed."""
    static_saliency_floor: float = 0.05
    """fastunlc addition: a shot whose peak saliency before normalisation is below
    this is treated as motionless (empty masks, reason in the report). The reference
    normalises any non-zero peak, which turns compression noise of a still video
    into full-strength "foreground". Set 0 for the reference's behaviour."""

    # -- 3. superpixels (SLIC) ----------------------------------------------------------
    n_segments: int = 400
    slic_compactness: float = 10.0
    slic_max_iter: int = 10
    slic_sigma: float = 5.0
    slic_min_size_factor: float = 0.5
    """Connectivity: segments under this x the mean segment size are merged (skimage's)."""
    slic_max_size_factor: float = 3.0
    """Connectivity: the largest size a merged segment may reach, x the mean (skimage's)."""

    # -- 4. descriptors -----------------------------------------------------------------
    patch_size: int = 15
    color_bins: int = 20
    hog_orientations: int = 6
    hog_cell: int = 5
    hog_block_norm: BlockNorm = "L1"
    """L1 is what the reference ran (scikit-image's default then); L2-Hys is today's."""

    # -- 5. neighbour graph ---------------------------------------------------------
    temporal_radius: int = 15
    """Candidates come from frames i - temporal_radius .. i + temporal_radius."""
    neighbours_per_frame: int = 2
    """Each superpixel keeps ``neighbours_per_frame * (2 * temporal_radius + 1)`` neighbours."""
    weight_variance: float = 0.1
    """Edge weight ``exp(-d**2 / weight_variance)``."""

    # -- 6. consensus voting ----------------------------------------------------------
    voting_iterations: int = 50
    voting_rounds: int = 5
    foreground_threshold: float = 0.7
    low_energy_fraction: float = 0.6
    """Between rounds, a blob whose summed mask is below this x its area is suppressed."""
    low_energy_value: float = 0.175
    """... to this value (the reference's ``binTh / 4``)."""
    relative_blob_size: float = 0.6
    """Finally, blobs smaller than this x the largest blob drop to just under the threshold."""
    small_blob_margin: float = 1e-5
    """... namely to ``foreground_threshold - small_blob_margin``."""

    # -- 7. pruning and trimap ----------------------------------------------------------
    min_foreground: float = 0.10
    max_foreground: float = 0.80
    border_band: float = 0.05
    max_border_foreground: float = 0.10
    trimap_background: float = 0.4
    trimap_foreground: float = 0.7

    @property
    def n_neighbours(self) -> int:
        """Neighbours kept per superpixel, ``M`` in the spec (62 by default)."""
        return self.neighbours_per_frame * (2 * self.temporal_radius + 1)

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_field(f.name, getattr(self, f.name))
        check_device(self.device)
        if self.flow == "c2f-fast" and self.device != "cuda":
            raise ValueError("flow 'c2f-fast' is the CUDA backend's fast mode (device "
                             "'cuda'); on the CPU the fast flow is 'dis'")
        if self.c2f_precision != "float64" and self.device == "cuda":
            raise ValueError(f"c2f_precision {self.c2f_precision!r} is the CPU solver's "
                             "option; the CUDA flow runs in float64")
        if self.dis_patch_stride > self.dis_patch_size:
            raise ValueError("dis_patch_stride must be <= dis_patch_size, got "
                             f"{self.dis_patch_stride} and {self.dis_patch_size}")
        if self.voting_iterations % self.voting_rounds:
            raise ValueError("voting_iterations must be a multiple of voting_rounds, got "
                             f"{self.voting_iterations} and {self.voting_rounds}")
        if self.patch_size % self.hog_cell:
            raise ValueError("patch_size must be a multiple of hog_cell, got "
                             f"{self.patch_size} and {self.hog_cell}")
        for low, high in (("min_foreground", "max_foreground"),
                          ("trimap_background", "trimap_foreground"),
                          ("slic_min_size_factor", "slic_max_size_factor")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must be <= {high}, got {getattr(self, low)} and "
                                 f"{getattr(self, high)}")
        if self.small_blob_margin > self.foreground_threshold:
            raise ValueError("small_blob_margin must be <= foreground_threshold, got "
                             f"{self.small_blob_margin} and {self.foreground_threshold}")

    def replace(self, **changes: Any) -> UNLCConfig:
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ValueError(_unknown_message(sorted(unknown)[0]))
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Every field by name, JSON-ready (numbers and strings)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> UNLCConfig:
        """The config a :meth:`to_dict` mapping describes, e.g. a ``report.json``'s ``config``.

        Fields missing from ``mapping`` keep their defaults (a report written before a
        field existed replays with that field's reference value).

        Parameters
        ----------
        mapping : mapping of str to JSON values
            Field names to values: integers for integer fields (``5.0`` is read as 5),
            numbers for real fields, strings for the choices.

        Raises
        ------
        ValueError
            An unknown name (the message suggests the closest valid names), a value of
            the wrong type, or a value out of its field's range.
        """
        if not isinstance(mapping, Mapping):
            raise ValueError(f"a config must be a mapping of field names to values, got "
                             f"{type(mapping).__name__}")
        values = {}
        for name, value in mapping.items():
            if name not in _FIELDS:
                raise ValueError(_unknown_message(str(name)))
            values[name] = _coerce(name, value)
        return cls(**values)

    @staticmethod
    def parse_value(name: str, text: str) -> Any:
        """``text`` (as typed after ``--set NAME=``) as a value of field ``name``.

        Raises ValueError naming the field when ``name`` is unknown or ``text`` does not
        read as the field's type; the range is checked when the config is made.
        """
        if name not in _FIELDS:
            raise ValueError(_unknown_message(name))
        kind = _FIELDS[name][0]
        try:
            if kind == "int":
                return int(text)
            if kind == "real":
                return float(text)
        except ValueError:
            article = "an integer" if kind == "int" else "a number"
            raise ValueError(f"{name} must be {article}, got {text!r}") from None
        return text


# Every field's kind and allowed range: ("int", low) for integers >= low;
# ("real", low, high, low_open, high_open) for finite reals in that interval (None:
# unbounded); ("choice", values). Errors all read "NAME must be ..., got VALUE".
_UNBOUNDED = None
_FIELDS: dict[str, tuple] = {
    "device": ("choice", DEVICES),
    "max_side": ("int", 1),
    "min_side": ("int", 1),
    "max_shots": ("int", 1),
    "kts_vmax": ("real", 0.0, _UNBOUNDED, False, False),
    "shot_hist_bins": ("int", 1),
    # segment_shot needs 2 frames: shorter shots and subsampled ones must keep 2.
    "min_shot": ("int", 2),
    "max_shot": ("int", 2),
    "flow": ("choice", get_args(FlowMethod)),
    # The appearance fallback runs on the flow frames and needs 8 x 8 pixels.
    "flow_size": ("int", 8),
    "flow_radius": ("int", 1),
    "c2f_alpha": ("real", 0.0, _UNBOUNDED, True, False),
    "c2f_ratio": ("real", 0.0, 1.0, True, True),
    "c2f_min_width": ("int", 1),
    "c2f_outer_iterations": ("int", 1),
    "c2f_inner_iterations": ("int", 1),
    "c2f_sor_iterations": ("int", 1),
    "c2f_precision": ("choice", get_args(FlowPrecision)),
    "dis_size": ("int", 0),
    "dis_finest_scale": ("int", 0),
    "dis_patch_size": ("int", 2),
    "dis_patch_stride": ("int", 1),
    "dis_refinement_alpha": ("real", 0.0, _UNBOUNDED, False, False),
    "dis_refinement_iterations": ("int", 0),
    "static_magnitude": ("real", 0.0, _UNBOUNDED, False, False),
    "direction_bins": ("int", 1),
    "dominant_direction": ("real", 0.0, 1.0, False, False),
    "saliency_patch": ("int", 1),
    "min_dominant_fraction": ("real", 0.0, 1.0, False, False),
    "appearance_n_segments": ("int", 1),
    "appearance_compactness": ("real", 0.0, _UNBOUNDED, True, False),
    "appearance_alpha": ("real", 0.0, 1.0, True, True),
    "appearance_sigma2": ("real", 0.0, _UNBOUNDED, True, False),
    # Half the shorter side or more would zero the whole frame.
    "border_fraction": ("real", 0.0, 0.5, False, True),
    "static_saliency_floor": ("real", 0.0, _UNBOUNDED, False, False),
    "n_segments": ("int", 1),
    "slic_compactness": ("real", 0.0, _UNBOUNDED, True, False),
    "slic_max_iter": ("int", 1),
    "slic_sigma": ("real", 0.0, _UNBOUNDED, False, False),
    "slic_min_size_factor": ("real", 0.0, _UNBOUNDED, False, False),
    "slic_max_size_factor": ("real", 0.0, _UNBOUNDED, True, False),
    "patch_size": ("int", 1),
    "color_bins": ("int", 1),
    "hog_orientations": ("int", 1),
    "hog_cell": ("int", 1),
    "hog_block_norm": ("choice", get_args(BlockNorm)),
    "temporal_radius": ("int", 1),
    "neighbours_per_frame": ("int", 1),
    "weight_variance": ("real", 0.0, _UNBOUNDED, True, False),
    "voting_iterations": ("int", 1),
    "voting_rounds": ("int", 1),
    "foreground_threshold": ("real", 0.0, 1.0, False, True),
    "low_energy_fraction": ("real", 0.0, _UNBOUNDED, False, False),
    "low_energy_value": ("real", 0.0, 1.0, False, False),
    "relative_blob_size": ("real", 0.0, 1.0, False, False),
    "small_blob_margin": ("real", 0.0, _UNBOUNDED, False, False),
    "min_foreground": ("real", 0.0, 1.0, False, False),
    "max_foreground": ("real", 0.0, 1.0, False, False),
    "border_band": ("real", 0.0, 0.5, False, False),
    "max_border_foreground": ("real", 0.0, 1.0, False, False),
    "trimap_background": ("real", 0.0, 1.0, False, False),
    "trimap_foreground": ("real", 0.0, 1.0, False, False),
}


def _range_text(rule: tuple) -> str:
    """What ``rule`` allows, as the end of "NAME must be ..."."""
    if rule[0] == "int":
        return f"an integer >= {rule[1]}"
    if rule[0] == "choice":
        return "one of " + ", ".join(repr(v) for v in rule[1])
    _, low, high, low_open, high_open = rule
    if high is None:
        return f"a number {'>' if low_open else '>='} {low:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def _allowed(rule: tuple, value: Any) -> bool:
    if rule[0] == "int":
        return isinstance(value, Integral) and not isinstance(value, bool) and value >= rule[1]
    if rule[0] == "choice":
        return isinstance(value, str) and value in rule[1]
    _, low, high, low_open, high_open = rule
    if not isinstance(value, Real) or isinstance(value, bool) or not math.isfinite(value):
        return False
    above = value > low if low_open else value >= low
    below = high is None or (value < high if high_open else value <= high)
    return above and below


def _check_field(name: str, value: Any) -> None:
    rule = _FIELDS[name]
    if not _allowed(rule, value):
        raise ValueError(f"{name} must be {_range_text(rule)}, got {value!r}")


def _coerce(name: str, value: Any) -> Any:
    """A JSON value as field ``name``'s type: integral floats to int, ints to float."""
    kind = _FIELDS[name][0]
    if isinstance(value, bool):
        return value  # refused by the range check with the field's name
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "real" and isinstance(value, Integral):
        return float(value)
    return value


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(_FIELDS), n=3, cutoff=0.7)
    hint = f"did you mean {' or '.join(close)}?" if close else (
        "valid names: " + ", ".join(_FIELDS))
    return f"unknown config field {name!r}; {hint}"


REFERENCE = UNLCConfig()
"""The reference parameters (``UNLCConfig()``), for readability at call sites."""

PRESETS: dict[str, dict[str, Any]] = {
    "reference": {},
    "fast": {"c2f_precision": "float32", "c2f_outer_iterations": 4, "c2f_sor_iterations": 10},
}
"""Named starting points, as the fields each changes from :data:`REFERENCE`.

``reference``: the original uNLC's parameters. ``fast``: the c2f flow in float32 lanes
with 4 outer iterations of 10 SOR sweeps at the finest level (reference: 7 of 30; the
coarser levels keep their +1 and +3 per level), 3.4-3.6 times less flow time;
``benchmarks/RESULTS.md`` (issue 12, target 5) gives its mean IoU against c2f's on
ground-truth clips made from real photographs, per camera motion."""


def preset(name: str) -> UNLCConfig:
    """The config of preset ``name`` (a key of :data:`PRESETS`); raises ValueError."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return REFERENCE.replace(**PRESETS[name])
