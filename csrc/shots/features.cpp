// Shot features: a frame's six histograms from its distinct colours.
//
// The histograms are counts, so they are sums over the frame's distinct colours weighted
// by their pixel counts; the CIELAB conversion (three cube roots per colour) runs once per
// distinct colour, found with an open-addressing hash table that starts small enough to
// stay in L2 and doubles when half full. The conversion here sums the matrix product
// left to right where scikit-image's goes through BLAS, so CIELAB values may differ from
// skimage.color.rgb2lab by a few ulp (with the cube root below); what the histograms keep
// is the bin, and with 40 bins (the reference) every one of the 2^24 colours falls in
// skimage's bin (tests/test_shots.py checks all of them).
#include "shots/features.h"

#include "histogram.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace fastunlc::shots {

namespace {

constexpr double kRanges[6][2] = {{0.0, 255.0},   {0.0, 255.0},    {0.0, 255.0},
                                  {0.0, 100.0},   {-128.0, 127.0}, {-128.0, 127.0}};
constexpr uint32_t kEmpty = 0xFFFFFFFFu;  // no 24-bit colour code has this value
constexpr int kInitialBits = 15;

// The cube root of t in (0.008856, 1.0002], the range of CIELAB's f on sRGB colours: a cubic
// fitted to it (within 30 %) and three Halley steps, each cubing the relative error, to
// within 1.5 ulp of the correctly rounded root. Branch-free, so the compiler runs four
// colours per AVX2 register, where the C library's cbrt takes one at a time.
inline double cube_root(double t) {
    double y = 0.24853328 + t * (2.18812269 + t * (-2.91420222 + t * 1.51759774));
    for (int step = 0; step < 3; ++step) {
        const double y3 = y * y * y;
        y = y * (y3 + 2.0 * t) / (2.0 * y3 + t);
    }
    return y;
}

// CIELAB's f of xyz2lab.
inline double lab_f(double t) {
    const double root = cube_root(t > 0.008856 ? t : 0.008856);
    return t > 0.008856 ? root : 7.787 * t + 16.0 / 116.0;
}

double exact_lab_f(double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116.0; }

// CIELAB's L, a and b from f of X, Y and Z.
void lab_values(double fx, double fy, double fz, double* values) {
    values[0] = 116.0 * fy - 16.0;
    values[1] = 500.0 * (fx - fy);
    values[2] = 200.0 * (fy - fz);
}

// Whether an L, a or b value lies within 1e-9 of one of its channel's edges (the range's
// ends included), where the fast root's last bits could decide the bin.
bool near_an_edge(const double* values, const double* edges, int bins) {
    constexpr double kMargin = 1e-9;
    for (int c = 3; c < 6; ++c) {
        const double* e = edges + c * (bins + 1);
        const double x = values[c - 3];
        const double position = (x - e[0]) / (e[bins] - e[0]) * bins;
        const int i = position < 0 ? 0 : position > bins ? bins : static_cast<int>(position);
        for (int j = (i > 0 ? i - 1 : 0); j <= (i < bins ? i + 1 : bins); ++j)
            if (std::fabs(x - e[j]) < kMargin) return true;
    }
    return false;
}

// Distinct 24-bit colour codes with their pixel counts: a code and its count share a slot,
// so a probe touches one cache line.
class ColourCounts {
public:
    struct Slot {
        uint32_t code;
        uint32_t count;
    };

    ColourCounts() { reset(kInitialBits); }

    void add(uint32_t code) {
        uint32_t s = index(code);
        while (slots_[s].code != code) {
            if (slots_[s].code == kEmpty) {
                slots_[s] = {code, 1};
                if (++size_ * 2 > slots_.size()) grow();
                return;
            }
            s = (s + 1) & mask_;
        }
        ++slots_[s].count;
    }

    // The distinct colours, in no particular order.
    void collect(std::vector<Slot>& out) const {
        out.clear();
        for (const Slot& slot : slots_)
            if (slot.code != kEmpty) out.push_back(slot);
    }

    void clear() {
        if (bits_ > kInitialBits) {
            reset(kInitialBits);
        } else {
            std::fill(slots_.begin(), slots_.end(), Slot{kEmpty, 0});
            size_ = 0;
        }
    }

private:
    uint32_t index(uint32_t code) const {
        return static_cast<uint32_t>((code * 2654435761u) >> (32 - bits_));  // Knuth
    }

    void reset(int bits) {
        bits_ = bits;
        mask_ = (1u << bits) - 1;
        slots_.assign(std::size_t{1} << bits, Slot{kEmpty, 0});
        size_ = 0;
    }

