"""The one config: reference defaults and validation."""

from __future__ import annotations

import json
from dataclasses import fields

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
    ({"max_side": 0}, "max_side must be an integer >= 1, got 0"),
    # Each of these once raised ZeroDivisionError or was accepted and failed later.
    ({"voting_rounds": 0}, r"voting_rounds must be an integer >= 1, got 0"),
    ({"hog_cell": 0}, r"hog_cell must be an integer >= 1, got 0"),
    ({"slic_compactness": 0}, r"slic_compactness must be a number > 0, got 0"),
    ({"trimap_background": 0.8}, r"trimap_background must be <= trimap_foreground, got 0.8 "
                                 r"and 0.7"),
    ({"min_foreground": 0.9}, "min_foreground must be <= max_foreground"),
    ({"appearance_alpha": 1.0}, r"appearance_alpha must be a number in \(0, 1\), got 1.0"),
    ({"border_fraction": 0.5}, r"border_fraction must be a number in \[0, 0.5\), got 0.5"),
    ({"weight_variance": float("nan")}, "weight_variance must be a number > 0, got nan"),
    ({"n_segments": 2.5}, "n_segments must be an integer >= 1, got 2.5"),
    ({"voting_rounds": True}, "voting_rounds must be an integer >= 1, got True"),
    ({"min_shot": 1}, "min_shot must be an integer >= 2"),
    ({"slic_min_size_factor": 4.0}, "slic_min_size_factor must be <= slic_max_size_factor"),
    ({"device": "tpu"}, "device must be one of 'cpu', 'cuda', got 'tpu'"),
    ({"flow": "c2f-fast"}, "flow 'c2f-fast' is the CUDA backend's fast mode"),
    ({"voting_round": 5}, "unknown config field 'voting_round'; did you mean voting_rounds"),
])
def test_invalid_values_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        REFERENCE.replace(**changes)


def test_frozen_and_serialisable():
    with pytest.raises(AttributeError):
        REFERENCE.max_side = 10  # type: ignore[misc]
    d = UNLCConfig(flow="dis").to_dict()
    assert d["flow"] == "dis" and UNLCConfig(**d) == UNLCConfig(flow="dis")


def test_every_field_has_a_range_and_every_range_a_field():
    from fastunlc.config import _FIELDS

    assert set(_FIELDS) == {f.name for f in fields(UNLCConfig)}
    assert not hasattr(UNLCConfig, "field_names")  # dead: fields() says the same


def test_new_fields_hold_the_reference_values():
    c = REFERENCE
    assert (c.appearance_n_segments, c.appearance_compactness, c.appearance_alpha,
            c.appearance_sigma2) == (200, 10.0, 0.99, 0.1)
    assert (c.slic_min_size_factor, c.slic_max_size_factor) == (0.5, 3.0)
    assert c.small_blob_margin == 1e-5 and c.device == "cpu"


def test_from_dict_replays_to_dict_through_json():
    config = UNLCConfig(flow="dis", slic_compactness=20, voting_rounds=10, hog_block_norm="L2")
    replayed = UNLCConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert replayed == config
    assert type(replayed.slic_compactness) is float


def test_from_dict_coerces_json_numbers_and_keeps_missing_defaults():
    config = UNLCConfig.from_dict({"voting_rounds": 10.0, "kts_vmax": 1})
    assert config.voting_rounds == 10 and type(config.voting_rounds) is int
    assert config.kts_vmax == 1.0 and type(config.kts_vmax) is float
    assert config.replace(voting_rounds=5, kts_vmax=0.6) == REFERENCE


@pytest.mark.parametrize("mapping, message", [
    ({"n_segmnets": 400}, "unknown config field 'n_segmnets'; did you mean n_segments"),
    ({"zzz": 1}, "unknown config field 'zzz'; valid names: device, max_side"),
    ({"voting_rounds": 2.5}, "voting_rounds must be an integer >= 1, got 2.5"),
    ({"flow": 3}, "flow must be one of 'c2f', 'dis', 'c2f-fast', got 3"),
    ({"kts_vmax": "0.6"}, "kts_vmax must be a number >= 0, got '0.6'"),
    ({"voting_rounds": True}, "voting_rounds must be an integer >= 1, got True"),
])
def test_from_dict_rejects_bad_names_and_types(mapping, message):
    with pytest.raises(ValueError, match=message):
        UNLCConfig.from_dict(mapping)


def test_from_dict_rejects_a_non_mapping():
    with pytest.raises(ValueError, match="mapping of field names"):
        UNLCConfig.from_dict([1, 2])


@pytest.mark.parametrize("name, text, value", [
    ("voting_rounds", "10", 10), ("kts_vmax", "1e-1", 0.1), ("flow", "dis", "dis")])
def test_parse_value_reads_the_fields_type(name, text, value):
    parsed = UNLCConfig.parse_value(name, text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize("name, text, message", [
    ("voting_rounds", "ten", "voting_rounds must be an integer, got 'ten'"),
    ("kts_vmax", "x", "kts_vmax must be a number, got 'x'"),
    ("votingrounds", "1", "unknown config field 'votingrounds'"),
])
def test_parse_value_names_the_field(name, text, message):
    with pytest.raises(ValueError, match=message):
        UNLCConfig.parse_value(name, text)


def test_dis_patch_stride_may_not_exceed_the_patch():
    with pytest.raises(ValueError, match="dis_patch_stride must be <= dis_patch_size"):
        UNLCConfig(flow="dis", dis_patch_size=4, dis_patch_stride=5)
    assert UNLCConfig(dis_patch_size=4, dis_patch_stride=4).dis_patch_stride == 4
