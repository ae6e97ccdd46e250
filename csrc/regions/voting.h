// Kernels of the consensus voting (fastunlc/voting.py): vote propagation, pixel counts,
// foreground, blob edits and painting. Every per-superpixel sum equals the one of a walk
// over the frame's pixels in raster order, the order of np.bincount over the flattened
// frame, so the results agree with it (and with the former Numba kernels) bit for bit.
//
// Shapes: votes (k) float64 with k >= offsets[n]; labels (n, h, w) int32, frame f's in
// [0, offsets[f + 1] - offsets[f]) (the caller guarantees it: no bounds checks here);
// offsets (n + 1) int64. Frames run in parallel (OpenMP) where a kernel has several.
#pragma once

#include <cstdint>

namespace fastunlc::regions {

// Adds each superpixel's pixel count into counts (k) int64.
void pixel_counts(const int32_t* labels, int64_t n, int64_t h, int64_t w, const int64_t* offsets,
                  int64_t* counts);

// The final soft masks: out[f, y, x] = float32(votes[offsets[f] + labels[f, y, x]]),
// except that every component of frame f (components (n, h, w) int32, numbered
// 1 .. n_components[f] - 1, 0 background, never changed) with fewer pixels than
// relative_size x the frame's largest component's gets float32(value). components[f]
// is not read when n_components[f] <= 1. Serial: the caller paints one frame at a time.
void paint_masks(const double* votes, const int32_t* labels, int64_t n, int64_t h, int64_t w,
                 const int64_t* offsets, const int32_t* components, const int64_t* n_components,
                 double relative_size, double value, float* out);

// out[f, y, x] = votes[offsets[f] + labels[f, y, x]] > threshold as uint8 0/1.
void foreground(const double* votes, const int32_t* labels, int64_t n, int64_t h, int64_t w,
                const int64_t* offsets, double threshold, uint8_t* out);

// Superpixel means out (k) of the painted votes after setting each component of frame f
// (components (n, h, w) int32, numbered 1 .. n_components[f] - 1, 0 background) whose
// summed mask is below energy_fraction x its size to value; counts (k) int64 holds each
// superpixel's pixel count (>= 1, pixel_counts). components[f] is not read when
// n_components[f] <= 1, and components may then be null; a frame without a low-energy
// component is not walked at all (its sums need only the counts).
void low_energy_means(const double* votes, const int32_t* labels, int64_t n, int64_t h,
                      int64_t w, const int64_t* offsets, const int64_t* counts,
                      const int32_t* components, const int64_t* n_components,
                      double energy_fraction, double value, double* out);

// Smallest and largest label of each frame into lo (n) and hi (n); h * w >= 1.
void label_ranges(const int32_t* labels, int64_t n, int64_t h, int64_t w, int64_t* lo,
                  int64_t* hi);

// iterations times: votes <- T votes, then each frame's votes (offsets (n + 1)) divided
// by their maximum when that is > 0. T (k, k) in CSR form (indptr (k + 1), indices and
// weights (nnz)); votes (k) float64, in place. Bit for bit scipy's T @ votes followed by
// fastunlc.voting's per-frame normalisation; frames in parallel.
template <typename Index>
void propagate(const Index* indptr, const Index* indices, const double* weights, int64_t k,
               const int64_t* offsets, int64_t n, int64_t iterations, double* votes);

}  // namespace fastunlc::regions
