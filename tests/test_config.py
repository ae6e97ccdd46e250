"""The one config: reference defaults and validation."""

from __future__ import annotations

import pytest

from fastunlc.config import REFERENCE, UNLCConfig


def test_reference_defaults_are_the_spec():
    c = REFERENCE
    assert (c.max_side, c.min_shot, c.max_shot, c.max_shots, c.kts_vmax) == (650, 10, 110, 5, 0.6)
    assert (c.flow_size, c.flow_radius, c.c2f_alpha, c.c2f_ratio, c.c2f_min_width) == (
        100, 3, 0.012, 0.75, 20)
    assert (c.c2f_outer_iterations, c.c2f_inner_iterations, c.c2f_sor_iterations) == (7, 1, 30)
    assert (c.static_magnitude, c.direction_bins, c.dominant_direction) == (1.0, 20, 0.75)
    assert (c.n_segments, c.slic_compactness, c.slic_max_iter, c.slic_sigma) == (400, 10, 10, 5)
    assert (c.patch_size, c.color_bins, c.hog_orientations, c.hog_cell) == (15, 20, 6, 5)
    assert c.hog_block_norm == "L1"
    assert c.n_neighbours == 62 and c.weight_variance == 0.1
    assert (c.voting_iterations, c.voting_rounds, c.foreground_threshold) == (50, 5, 0.7)
    assert (c.low_energy_fraction, c.low_energy_value, c.relative_blob_size) == (0.6, 0.175, 0.6)
    assert (c.trimap_background, c.trimap_foreground) == (0.4, 0.7)


@pytest.mark.parametrize("changes, message", [
    ({"flow": "farneback"}, "flow must be"),
    ({"hog_block_norm": "L3"}, "hog_block_norm"),
    ({"voting_iterations": 48}, "multiple of voting_rounds"),
    ({"patch_size": 16}, "multiple of hog_cell"),
    ({"max_side": 0}, "max_side must be >= 1"),
])
def test_invalid_values_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        REFERENCE.replace(**changes)


def test_frozen_and_serialisable():
    with pytest.raises(AttributeError):
        REFERENCE.max_side = 10  # type: ignore[misc]
    d = UNLCConfig(flow="dis").to_dict()
    assert d["flow"] == "dis" and UNLCConfig(**d) == UNLCConfig(flow="dis")
