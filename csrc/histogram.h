// np.histogram's bin rule, shared by the kernel families that bin values as the reference's
// np.histogram calls do (shots, descriptors, regions).
#pragma once

#include <cstdint>

namespace fastunlc {

// Bin of x under np.histogram(..., bins=n, range=(lo, hi)) with edges[0..n] (np.linspace);
// -1 when it is not counted (outside [lo, hi], or NaN). The last bin is closed, and a value
// that rounding put on the wrong side of an edge moves to its neighbour, as NumPy does:
// fastunlc._kernels.cpu.histograms.bin_index, operation for operation.
inline int64_t bin_index(double x, double lo, double hi, const double* edges, int64_t n) {
    if (!(x >= lo && x <= hi)) return -1;
    int64_t i = static_cast<int64_t>(((x - lo) / (hi - lo)) * static_cast<double>(n));
    if (i == n) --i;
    if (x < edges[i])
        --i;
    else if (i != n - 1 && x >= edges[i + 1])
        ++i;
    return i;
}

}  // namespace fastunlc
