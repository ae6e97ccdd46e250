#include "regions/voting.h"

#include <algorithm>
#include <vector>

namespace fastunlc::regions {

void paint(const double* votes, const int32_t* labels, int64_t n, int64_t h, int64_t w,
           const int64_t* offsets, double* out) {
    const int64_t hw = h * w;
#pragma omp parallel for schedule(static)
    for (int64_t f = 0; f < n; ++f) {
        const double* v = votes + offsets[f];
        const int32_t* frame = labels + f * hw;
        double* o = out + f * hw;
        for (int64_t i = 0; i < hw; ++i) o[i] = v[frame[i]];
    }
}

void pixel_counts(const int32_t* labels, int64_t n, int64_t h, int64_t w, const int64_t* offsets,
                  int64_t* counts) {
    const int64_t hw = h * w;
#pragma omp parallel for schedule(static)
    for (int64_t f = 0; f < n; ++f) {
        int64_t* c = counts + offsets[f];
        const int32_t* frame = labels + f * hw;
        for (int64_t i = 0; i < hw; ++i) ++c[frame[i]];
    }
}

void suppress_small(double* mask, const int32_t* components, int64_t h, int64_t w,
                    int64_t n_components, double relative_size, double value) {
    const int64_t hw = h * w;
    std::vector<int64_t> size(n_components, 0);
    for (int64_t i = 0; i < hw; ++i) ++size[components[i]];
    int64_t largest = 0;
    for (int64_t c = 1; c < n_components; ++c) largest = std::max(largest, size[c]);
    // NumPy's size < relative_size * largest: the int64 counts compared as float64.
    const double bound = relative_size * static_cast<double>(largest);
    std::vector<char> kill(n_components);
    for (int64_t c = 1; c < n_components; ++c) kill[c] = static_cast<double>(size[c]) < bound;
    for (int64_t i = 0; i < hw; ++i)
        if (kill[components[i]]) mask[i] = value;
}

void foreground(const double* votes, const int32_t* labels, int64_t n, int64_t h, int64_t w,
                const int64_t* offsets, double threshold, uint8_t* out) {
    const int64_t hw = h * w;
#pragma omp parallel for schedule(static)
    for (int64_t f = 0; f < n; ++f) {
        const double* v = votes + offsets[f];
        const int32_t* frame = labels + f * hw;
        uint8_t* o = out + f * hw;
        for (int64_t i = 0; i < hw; ++i) o[i] = v[frame[i]] > threshold ? 1 : 0;
    }
}

void low_energy_means(const double* votes, const int32_t* labels, int64_t n, int64_t h,
                      int64_t w, const int64_t* offsets, const int32_t* components,
                      const int64_t* n_components, double energy_fraction, double value,
                      double* out) {
    const int64_t hw = h * w;
#pragma omp parallel
    {
        std::vector<double> energy, size, sums;
        std::vector<int64_t> counts;
        std::vector<char> kill;
#pragma omp for schedule(dynamic, 1)
        for (int64_t f = 0; f < n; ++f) {
            const int64_t base = offsets[f];
            const double* v = votes + base;
            const int32_t* frame = labels + f * hw;
            const int64_t nc = n_components[f];
            bool any_kill = false;
            if (nc > 1) {
                const int32_t* comp = components + f * hw;
                energy.assign(nc, 0.0);
                size.assign(nc, 0.0);
                kill.assign(nc, 0);
                for (int64_t i = 0; i < hw; ++i) {
                    energy[comp[i]] += v[frame[i]];
                    size[comp[i]] += 1.0;
                }
                for (int64_t c = 1; c < nc; ++c) {
                    kill[c] = energy[c] < energy_fraction * size[c];
                    any_kill = any_kill || kill[c];
                }
            }
            const int64_t n_f = offsets[f + 1] - base;
            sums.assign(n_f, 0.0);
            counts.assign(n_f, 0);
            if (any_kill) {
                const int32_t* comp = components + f * hw;
                for (int64_t i = 0; i < hw; ++i) {
                    const int32_t s = frame[i];
                    sums[s] += kill[comp[i]] ? value : v[s];
                    ++counts[s];
                }
            } else {
                for (int64_t i = 0; i < hw; ++i) {
                    const int32_t s = frame[i];
                    sums[s] += v[s];
                    ++counts[s];
                }
            }
            for (int64_t s = 0; s < n_f; ++s)
                out[base + s] = sums[s] / static_cast<double>(counts[s]);
        }
    }
}

void label_ranges(const int32_t* labels, int64_t n, int64_t h, int64_t w, int64_t* lo,
                  int64_t* hi) {
    const int64_t hw = h * w;
#pragma omp parallel for schedule(static)
    for (int64_t f = 0; f < n; ++f) {
        const int32_t* frame = labels + f * hw;
        int32_t a = frame[0];
        int32_t b = a;
        for (int64_t i = 0; i < hw; ++i) {
            a = std::min(a, frame[i]);
            b = std::max(b, frame[i]);
        }
        lo[f] = a;
        hi[f] = b;
    }
}

}  // namespace fastunlc::regions
