// Superpixel descriptor kernels, the former Numba kernels' IEEE operations in the same
// order (this file is compiled without FMA contraction, see CMakeLists.txt).
//
// The HOG reproduces skimage.feature.hog (checked against scikit-image 0.26) on a grey
// patch with one block covering all cells, bit for bit:
// - gradients are central differences, zero on the patch border;
// - magnitude hypot(g_col, g_row), unsigned orientation degrees(atan2(g_row, g_col)) % 180
//   with Python's modulo, so a tiny negative angle rounds up to exactly 180 and falls in
//   no bin; hypot and atan2 are the C library's, as Numba and NumPy call them;
// - a pixel goes to orientation bin i when 180/n * i <= angle < 180/n * (i + 1);
// - each cell's bin sums its pixels' magnitudes in row-major order in a float
//   accumulator, then divides by the cell area in float: scikit-image's Cython kernel
//   declares the accumulator float whatever the image type (summing in double differs
//   by up to ~5e-9);
// - block normalisation sums with NumPy's pairwise summation, so that the normalising
//   constant is NumPy's to the last bit.
#include "descriptors/descriptors.h"
#include "histogram.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace fastunlc::descriptors {

namespace {

// NumPy's pairwise-summation block size (PW_BLOCKSIZE in numpy/_core/src/umath/loops_utils.h).
constexpr int64_t kPairwiseBlock = 128;
// scikit-image's block-normalisation epsilon.
constexpr double kEps = 1e-5;

// NumPy's sum of at most kPairwiseBlock values: 8 running sums, combined as a tree.
double block_sum(const double* a, int64_t n) {
    if (n < 8) {
        double total = 0.0;
        for (int64_t i = 0; i < n; ++i) total += a[i];
        return total;
    }
    double r[8];
    for (int j = 0; j < 8; ++j) r[j] = a[j];
    const int64_t stop = n - n % 8;
    for (int64_t i = 8; i < stop; i += 8)
        for (int j = 0; j < 8; ++j) r[j] += a[i + j];
    double total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (int64_t i = stop; i < n; ++i) total += a[i];
    return total;
}

// Python's float modulo by a positive m (what Numba compiles `%` to): the result has the
// sign of m, so a tiny negative x gives m - |x|, which may round to m itself.
double python_mod(double x, double m) {
    double r = std::fmod(x, m);
    if (r != 0.0) {
        if (r < 0.0) r += m;
    } else {
        r = 0.0;  // copysign(0, m): never -0
    }
    return r;
}

// HOG of one size x size grey patch into out (orientations * (size / cell)^2 values);
// `hist` is scratch of that many doubles.
void hog_patch(const double* grey, int64_t size, int64_t orientations, int64_t cell, int norm,
               double* hist, double* out) {
    const int64_t n_cells = size / cell;
    const int64_t span = n_cells * cell;
    const int64_t n_hog = n_cells * n_cells * orientations;
    const double bin_width = 180.0 / static_cast<double>(orientations);
    std::fill(hist, hist + n_hog, 0.0);
    for (int64_t y = 0; y < span; ++y) {
        for (int64_t x = 0; x < span; ++x) {
            const double* p = grey + y * size + x;
            const double g_row = (0 < y && y < size - 1) ? p[size] - p[-size] : 0.0;
            const double g_col = (0 < x && x < size - 1) ? p[1] - p[-1] : 0.0;
            // No gradient: bin 0 would get float(h + 0.0) == h. Flat areas are common.
            if (g_row == 0.0 && g_col == 0.0) continue;
            const double magnitude = std::hypot(g_col, g_row);
            const double angle = python_mod(std::atan2(g_row, g_col) * (180.0 / M_PI), 180.0);
            double* h = hist + ((y / cell) * n_cells + x / cell) * orientations;
            for (int64_t o = 0; o < orientations; ++o) {
                if (bin_width * static_cast<double>(o) <= angle &&
                    angle < bin_width * static_cast<double>(o + 1)) {
                    // A float accumulator, as scikit-image's (see the file comment).
                    h[o] = static_cast<float>(h[o] + magnitude);
                    break;
                }
            }
        }
    }
    const double area = static_cast<double>(cell * cell);
    for (int64_t k = 0; k < n_hog; ++k) hist[k] = static_cast<float>(hist[k] / area);

    if (norm == kL1 || norm == kL1Sqrt) {  // values are >= 0: the L1 norm's abs is a no-op
        const double scale = pairwise_sum(hist, n_hog) + kEps;
        for (int64_t k = 0; k < n_hog; ++k) {
            out[k] = hist[k] / scale;
            if (norm == kL1Sqrt) out[k] = std::sqrt(out[k]);
        }
        return;
    }
    // L2, L2-Hys: the values move to out, their squares (NumPy's a * a) to hist.
    for (int64_t k = 0; k < n_hog; ++k) out[k] = hist[k];
    for (int64_t k = 0; k < n_hog; ++k) hist[k] = out[k] * out[k];
    double scale = std::sqrt(pairwise_sum(hist, n_hog) + kEps * kEps);
    for (int64_t k = 0; k < n_hog; ++k) out[k] /= scale;
    if (norm == kL2Hys) {
        for (int64_t k = 0; k < n_hog; ++k) {
            out[k] = std::min(out[k], 0.2);
            hist[k] = out[k] * out[k];
        }
        scale = std::sqrt(pairwise_sum(hist, n_hog) + kEps * kEps);
        for (int64_t k = 0; k < n_hog; ++k) out[k] /= scale;
    }
}

// Adds one pixel with the bins rgb_bins[0..2] of its R, G, B (-1: out of range) and
// CIELAB lab[0..2] to hist (6 x bins), `weight` times.
void accumulate(double* hist, const int64_t* rgb_bins, const double* lab, const double* edges,
                int64_t bins, double weight) {
    for (int c = 0; c < 3; ++c) {
        int64_t b = rgb_bins[c];
        if (b >= 0) hist[c * bins + b] += weight;
        b = bin_index(lab[c], edges + (3 + c) * (bins + 1), bins);
        if (b >= 0) hist[(3 + c) * bins + b] += weight;
    }
}

// The R, G, B bins of every uint8 value: table[256 * c + v] for channel c.
std::vector<int64_t> rgb_bin_table(const double* edges, int64_t bins) {
    std::vector<int64_t> table(3 * 256);
    for (int c = 0; c < 3; ++c)
        for (int v = 0; v < 256; ++v)
            table[256 * c + v] = bin_index(static_cast<double>(v), edges + c * (bins + 1), bins);
    return table;
}

// The bins of the R, G, B of one pixel, from rgb_bin_table.
void rgb_bins_of(const std::vector<int64_t>& table, const uint8_t* rgb, int64_t* out) {
    for (int c = 0; c < 3; ++c) out[c] = table[256 * c + rgb[c]];
}

}  // namespace