    void grow() {
        std::vector<Slot> old = std::move(slots_);
        const std::size_t size = size_;
        reset(bits_ + 1);
        for (const Slot& slot : old) {
            if (slot.code == kEmpty) continue;
            uint32_t t = index(slot.code);
            while (slots_[t].code != kEmpty) t = (t + 1) & mask_;
            slots_[t] = slot;
        }
        size_ = size;
    }

    int bits_ = 0;
    uint32_t mask_ = 0;
    std::size_t size_ = 0;
    std::vector<Slot> slots_;
};

// Per thread: the hash table and the frame's distinct colours with their CIELAB f values.
struct Workspace {
    ColourCounts table;
    std::vector<ColourCounts::Slot> colours;
    std::vector<double> f[3];
};

void frame_histograms(const uint8_t* rgb, int64_t pixels, const LabConversion& lab,
                      const double* edges, int bins, const int (*level_bins)[256],
                      Workspace& work, double* out) {
    std::vector<double> hist(6 * static_cast<std::size_t>(bins), 0.0);
    work.table.clear();
    for (int64_t p = 0; p < pixels; ++p) {
        const uint8_t* px = rgb + 3 * p;
        work.table.add((uint32_t{px[0]} << 16) | (uint32_t{px[1]} << 8) | px[2]);
    }
    work.table.collect(work.colours);
    const std::size_t k = work.colours.size();
    const double* m = lab.xyz_from_rgb;
    // CIELAB's f of X, Y and Z for every colour first: the cube roots are most of the time,
    // and a loop of nothing else over contiguous values runs them four to a register.
    for (int c = 0; c < 3; ++c) {
        work.f[c].resize(k);
        double* f = work.f[c].data();
        for (std::size_t i = 0; i < k; ++i) {
            const uint32_t code = work.colours[i].code;
            f[i] = (lab.linear[code >> 16] * m[3 * c] + lab.linear[(code >> 8) & 255] * m[3 * c + 1] +
                    lab.linear[code & 255] * m[3 * c + 2]) /
                   lab.white[c];
        }
#pragma omp simd
        for (std::size_t i = 0; i < k; ++i) f[i] = lab_f(f[i]);
    }
    for (std::size_t i = 0; i < k; ++i) {
        const uint32_t code = work.colours[i].code;
        const double count = work.colours[i].count;
        const int level[3] = {static_cast<int>(code >> 16), static_cast<int>((code >> 8) & 255),
                              static_cast<int>(code & 255)};
        for (int c = 0; c < 3; ++c) {
            const int b = level_bins[c][level[c]];
            if (b >= 0) hist[c * bins + b] += count;
        }
        double values[3];
        lab_values(work.f[0][i], work.f[1][i], work.f[2][i], values);
        if (near_an_edge(values, edges, bins)) {
            // The fast root is within 1.5 ulp of the C library's, which could move a value
            // across an edge (white's L = 100 is one): redo this colour with the library's.
            double t[3];
            for (int c = 0; c < 3; ++c)
                t[c] = (lab.linear[level[0]] * m[3 * c] + lab.linear[level[1]] * m[3 * c + 1] +
                        lab.linear[level[2]] * m[3 * c + 2]) /
                       lab.white[c];
            lab_values(exact_lab_f(t[0]), exact_lab_f(t[1]), exact_lab_f(t[2]), values);
        }
        for (int c = 3; c < 6; ++c) {
            const int bin = bin_index(values[c - 3], kRanges[c][0], kRanges[c][1],
                                      edges + c * (bins + 1), bins);
            if (bin >= 0) hist[c * bins + bin] += count;
        }
    }
    // The reference's normalisation, to the letter: divide by sum + (sum < 1e-4).
    for (int c = 0; c < 6; ++c) {
        double s = 0.0;
        for (int b = 0; b < bins; ++b) s += hist[c * bins + b];
        const double d = s + (s < 1e-4 ? 1.0 : 0.0);
        for (int b = 0; b < bins; ++b) out[c * bins + b] = hist[c * bins + b] / d;
    }
}

}  // namespace

void colour_histograms(const uint8_t* frames, int64_t n, int64_t pixels, const LabConversion& lab,
                       const double* edges, int bins, int n_threads, double* out) {
    int level_bins[3][256];
    for (int c = 0; c < 3; ++c)
        for (int v = 0; v < 256; ++v)
            level_bins[c][v] = bin_index(v, kRanges[c][0], kRanges[c][1], edges + c * (bins + 1),
                                         bins);
    const int threads = n_threads > 0 ? n_threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads)
    {
        Workspace work;
#pragma omp for schedule(dynamic, 1)
        for (int64_t f = 0; f < n; ++f)
            frame_histograms(frames + 3 * pixels * f, pixels, lab, edges, bins, level_bins,
                             work, out + 6 * static_cast<int64_t>(bins) * f);
    }
}

}  // namespace fastunlc::shots
