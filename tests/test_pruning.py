"""Frame pruning rules and the trimap (spec section 7)."""

from __future__ import annotations

import numpy as np
import pytest

from fastunlc.pruning import border_band, frame_verdict, trimap


def _mask_with_box(h, w, y0, y1, x0, x1, value=0.9):
    m = np.zeros((h, w))
    m[y0:y1, x0:x1] = value
    return m


def test_centred_object_is_kept():
    v = frame_verdict(_mask_with_box(100, 200, 30, 70, 60, 140))  # 40*80 = 16%
    assert v.keep and v.reason == "ok"
    assert v.foreground_fraction == pytest.approx(0.16)
    assert v.border_foreground_fraction == 0.0


@pytest.mark.parametrize("box, reason", [
    ((45, 55, 90, 110), "too little foreground"),  # 1%
    ((2, 98, 2, 198), "too much foreground"),  # 92%
    ((0, 50, 60, 140), "foreground on the border"),  # touches the top band
])
def test_pruning_reasons(box, reason):
    v = frame_verdict(_mask_with_box(100, 200, *box))
    assert not v.keep and v.reason == reason


def test_threshold_is_strict():
    assert not frame_verdict(_mask_with_box(100, 200, 30, 70, 60, 140, value=0.7)).keep


def test_border_band_widths():
    band = border_band((100, 200), 0.05)
    assert band[:5].all() and band[-5:].all() and band[:, :10].all() and band[:, -10:].all()
    assert not band[5:95, 10:190].any()
    assert border_band((10, 10), 0.05)[0].all()  # at least one pixel wide


def test_trimap_values():
    m = np.array([[0.0, 0.39, 0.4, 0.55], [0.7, 0.71, 1.0, 0.2]])
    t = trimap(m)
    assert t.dtype == np.uint8
    np.testing.assert_array_equal(t, [[0, 0, 255, 255], [255, 1, 1, 0]])