int64_t region_boxes(const int32_t* labels, int64_t h, int64_t w, int64_t n_labels,
                     int64_t* boxes) {
    for (int64_t s = 0; s < n_labels; ++s) {
        boxes[4 * s] = w;
        boxes[4 * s + 1] = h;
        boxes[4 * s + 2] = -1;
        boxes[4 * s + 3] = -1;
    }
    for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
            const int32_t s = labels[y * w + x];
            if (s < 0 || s >= n_labels) return y * w + x;
            int64_t* box = boxes + 4 * s;
            // Conditional stores: neighbouring pixels mostly share a label and rarely move
            // its box, so the branches predict well and the stores are skipped.
            if (x < box[0]) box[0] = x;
            if (x > box[2]) box[2] = x;
            // Rows are visited in order: the first hit is the minimum, the last the maximum.
            if (box[1] == h) box[1] = y;
            box[3] = y;
        }
    }
    return -1;
}

void place_1d(int64_t lo, int64_t hi, int64_t size, int64_t extent, int64_t* start,
              int64_t* first) {
    // int() of the true quotient truncates toward zero: -6.5 gives -6, not floor's -7.
    const int64_t s = static_cast<int64_t>(static_cast<double>(lo + hi - size) / 2.0);
    int64_t f = std::max<int64_t>(0, std::min(s, extent - 1));
    int64_t end = std::max<int64_t>(0, std::min(s + size, extent - 1));
    if (f == 0) end = size;
    if (end == extent - 1) f = end - size;
    *start = s;
    *first = f;
}

double pairwise_sum(const double* a, int64_t n) {
    if (n <= kPairwiseBlock) return block_sum(a, n);
    int64_t half = n / 2;
    half -= half % 8;
    return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

int64_t bin_index(double x, const double* edges, int64_t n_bins) {
    return fastunlc::bin_index(x, edges[0], edges[n_bins], edges, n_bins);
}

void normalise_rows(double* hist, int64_t rows, int64_t cols) {
    for (int64_t c = 0; c < rows; ++c) {
        double* row = hist + c * cols;
        double s = 0.0;
        for (int64_t b = 0; b < cols; ++b) s += row[b];
        const double d = s + (s < 1e-4 ? 1.0 : 0.0);
        for (int64_t b = 0; b < cols; ++b) row[b] /= d;
    }
}

void patch_descriptors(const double* grey, const uint8_t* rgb, const double* lab,
                       const int32_t* colour_of, int64_t n, int64_t size, const double* edges,
                       int64_t bins, int64_t orientations, int64_t cell, int norm,
                       double* out, int64_t stride) {
    const int64_t n_cells = size / cell;
    const int64_t n_hog = orientations * n_cells * n_cells;
    const int64_t pixels = size * size;
    const std::vector<int64_t> rgb_table = rgb_bin_table(edges, bins);
#pragma omp parallel
    {
        std::vector<double> scratch(static_cast<std::size_t>(n_hog));
        std::vector<double> hist(static_cast<std::size_t>(6 * bins));
#pragma omp for schedule(static)
        for (int64_t i = 0; i < n; ++i) {
            double* row = out + i * stride;
            hog_patch(grey + i * pixels, size, orientations, cell, norm, scratch.data(), row);
            std::fill(hist.begin(), hist.end(), 0.0);
            for (int64_t p = 0; p < pixels; ++p) {
                const int64_t q = i * pixels + p;
                int64_t rgb_bins[3];
                rgb_bins_of(rgb_table, rgb + 3 * q, rgb_bins);
                accumulate(hist.data(), rgb_bins, lab + 3 * int64_t{colour_of[q]}, edges, bins,
                           1.0);
            }
            normalise_rows(hist.data(), 6, bins);
            std::copy(hist.begin(), hist.end(), row + n_hog);
        }
    }
}


}  // namespace fastunlc::descriptors
