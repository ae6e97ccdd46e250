// Motion-saliency kernels: the dominant-motion test with each pair's deviation map, and
// the per-superpixel sums of the upsampled saliency. Bit for bit the former Numba kernels
// of fastunlc/_kernels/cpu/saliency.py (same IEEE operations in the same order).
#pragma once

#include <cstdint>

namespace fastunlc::regions {

// Kinds of a flow pair, as fastunlc._kernels.cpu.saliency (and the CUDA backend) number them.
enum PairKind : int8_t { kNotDominant = 0, kStatic = 1, kTranslating = 2 };

// flows: (n_pairs, h, w, 2) float32 (u, v) in pixels. edges: (bins + 1) float64, the
// direction histogram's np.linspace(-pi, pi, bins + 1). Writes kind (n_pairs) and, for
// static and translating pairs, deviation (n_pairs, h, w) float64; the other pairs'
// deviation is left untouched. Pairs run in parallel (OpenMP).
void pair_deviations(const float* flows, int64_t n_pairs, int64_t h, int64_t w,
                     double static_magnitude, double dominant_direction, const double* edges,
                     int64_t bins, double* deviation, int8_t* kind);

// saliency: (n, s_h, s_w) float64; labels: (n, h, w) int32, frame f's in
// [0, offsets[f + 1] - offsets[f]); rows (h) and columns (w): float64 source coordinates
// of the output pixels (scipy.ndimage.zoom, order=1). Pixels within border of an edge
// are 0. Adds into sums (k) float64 and counts (k) int64, zero on entry; writes each
// frame's largest upsampled value into peaks (n) and sets bad[f] for a frame holding a
// label out of range or an empty superpixel. Frames run in parallel (OpenMP).
void superpixel_sums(const double* saliency, int64_t s_h, int64_t s_w, const int32_t* labels,
                     int64_t n, int64_t h, int64_t w, const int64_t* offsets, const double* rows,
                     const double* columns, int64_t border, double* sums, int64_t* counts,
                     double* peaks, bool* bad);

}  // namespace fastunlc::regions
