"""One typed configuration for the whole uNLC pipeline.

Every default is the reference's parameter (``shared/unlc-spec.md``; the
``videoseg`` repository's ``run_full.py`` and ``nlc.py``). Fields are grouped by
pipeline stage in the order the stages run. Where fastunlc adds a knob the
reference does not have, the field's comment says so and what the reference does.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

FlowMethod = Literal["c2f", "dis"]
BlockNorm = Literal["L1", "L1-sqrt", "L2", "L2-Hys"]


@dataclass(frozen=True)
class UNLCConfig:
    """Parameters of every stage; defaults reproduce reference uNLC.

    Units: sizes in pixels, lengths in frames, thresholds in the units of the
    quantity they compare (flow magnitude in pixels of the 100x100 flow frame,
    directions in radians, saliency and masks in [0, 1]).
    """

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
    """``c2f``: Brox/Ce Liu coarse-to-fine variational flow (reference); ``dis``: OpenCV DIS."""
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
    static_magnitude: float = 1.0
    """A pair is "static" when the median flow magnitude (pixels) is below this."""
    direction_bins: int = 20
    dominant_direction: float = 0.75
    """A pair is "translating" when its largest direction bin holds more than this share."""
    saliency_patch: int = 5
    """Side of the mean filter applied to each pair's deviation."""
    min_dominant_fraction: float = 0.5
    """Below this fraction of dominant frames the appearance fallback is used."""
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
        if self.flow not in ("c2f", "dis"):
            raise ValueError(f"flow must be 'c2f' or 'dis', got {self.flow!r}")
        if self.hog_block_norm not in ("L1", "L1-sqrt", "L2", "L2-Hys"):
            raise ValueError(f"hog_block_norm must be L1, L1-sqrt, L2 or L2-Hys, got "
                             f"{self.hog_block_norm!r}")
        if self.voting_iterations % self.voting_rounds:
            raise ValueError("voting_iterations must be a multiple of voting_rounds, got "
                             f"{self.voting_iterations} and {self.voting_rounds}")
        if self.patch_size % self.hog_cell:
            raise ValueError("patch_size must be a multiple of hog_cell, got "
                             f"{self.patch_size} and {self.hog_cell}")
        for name in ("max_side", "min_side", "min_shot", "max_shot", "flow_size", "n_segments",
                     "patch_size", "temporal_radius", "neighbours_per_frame", "max_shots"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def replace(self, **changes: Any) -> UNLCConfig:
        """Return a copy with ``changes`` applied (validated like the constructor)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


REFERENCE = UNLCConfig()
"""The reference parameters (``UNLCConfig()``), for readability at call sites."""
