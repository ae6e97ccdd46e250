// Exact k nearest neighbours of every superpixel within its temporal window of frames
// (fastunlc.graph, spec section 5).
#pragma once

#include <cstdint>

namespace fastunlc::graph {

// For every row r of x (k x d float32, row-major; frame f owning rows
// offsets[f] .. offsets[f + 1] - 1, offsets of n_frames + 1 entries), its m nearest rows
// among the frames f - radius .. f + radius (clipped to 0 .. n_frames - 1), r itself
// included, by squared L2 distance |x_r|^2 + |x_c|^2 - 2 x_r . x_c (clamped at 0).
// Writes indices (k x m int64, nearest first, ties by the smaller index, -1 padding where
// the window holds fewer than m rows) and sq_distances (k x m float32, inf padding).
//
// Each pair of frames is multiplied once and its distances serve both frames' rows (the
// distance of (r, c) and of (c, r) are the same bits: every dot product is the same
// sequence of fused multiply-adds over the d components, in component order). The result
// is therefore the same for any thread count and any CPU with or without SIMD.
// Runs on the calling thread's OpenMP threads.
void window_knn(const float* x, int64_t k, int64_t d, const int64_t* offsets,
                int64_t n_frames, int64_t radius, int64_t m, int64_t* indices,
                float* sq_distances);

}  // namespace fastunlc::graph
