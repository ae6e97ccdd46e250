#include "regions/voting.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace fastunlc::regions {

namespace {

// Adds the pixel count of each label of one frame (hw labels in [0, n_labels)) into c,
// run by run: ++c[label] pixel after pixel would be a chain of dependent loads and
// stores, as neighbouring pixels nearly always share a label. A run is measured eight
// pixels at a time (one SIMD comparison), then pixel by pixel.
void count_labels(const int32_t* frame, int64_t hw, int64_t* c) {
    int64_t i = 0;
    while (i < hw) {
        const int32_t label = frame[i];
        int64_t j = i + 1;
        while (j + 8 <= hw) {
            bool same = true;
            for (int k = 0; k < 8; ++k) same &= frame[j + k] == label;
            if (!same) break;
            j += 8;
        }
        while (j < hw && frame[j] == label) ++j;
        c[label] += j - i;
        i = j;
    }
}

// sums[s] = 0.0 + v[s] + v[s] + ... (counts[s] terms, added one by one), what the raster
// walk accumulates for a superpixel none of whose pixels changed, without walking the
// pixels: each superpixel's running sum only ever adds its own value, so the additions
// of different superpixels can interleave freely. kLanes superpixels advance together
// (SIMD lanes); a lane past its count adds 0.0, which leaves its sum unchanged (the
// sum starts at +0.0, so it is never -0.0, the one value that x + 0.0 changes).
void repeated_sums(const double* v, const int64_t* counts, int64_t n_labels, double* sums) {
    constexpr int kLanes = 16;
    for (int64_t s0 = 0; s0 < n_labels; s0 += kLanes) {
        const int lanes = static_cast<int>(std::min<int64_t>(kLanes, n_labels - s0));
        double add[kLanes] = {};
        double acc[kLanes] = {};
        int64_t count[kLanes] = {};
        int64_t most = 0;
        for (int j = 0; j < lanes; ++j) {
            add[j] = v[s0 + j];
            count[j] = counts[s0 + j];
            most = std::max(most, count[j]);
        }
        for (int64_t i = 0; i < most; ++i)
            for (int j = 0; j < kLanes; ++j) acc[j] += i < count[j] ? add[j] : 0.0;
        for (int j = 0; j < lanes; ++j) sums[s0 + j] = acc[j];
    }
}

}  // namespace

void pixel_counts(const int32_t* labels, int64_t n, int64_t h, int64_t w, const int64_t* offsets,
                  int64_t* counts) {
    const int64_t hw = h * w;
#pragma omp parallel for schedule(static)
    for (int64_t f = 0; f < n; ++f) count_labels(labels + f * hw, hw, counts + offsets[f]);
}

void paint_masks(const double* votes, const int32_t* labels, int64_t n, int64_t h, int64_t w,
                 const int64_t* offsets, const int32_t* components, const int64_t* n_components,
                 double relative_size, double value, float* out) {
    const int64_t hw = h * w;
    std::vector<int64_t> size;
    std::vector<char> kill;
    for (int64_t f = 0; f < n; ++f) {
        const double* v = votes + offsets[f];
        const int32_t* frame = labels + f * hw;
        const int64_t nc = n_components[f];
        kill.assign(std::max<int64_t>(nc, 1), 0);
        bool any_kill = false;
        if (nc > 1) {
            size.assign(nc, 0);
            count_labels(components + f * hw, hw, size.data());
            int64_t largest = 0;
            for (int64_t c = 1; c < nc; ++c) largest = std::max(largest, size[c]);
            // NumPy's size < relative_size * largest: the int64 counts compared as float64.
            const double bound = relative_size * static_cast<double>(largest);
            for (int64_t c = 1; c < nc; ++c) {
                kill[c] = static_cast<double>(size[c]) < bound;
                any_kill = any_kill || kill[c];
            }
        }
        const int32_t* comp = any_kill ? components + f * hw : nullptr;
        float* o = out + f * hw;
        // Rounding the float64 value once gives the float32 of the painted, edited
        // float64 mask.
        for (int64_t i = 0; i < hw; ++i)
            o[i] = static_cast<float>(comp && kill[comp[i]] ? value : v[frame[i]]);
    }
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
                      int64_t w, const int64_t* offsets, const int64_t* counts,
                      const int32_t* components, const int64_t* n_components,
                      double energy_fraction, double value, double* out) {
    const int64_t hw = h * w;
#pragma omp parallel
    {
        std::vector<double> energy, size, sums;
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
            const int64_t* count = counts + base;
            sums.assign(n_f, 0.0);
            if (any_kill) {
                const int32_t* comp = components + f * hw;
                for (int64_t i = 0; i < hw; ++i) {
                    const int32_t s = frame[i];
                    sums[s] += kill[comp[i]] ? value : v[s];
                }
            } else {
                repeated_sums(v, count, n_f, sums.data());
            }
            for (int64_t s = 0; s < n_f; ++s)
                out[base + s] = sums[s] / static_cast<double>(count[s]);
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

template <typename Index>
void propagate(const Index* indptr, const Index* indices, const double* weights, int64_t k,
               const int64_t* offsets, int64_t n, int64_t iterations, double* votes) {
    std::vector<double> other(k);
#pragma omp parallel
    {
        // Each thread takes whole frames, so that it normalises the rows it has just
        // summed: one barrier per iteration (the next one reads every frame's votes).
        double* in = votes;
        double* out = other.data();
        for (int64_t it = 0; it < iterations; ++it) {
#pragma omp for schedule(static)
            for (int64_t f = 0; f < n; ++f) {
                // scipy's csr_matvec: each row's products summed in storage order from +0.0.
                for (int64_t i = offsets[f]; i < offsets[f + 1]; ++i) {
                    double sum = 0.0;
                    for (Index j = indptr[i]; j < indptr[i + 1]; ++j)
                        sum += weights[j] * in[indices[j]];
                    out[i] = sum;
                }
                // np.maximum.reduceat over the frame (NaN wins, as np.maximum lets it),
                // then the division by np.where(peak > 0, peak, 1.0).
                double peak = out[offsets[f]];
                for (int64_t i = offsets[f] + 1; i < offsets[f + 1]; ++i)
                    if (!(peak >= out[i] || peak != peak)) peak = out[i];
                const double d = peak > 0 ? peak : 1.0;
                for (int64_t i = offsets[f]; i < offsets[f + 1]; ++i) out[i] /= d;
            }
            std::swap(in, out);  // every thread swaps alike, after the barrier
        }
    }
    // After an odd number of iterations the result is in the other buffer.
    if (iterations % 2) std::copy(other.begin(), other.end(), votes);
}

template void propagate(const int32_t*, const int32_t*, const double*, int64_t, const int64_t*,
                        int64_t, int64_t, double*);
template void propagate(const int64_t*, const int64_t*, const double*, int64_t, const int64_t*,
                        int64_t, int64_t, double*);

}  // namespace fastunlc::regions
