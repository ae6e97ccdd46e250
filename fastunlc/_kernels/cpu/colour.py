"""Distinct colours of an RGB image, found with an open-addressing hash table (C++,
``csrc/colour/``)."""

from __future__ import annotations

from ..._C import colour as _colour

distinct_colours = _colour.distinct_colours

__all__ = ["distinct_colours"]
