// Per-pixel kernels of the consensus voting (fastunlc/voting.py): painting votes, pixel
// counts, blob edits. Every kernel walks a frame's pixels in raster order, so sums
// accumulate in exactly the order of np.bincount over the flattened frame and agree with
// it (and with the former Numba kernels) bit for bit.
//
// Shapes: votes (k) float64 with k >= offsets[n]; labels (n, h, w) int32, frame f's in
// [0, offsets[f + 1] - offsets[f]) (the caller guarantees it: no bounds checks here);
// offsets (n + 1) int64. Frames run in parallel (OpenMP) where a kernel has several.
#pragma once

#include <cstdint>

namespace fastunlc::regions {

// out[f, y, x] = votes[offsets[f] + labels[f, y, x]]; out (n, h, w) float64.
void paint(const double* votes, const int32_t* labels, int64_t n, int64_t h, int64_t w,
           const int64_t* offsets, double* out);

// Adds each superpixel's pixel count into counts (k) int64.
void pixel_counts(const int32_t* labels, int64_t n, int64_t h, int64_t w, const int64_t* offsets,
                  int64_t* counts);

// In mask (h, w) float64, sets every component of components (h, w) int32 (numbered
// 1 .. n_components - 1, 0 background, never changed) with fewer pixels than
// relative_size x the largest component's to value.
void suppress_small(double* mask, const int32_t* components, int64_t h, int64_t w,
                    int64_t n_components, double relative_size, double value);

// out[f, y, x] = votes[offsets[f] + labels[f, y, x]] > threshold as uint8 0/1.
void foreground(const double* votes, const int32_t* labels, int64_t n, int64_t h, int64_t w,
                const int64_t* offsets, double threshold, uint8_t* out);

// Superpixel means out (k) of the painted votes after setting each component of frame f
// (components (n, h, w) int32, numbered 1 .. n_components[f] - 1, 0 background) whose
// summed mask is below energy_fraction x its size to value. components[f] is not read
// when n_components[f] <= 1, and components may then be null.
void low_energy_means(const double* votes, const int32_t* labels, int64_t n, int64_t h,
                      int64_t w, const int64_t* offsets, const int32_t* components,
                      const int64_t* n_components, double energy_fraction, double value,
                      double* out);

// Smallest and largest label of each frame into lo (n) and hi (n); h * w >= 1.
void label_ranges(const int32_t* labels, int64_t n, int64_t h, int64_t w, int64_t* lo,
                  int64_t* hi);

}  // namespace fastunlc::regions
