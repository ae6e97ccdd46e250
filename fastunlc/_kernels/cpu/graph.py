"""Exact windowed k-NN over superpixel descriptors (C++, ``csrc/graph/``): each pair of
frames' distance block computed once, AVX2 fused multiply-adds, a bounded selection per
row."""

from __future__ import annotations

from ..._C import graph as _graph

window_knn = _graph.window_knn

__all__ = ["window_knn"]
