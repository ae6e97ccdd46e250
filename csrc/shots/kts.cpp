// Serial on purpose: the programme costs about half the BLAS product that feeds it, and
// worker threads spinning beside OpenBLAS's made a 10,000-frame run four times slower on a
// 2-core machine.
#include "shots/kts.h"

#include <limits>

namespace fastunlc::shots {

void kts_block(double* gram, int64_t rows, int64_t stride, int64_t first_end, const double* norms,
               const double* sq_prefix, double* cost, int64_t* back, int64_t levels,
               int64_t ends) {
    for (int64_t r = 0; r < rows; ++r) {
        const int64_t end = first_end + r;
        double* row = gram + r * stride;
        for (int64_t t = 0; t < end; ++t) {
            const double sq = norms[end] + norms[t] - 2.0 * row[t];
            row[t] = (sq_prefix[end] - sq_prefix[t]) - sq / static_cast<double>(end - t);
        }
    }
    // Level k needs level k - 1 at every earlier end, including those of this block.
    for (int64_t r = 0; r < rows; ++r) cost[first_end + r] = gram[r * stride];
    for (int64_t k = 1; k < levels; ++k) {
        const double* previous = cost + (k - 1) * ends;
        for (int64_t r = 0; r < rows; ++r) {
            const int64_t end = first_end + r;
            if (end < k + 1) continue;
            const double* row = gram + r * stride;
            double best = std::numeric_limits<double>::infinity();
            int64_t best_t = k;
            for (int64_t t = k; t < end; ++t) {
                const double c = previous[t] + row[t];
                if (c < best) {
                    best = c;
                    best_t = t;
                }
            }
            cost[k * ends + end] = best;
            back[k * ends + end] = best_t;
        }
    }
}

}  // namespace fastunlc::shots
