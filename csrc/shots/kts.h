// The dynamic programme of Kernel Temporal Segmentation over one block of segment ends
// (fastunlc/shots.py's kts_change_points holds the prefix sums and the block's products).
#pragma once

#include <cstdint>

namespace fastunlc::shots {

// gram: (rows, stride) row-major, gram[r * stride + t] = S[first_end + r] . S[t] for
// t <= first_end + r, overwritten with the scatter of frames [t, first_end + r).
// norms, sq_prefix: (N + 1,) |S[t]|^2 and Q[t]. cost (levels, N + 1) float64 and back
// (levels, N + 1) int64, row-major: least scatter of the first l frames cut by k change
// points and the last change point of that optimum (the first among ties); entries for ends
// before first_end must be final.
void kts_block(double* gram, int64_t rows, int64_t stride, int64_t first_end, const double* norms,
               const double* sq_prefix, double* cost, int64_t* back, int64_t levels,
               int64_t ends);

}  // namespace fastunlc::shots
