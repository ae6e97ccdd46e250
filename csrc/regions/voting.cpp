#include "regions/voting.h"

#include <algorithm>
#include <vector>

namespace fastunlc::regions {

namespace {

// Adds the pixel count of each label of one frame (hw labels in [0, n_labels)) into c.
// ++c[label] pixel after pixel is a chain of dependent loads and stores wherever
// neighbouring pixels share a label (nearly everywhere); four partial counts over
// interleaved pixels run four such chains side by side. Counts are integers: exact in
// any order.
void count_labels(const int32_t* frame, int64_t hw, int64_t n_labels, int64_t* c,
                  std::vector<int64_t>& part) {
    part.assign(4 * n_labels, 0);
    int64_t* p0 = part.data();
    int64_t* p1 = p0 + n_labels;
    int64_t* p2 = p1 + n_labels;
    int64_t* p3 = p2 + n_labels;
    int64_t i = 0;
    for (; i + 4 <= hw; i += 4) {
        ++p0[frame[i]];
        ++p1[frame[i + 1]];
        ++p2[frame[i + 2]];
        ++p3[frame[i + 3]];
    }
    for (; i < hw; ++i) ++p0[frame[i]];
    for (int64_t l = 0; l < n_labels; ++l) c[l] += p0[l] + p1[l] + p2[l] + p3[l];
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
#pragma omp parallel
    {
        std::vector<int64_t> part;
#pragma omp for schedule(static)
        for (int64_t f = 0; f < n; ++f)
            count_labels(labels + f * hw, hw, offsets[f + 1] - offsets[f], counts + offsets[f],
                         part);
    }
}

void paint_masks(const double* votes, const int32_t* labels, int64_t n, int64_t h, int64_t w,
                 const int64_t* offsets, const int32_t* components, const int64_t* n_components,
                 double relative_size, double value, float* out) {
    const int64_t hw = h * w;
    std::vector<int64_t> size, part;
    std::vector<char> kill;
    for (int64_t f = 0; f < n; ++f) {
        const double* v = votes + offsets[f];
        const int32_t* frame = labels + f * hw;
        const int64_t nc = n_components[f];
        kill.assign(std::max<int64_t>(nc, 1), 0);
        bool any_kill = false;
        if (nc > 1) {
            size.assign(nc, 0);
            count_labels(components + f * hw, hw, nc, size.data(), part);
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
        // One frame at a time (a frame's components are all the caller holds), its rows
        // in parallel. Rounding the float64 value once gives the float32 of the painted,
        // edited float64 mask.
#pragma omp parallel for schedule(static)
        for (int64_t y = 0; y < h; ++y) {
            for (int64_t i = y * w; i < (y + 1) * w; ++i)
                o[i] = static_cast<float>(comp && kill[comp[i]] ? value : v[frame[i]]);
        }
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
                      int64_t w, const int64_t* offsets, const int32_t* components,
                      const int64_t* n_components, double energy_fraction, double value,
                      double* out) {
    const int64_t hw = h * w;
#pragma omp parallel
    {
        std::vector<double> energy, size, sums;
        std::vector<int64_t> counts, part;
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
                count_labels(frame, hw, n_f, counts.data(), part);
                repeated_sums(v, counts.data(), n_f, sums.data());
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

template <typename Index>
void propagate(const Index* indptr, const Index* indices, const double* weights, int64_t k,
               const int64_t* offsets, int64_t n, int64_t iterations, double* votes) {
    std::vector<double> next(k);
    for (int64_t it = 0; it < iterations; ++it) {
#pragma omp parallel
        {
            // scipy's csr_matvec: each row's products summed in storage order from +0.0.
#pragma omp for schedule(static)
            for (int64_t i = 0; i < k; ++i) {
                double sum = 0.0;
                for (Index j = indptr[i]; j < indptr[i + 1]; ++j)
                    sum += weights[j] * votes[indices[j]];
                next[i] = sum;
            }
#pragma omp for schedule(static)
            for (int64_t f = 0; f < n; ++f) {
                // np.maximum.reduceat over the frame (NaN wins, as np.maximum lets it),
                // then the division by np.where(peak > 0, peak, 1.0).
                double peak = next[offsets[f]];
                for (int64_t i = offsets[f] + 1; i < offsets[f + 1]; ++i)
                    if (!(peak >= next[i] || peak != peak)) peak = next[i];
                const double d = peak > 0 ? peak : 1.0;
                for (int64_t i = offsets[f]; i < offsets[f + 1]; ++i) votes[i] = next[i] / d;
            }
        }
    }
}

template void propagate(const int32_t*, const int32_t*, const double*, int64_t, const int64_t*,
                        int64_t, int64_t, double*);
template void propagate(const int64_t*, const int64_t*, const double*, int64_t, const int64_t*,
                        int64_t, int64_t, double*);

}  // namespace fastunlc::regions
