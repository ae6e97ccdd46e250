#include "regions/saliency.h"

#include "histogram.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace fastunlc::regions {

namespace {

// Numba's np.median (numba/np/arraymath.py: _partition, _select, _select_two,
// _median_inner), step for step. For finite values any exact selection gives the same
// median as NumPy; following Numba's own quickselect keeps even NaN flows giving the
// former kernel's answer.
int64_t partition(double* a, int64_t low, int64_t high) {
    const int64_t mid = (low + high) >> 1;
    // Median of three {low, mid, high} as the pivot.
    if (a[mid] < a[low]) std::swap(a[low], a[mid]);
    if (a[high] < a[mid]) std::swap(a[high], a[mid]);
    if (a[mid] < a[low]) std::swap(a[low], a[mid]);
    const double pivot = a[mid];
    std::swap(a[high], a[mid]);
    int64_t i = low;
    int64_t j = high - 1;
    while (true) {
        while (i < high && a[i] < pivot) ++i;
        while (j >= low && pivot < a[j]) --j;
        if (i >= j) break;
        std::swap(a[i], a[j]);
        ++i;
        --j;
    }
    std::swap(a[i], a[high]);
    return i;
}

// The k'th smallest of a[low..high].
double select(double* a, int64_t k, int64_t low, int64_t high) {
    int64_t i = partition(a, low, high);
    while (i != k) {
        if (i < k)
            low = i + 1;
        else
            high = i - 1;
        i = partition(a, low, high);
    }
    return a[k];
}

// Median of a[0..n), which it reorders.
double median(double* a, int64_t n) {
    if (n == 0) return std::numeric_limits<double>::quiet_NaN();
    const int64_t half = n >> 1;
    if (n & 1) return select(a, half, 0, n - 1);
    // The half - 1'th and half'th smallest, from one shared partitioning.
    const int64_t k = half - 1;
    int64_t low = 0;
    int64_t high = n - 1;
    while (true) {
        const int64_t i = partition(a, low, high);
        if (i < k) {
            low = i + 1;
        } else if (i > k + 1) {
            high = i - 1;
        } else if (i == k) {
            select(a, k + 1, i + 1, high);
            break;
        } else {
            select(a, k, low, i - 1);
            break;
        }
    }
    return (a[k] + a[k + 1]) / 2;
}

}  // namespace

void pair_deviations(const float* flows, int64_t n_pairs, int64_t h, int64_t w,
                     double static_magnitude, double dominant_direction, const double* edges,
                     int64_t bins, double* deviation, int8_t* kind) {
    const int64_t hw = h * w;
    const double lo = edges[0];
    const double hi = edges[bins];
    const double two_pi = 2.0 * M_PI;
#pragma omp parallel
    {
        std::vector<double> mag(hw), scratch(hw), theta(hw), hist(bins);
#pragma omp for schedule(dynamic, 1)
        for (int64_t p = 0; p < n_pairs; ++p) {
            const float* flow = flows + p * hw * 2;
            double* dev = deviation + p * hw;
            for (int64_t i = 0; i < hw; ++i) {
                const double u = flow[2 * i];
                const double v = flow[2 * i + 1];
                mag[i] = std::sqrt(u * u + v * v);
            }
            scratch = mag;
            if (median(scratch.data(), hw) < static_magnitude) {
                kind[p] = kStatic;
                for (int64_t i = 0; i < hw; ++i) dev[i] = mag[i] * mag[i];
                continue;
            }
            std::fill(hist.begin(), hist.end(), 0.0);
            for (int64_t i = 0; i < hw; ++i) {
                const double t = std::atan2(static_cast<double>(flow[2 * i + 1]),
                                            static_cast<double>(flow[2 * i]));
                theta[i] = t;
                const int64_t b = bin_index(t, lo, hi, edges, bins);
                if (b >= 0) hist[b] += mag[i];
            }
            // Numba's ndarray.sum: one running sum in bin order.
            double total = 0.0;
            for (int64_t b = 0; b < bins; ++b) total += hist[b];
            if (total == 0.0) {
                kind[p] = kNotDominant;
                continue;
            }
            // The first largest bin, as np.argmax (the bins sum magnitudes >= 0: no NaN).
            int64_t best = 0;
            for (int64_t b = 1; b < bins; ++b)
                if (hist[b] > hist[best]) best = b;
            if (hist[best] / total <= dominant_direction) {
                kind[p] = kNotDominant;
                continue;
            }
            kind[p] = kTranslating;
            const double target = 0.5 * (edges[best] + edges[best + 1]);
            for (int64_t i = 0; i < hw; ++i) {
                // The squared angle to target, wrapped: min(a, b, c) as Python's min picks.
                const double d = theta[i] - target;
                double m = d * d;
                const double above = (d + two_pi) * (d + two_pi);
                const double below = (d - two_pi) * (d - two_pi);
                if (above < m) m = above;
                if (below < m) m = below;
                dev[i] = m;
            }
        }
    }
}

void superpixel_sums(const double* saliency, int64_t s_h, int64_t s_w, const int32_t* labels,
                     int64_t n, int64_t h, int64_t w, const int64_t* offsets, const double* rows,
                     const double* columns, int64_t border, double* sums, int64_t* counts,
                     double* peaks, bool* bad) {
    std::vector<int64_t> x0(w), x1(w);
    std::vector<double> tx(w);
    for (int64_t x = 0; x < w; ++x) {
        x0[x] = std::min(static_cast<int64_t>(std::floor(columns[x])), s_w - 1);
        x1[x] = std::min(x0[x] + 1, s_w - 1);
        tx[x] = columns[x] - static_cast<double>(x0[x]);
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t f = 0; f < n; ++f) {
        const int64_t start = offsets[f];
        const int64_t n_labels = offsets[f + 1] - start;
        const double* s = saliency + f * s_h * s_w;
        const int32_t* frame = labels + f * h * w;
        double peak = -std::numeric_limits<double>::infinity();
        for (int64_t y = 0; y < h; ++y) {
            const int64_t y0 = std::min(static_cast<int64_t>(std::floor(rows[y])), s_h - 1);
            const int64_t y1 = std::min(y0 + 1, s_h - 1);
            const double ty = rows[y] - static_cast<double>(y0);
            const bool inside_y = border <= y && y < h - border;
            const double* r0 = s + y0 * s_w;
            const double* r1 = s + y1 * s_w;
            for (int64_t x = 0; x < w; ++x) {
                double value = 0.0;
                if (inside_y && border <= x && x < w - border) {
                    const double top = (1.0 - tx[x]) * r0[x0[x]] + tx[x] * r0[x1[x]];
                    const double low = (1.0 - tx[x]) * r1[x0[x]] + tx[x] * r1[x1[x]];
                    value = (1.0 - ty) * top + ty * low;
                }
                // Python's max(peak, value): value only where it compares greater.
                if (value > peak) peak = value;
                const int32_t label = frame[y * w + x];
                if (label < 0 || label >= n_labels) {
                    bad[f] = true;
                    continue;
                }
                sums[start + label] += value;
                counts[start + label] += 1;
            }
        }
        peaks[f] = peak;
        for (int64_t label = 0; label < n_labels; ++label)
            if (counts[start + label] == 0) bad[f] = true;
    }
}

}  // namespace fastunlc::regions
