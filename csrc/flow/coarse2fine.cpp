// Coarse-to-fine variational optical flow: the Brox et al. (2004) energy with Ce Liu's
// solver, as the uNLC reference runs it through pyflow.
//
// Energy: sum over pixels of psi(|F2(x + w) - F1(x)|^2) over five feature channels
// (grey, its x and y derivatives, G - R, G - B) plus alpha * psi(|grad u|^2 + |grad v|^2),
// with psi(s^2) = sqrt(s^2 + 1e-6). It is minimised on a Gaussian pyramid from coarse to
// fine. At each level, every outer fixed-point iteration linearises the data term around
// the current flow (image derivatives of a blend of F1 and the warped F2), freezes the
// robust weights (the inner iterations), and solves the resulting sparse 2x2-block
// linear system for the increment (du, dv) by lexicographic SOR. Floating-point
// operations follow the reference's order except in the SOR update (see SorCoeffs), so
// the result agrees with pyflow and with fastunlc/reference/flow.py to rounding.
//
// Speed. All pairs of a shot have the same size and run the same steps, so the solver is
// written once for an element type T and run with T = Pack (lanes.h): kPackWidth pairs
// side by side, one per SIMD lane, each lane doing exactly the arithmetic of T = double on
// its own pair (the only data-dependent branches, the warp's "outside the image" test and
// the silent-channel switch, become per-lane selects). The SOR sweep, a recurrence along
// each row, then advances kPackWidth pairs for the price of one; its sweeps are run as a
// wavefront (see sor_sweeps) so that the packed coefficients stay in the L2 cache.
// Measured on 100 x 100 pairs (AVX-512, one core): 0.006 s a pair packed, 0.023 s one
// pair at a time; the SOR sweeps take half of it.
//
// The SOR update (sor_row) is 18 multiplies and 12 adds per pixel and lane, no division,
// with 16 vector loads and 2 stores; the recurrence along the row is one multiply and one
// add (6 cycles on Zen 4), so it is not the bound. On Zen 4 (AVX-512 on 256-bit units,
// 2.6 GHz, no FMA here) a 512-bit multiply issues once a cycle: 18 cycles a pixel and
// pack is the floor, reached with the grid in L1 (17-19 cycles measured); at 100 x 100
// the wavefront from L2 takes 24 (about 65% of the FMA peak of 16 float64 flop/cycle).
// Precision::kFloat32 runs the same code with T = Pack32 (twice the lanes, float): the
// sweep takes the same cycles per pixel and pack, so half the time per pair; the warp
// samples F2 in double lane by lane and the pyramids stay double, so a pair as a whole
// takes about 0.7 of its float64 time.

// Every product is rounded before it is added (no fused multiply-add), here and in the
// headers below: whether a compiler fuses an expression differs between its scalar and
// its vector code, so fusing would make a pair's flow depend on whether it ran in a pack.
// Without it, every lane of every path computes exactly the same IEEE operations.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "flow/coarse2fine.h"

#include <omp.h>
#if __has_include(<unistd.h>)
#include <unistd.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "flow/filters.h"
#include "flow/lanes.h"

namespace fastunlc::flow {
namespace {

constexpr int kFeatures = 5;            // grey, d(grey)/dx, d(grey)/dy, G - R, G - B
constexpr double kEpsilon = 1e-3;       // Charbonnier epsilon of both penalties
constexpr double kOmega = 1.8;          // SOR over-relaxation
constexpr double kIncrementPrior = 0.05;  // extra diagonal of the system, in units of alpha
// A feature channel whose mean absolute residual is below kSilentChannel is left out of
// the data term; the residual statistic starts at kInitialResidual, ignores residuals of 0
// or >= kMaxResidual, and is kNoResidual when no residual counts.
constexpr double kSilentChannel = 1e-20;
constexpr double kInitialResidual = 0.02;
constexpr double kNoResidual = 0.001;
constexpr double kMaxResidual = 1e6;
constexpr double kDerivative[5] = {1.0 / 12, -8.0 / 12, 0.0 / 12, 8.0 / 12, -1.0 / 12};
constexpr double kPresmooth[5] = {0.02, 0.11, 0.74, 0.11, 0.02};
constexpr double kBlendFirst = 0.4;   // weights of F1 and warped F2 in the blend whose
constexpr double kBlendSecond = 0.6;  // derivatives linearise the data term
constexpr double kLuma[3] = {0.299, 0.587, 0.114};
// Bytes of SOR coefficients, weights and increments that a wavefront of sweeps keeps in
// flight: 5/8 of the L2 cache, 512 KiB where its size is not known. (Measured with packs
// of 8 on a 1 MiB L2: 512-640 KiB is best; less re-reads more from L3, more evicts what
// the next sweep needs.)
std::size_t sor_cache_bytes() {
    long l2 = 0;
#ifdef _SC_LEVEL2_CACHE_SIZE
    l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
    const std::size_t bytes = l2 > 0 ? static_cast<std::size_t>(l2) / 8 * 5 : 512 * 1024;
    return std::clamp<std::size_t>(bytes, 128 * 1024, 4 * 1024 * 1024);
}
// A remainder of fewer pairs than this (after the full packs of Wide) is solved one pair
// at a time; from this many on, in one pack with idle lanes. (Measured on 100 x 100 pairs:
// a pack of 8 doubles costs as much as 2.4 single pairs, a pack of 4 as 1.6; a pack of 16
// floats as 5.4 single float pairs, as its warp samples lane by lane. A pack of 8 floats
// (AVX2) is not measured and is taken to be like a pack of 8 doubles.)
template <class Wide>
constexpr int min_pack_fill() {
    if constexpr (std::is_same_v<Wide, Pack32>) {
        return kPack32Width == 16 ? 6 : 3;
    } else {
        return kPackWidth == 8 ? 3 : 2;
    }
}

std::vector<double> gaussian_taps(double sigma, int radius) {
    std::vector<double> taps(2 * radius + 1);
    const double two_var = sigma * sigma * 2;
    double sum = 0.0;
    for (int i = -radius; i <= radius; ++i) {
        taps[i + radius] = std::exp(-static_cast<double>(i * i) / two_var);
        sum += taps[i + radius];
    }
    for (double& t : taps) t /= sum;
    return taps;
}

// Everything about the pyramid that does not depend on the frame.
struct Plan {
    std::vector<PyramidLevel> levels;
    std::vector<std::vector<double>> taps;  // Gaussian taps of each level (none for level 0)
    std::vector<std::size_t> offset;        // start of each level in a frame's feature buffer
    std::size_t frame_size = 0;             // doubles in one frame's feature pyramid

    Plan(int height, int width, double ratio, int min_width)
        : levels(pyramid_levels(height, width, ratio, min_width)) {
        for (std::size_t l = 0; l < levels.size(); ++l) {
            const PyramidLevel& level = levels[l];
            taps.push_back(l == 0 ? std::vector<double>{}
                                  : gaussian_taps(level.sigma, level.radius));
            offset.push_back(frame_size);
            frame_size += static_cast<std::size_t>(level.height) * level.width * kFeatures;
        }
    }
    int height(int l) const { return levels[l].height; }
    int width(int l) const { return levels[l].width; }
    int n_levels() const { return static_cast<int>(levels.size()); }
};

// Per-thread buffers for building pyramids.
struct PyramidScratch {
    std::vector<std::vector<double>> rgb;  // RGB of each level (level 0 is the frame itself)
    std::vector<double> smooth, tmp, grey, grey_x, grey_y;

    explicit PyramidScratch(const Plan& plan) : rgb(plan.n_levels()) {
        const std::size_t pixels = static_cast<std::size_t>(plan.height(0)) * plan.width(0);
        for (int l = 1; l < plan.n_levels(); ++l)
            rgb[l].resize(static_cast<std::size_t>(plan.height(l)) * plan.width(l) * 3);
        smooth.resize(pixels * 3);
        tmp.resize(pixels * 3);
        grey.resize(pixels);
        grey_x.resize(pixels);
        grey_y.resize(pixels);
    }
};

// Feature image (h, w, 5) of an RGB level.
void compute_features(const double* rgb, int h, int w, PyramidScratch& s, double* out) {
    const std::size_t pixels = static_cast<std::size_t>(h) * w;
    for (std::size_t q = 0; q < pixels; ++q) {
        const double* px = rgb + 3 * q;
        s.grey[q] = px[0] * kLuma[0] + px[1] * kLuma[1] + px[2] * kLuma[2];
    }
    correlate_x<1>(s.grey.data(), s.grey_x.data(), h, w, kDerivative, 2);
    correlate_y<1>(s.grey.data(), s.grey_y.data(), h, w, kDerivative, 2);
    for (std::size_t q = 0; q < pixels; ++q) {
        const double* px = rgb + 3 * q;
        double* f = out + kFeatures * q;
        f[0] = s.grey[q];
        f[1] = s.grey_x[q];
        f[2] = s.grey_y[q];
        f[3] = px[1] - px[0];
        f[4] = px[1] - px[2];
    }
}

void build_pyramid(const Plan& plan, const double* frame, PyramidScratch& s, double* out) {
    for (int l = 0; l < plan.n_levels(); ++l) {
        const PyramidLevel& level = plan.levels[l];
        const double* rgb = frame;
        if (l > 0) {
            const bool from_frame = level.source < 0;
            const double* src = from_frame ? frame : s.rgb[level.source].data();
            const int sh = plan.height(from_frame ? 0 : level.source);
            const int sw = plan.width(from_frame ? 0 : level.source);
            separable<3>(src, s.smooth.data(), s.tmp.data(), sh, sw, plan.taps[l].data(),
                         level.radius);
            resample<3>(s.smooth.data(), sh, sw, s.rgb[l].data(), level.height, level.width,
                        level.scale, level.scale);
            rgb = s.rgb[l].data();
        }
        compute_features(rgb, level.height, level.width, s, out + plan.offset[l]);
    }
}

// One pixel's SOR update, with the reference's per-pixel 2x2 system
//   (axx + a0 + c) du + axy dv = bx + alpha * sum_n w_n du_n
//   axy du + (ayy + a0 + c) dv = by + alpha * sum_n w_n dv_n
// (a0 = 0.05 alpha, c = alpha * sum_n w_n over the 4-neighbours n) folded into
//   du <- (1 - omega) du + base_u + couple_u dv + sum_n (ka_u w_n) du_n
//   dv <- (1 - omega) dv + base_v + couple_v du + sum_n (ka_v w_n) dv_n
// with k_u = omega / (axx + a0 + c): base_u = k_u bx, couple_u = -k_u axy,
// ka_u = k_u alpha (likewise for v). This is the reference's update with its products
// distributed, so that each pixel waits on its left neighbour through one product and
// one sum; it changes the result only by rounding. The edge weights w_n are the
// smoothness weights phi (left: phi of the left pixel, right and down: the pixel's own,
// up: the upper pixel's) and are not stored here: the sweep streams these coefficients
// from the L2 cache, and every byte less per pixel is time saved.
template <class T>
struct SorCoeffs {
    T base_u, couple_u, ka_u;
    T base_v, couple_v, ka_v;
};

// Per-thread buffers for solving one pair (T = double) or one pack of pairs (T = Pack),
// sized for the finest level. The increments (du, dv interleaved) live on a grid padded
// by one zero pixel on every side, so the SOR sweep needs no border tests: a missing
// neighbour has a zero coefficient.
template <class T>
struct Workspace {
    std::vector<T> u, v, u_next, v_next;              // h * w
    std::vector<T> phi;                               // (h + 1) * w: a row of zeros, then
                                                      // the smoothness weights
    std::vector<T> f1, warped, smooth1;               // h * w * 5
    std::vector<T> ring_smooth, ring_blend, ring_it;  // 5, 5, 3 rows of w * 5 in flight
    std::vector<T> row, ix_row, iy_row;               // w * 5
    std::vector<SorCoeffs<T>> sor;                    // h * w
    std::vector<T> inc;                               // (h + 2) * (w + 2) * 2
    std::size_t cache_bytes = sor_cache_bytes();      // see sor_sweeps

    Workspace(int h, int w) {
        const std::size_t pixels = static_cast<std::size_t>(h) * w;
        for (auto* b : {&u, &v, &u_next, &v_next}) b->resize(pixels);
        phi.resize(pixels + w);
        for (auto* b : {&f1, &warped, &smooth1}) b->resize(pixels * kFeatures);
        for (auto* b : {&ring_smooth, &ring_blend}) b->resize(5 * w * kFeatures);
        ring_it.resize(3 * w * kFeatures);
        for (auto* b : {&row, &ix_row, &iy_row}) b->resize(w * kFeatures);
        sor.resize(pixels);
        inc.resize(static_cast<std::size_t>(h + 2) * (w + 2) * 2);
    }
};

// dst[e] gets element e of lane l's source in lane l.
template <class T>
void interleave(const double* const* src, std::size_t n, T* dst) {
    for (std::size_t e = 0; e < n; ++e)
        for (int l = 0; l < lanes_of<T>; ++l) set_lane(dst[e], l, src[l][e]);
}

#if FASTUNLC_PACK_WIDTH == 8
// The lanes of x[0 .. 7], channels 0 .. 4: out[k][l] = x[l][k], by shuffles.
inline void transpose_features(const Pack x[8], Pack out[kFeatures]) {
#if defined(__clang__) || __GNUC__ >= 12
#define FASTUNLC_SHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define FASTUNLC_SHUFFLE(a, b, ...) __builtin_shuffle(a, b, PackMask{__VA_ARGS__})
#endif
    Pack low[4], high[4];  // pairs of lanes: channels 0-3 and channel 4 interleaved
    for (int p = 0; p < 4; ++p) {
        low[p] = FASTUNLC_SHUFFLE(x[2 * p], x[2 * p + 1], 0, 8, 1, 9, 2, 10, 3, 11);
        high[p] = FASTUNLC_SHUFFLE(x[2 * p], x[2 * p + 1], 4, 12, 5, 13, 6, 14, 7, 15);
    }
    Pack c01[2], c23[2], c4[2];  // quads of lanes: channels (0, 1), (2, 3) and 4
    for (int g = 0; g < 2; ++g) {
        c01[g] = FASTUNLC_SHUFFLE(low[2 * g], low[2 * g + 1], 0, 1, 8, 9, 2, 3, 10, 11);
        c23[g] = FASTUNLC_SHUFFLE(low[2 * g], low[2 * g + 1], 4, 5, 12, 13, 6, 7, 14, 15);
        c4[g] = FASTUNLC_SHUFFLE(high[2 * g], high[2 * g + 1], 0, 1, 8, 9, 2, 3, 10, 11);
    }
    out[0] = FASTUNLC_SHUFFLE(c01[0], c01[1], 0, 1, 2, 3, 8, 9, 10, 11);
    out[1] = FASTUNLC_SHUFFLE(c01[0], c01[1], 4, 5, 6, 7, 12, 13, 14, 15);
    out[2] = FASTUNLC_SHUFFLE(c23[0], c23[1], 0, 1, 2, 3, 8, 9, 10, 11);
    out[3] = FASTUNLC_SHUFFLE(c23[0], c23[1], 4, 5, 6, 7, 12, 13, 14, 15);
    out[4] = FASTUNLC_SHUFFLE(c4[0], c4[1], 0, 1, 2, 3, 8, 9, 10, 11);
#undef FASTUNLC_SHUFFLE
}

// F2 of 8 lanes (f2[l]: lane l's frame) sampled at (x, y) as warp_row (below) samples
// them, without per-lane branches: the sample points and weights are computed for all
// lanes at once (the arithmetic of sample_bilinear, lane by lane), each lane reads its 4
// corners of 5 channels with one 8-double load per corner (the 3 extra doubles are
// ignored; the pyramids are padded so that the load stays in the buffer), and the lanes'
// results are transposed into out[k] = channel k. `outside` gets the lanes whose point
// leaves the image. (AVX-512 gathers instead of the per-lane loads measured slower.)
inline void sample_pack8(const double* const* f2, int h, int w, Pack x, Pack y,
                         Pack out[kFeatures], PackMask& outside) {
    const PackMask zero{}, one = zero + 1, last_x = zero + (w - 1), last_y = zero + (h - 1);
    auto clamp = [&](PackMask k, PackMask last) { return k < 0 ? zero : (k > last ? last : k); };
    // std::min(f, 1.0) and std::max(f, 0.0), exactly as they choose.
    auto fraction = [](Pack f) {
        const Pack one_d = splat<Pack>(1.0), zero_d{};
        f = select(one_d < f, one_d, f);
        return select(f < zero_d, zero_d, f);
    };
    alignas(64) std::int64_t corner[4][8];
    alignas(64) double weight[4][8];
    outside = (x < 0.0) | (x > static_cast<double>(w - 1)) | (y < 0.0) |
              (y > static_cast<double>(h - 1));
    const PackMask x0 = __builtin_convertvector(x, PackMask);
    const PackMask y0 = __builtin_convertvector(y, PackMask);
    const Pack fx = fraction(x - __builtin_convertvector(x0, Pack));
    const Pack fy = fraction(y - __builtin_convertvector(y0, Pack));
    const PackMask xs[2] = {clamp(x0, last_x), clamp(x0 + one, last_x)};
    const PackMask ys[2] = {clamp(y0, last_y), clamp(y0 + one, last_y)};
    const Pack wx[2] = {1.0 - fx, fx};
    const Pack wy[2] = {1.0 - fy, fy};
    for (int m = 0; m < 2; ++m) {
        for (int n = 0; n < 2; ++n) {
            const PackMask c = (ys[n] * w + xs[m]) * kFeatures;
            const Pack s = wx[m] * wy[n];
            __builtin_memcpy(corner[2 * m + n], &c, sizeof(c));
            __builtin_memcpy(weight[2 * m + n], &s, sizeof(s));
        }
    }
    Pack sampled[8];  // lane l: its 5 channels (and 3 ignored values)
    for (int l = 0; l < 8; ++l) {
        Pack acc{};
        for (int c = 0; c < 4; ++c) {
            Pack p;
            __builtin_memcpy(&p, f2[l] + corner[c][l], sizeof(p));
            acc += p * weight[c][l];
        }
        sampled[l] = acc;
    }
    transpose_features(sampled, out);
}

// warp_row for a pack of 8: lanes whose point leaves the image take F1.
void warp_row_pack8(const Pack* f1, const double* const* f2, const Pack* u, const Pack* v,
                    int h, int w, int i, Pack* warped) {
    for (int j = 0; j < w; ++j) {
        const std::size_t q = static_cast<std::size_t>(i) * w + j;
        Pack out[kFeatures];
        PackMask outside;
        sample_pack8(f2, h, w, static_cast<double>(j) + u[q], static_cast<double>(i) + v[q], out,
                     outside);
        for (int k = 0; k < kFeatures; ++k)
            warped[kFeatures * q + k] = select(outside, f1[kFeatures * q + k], out[k]);
    }
}

// warp_row for a Pack32 of 16 lanes, with warp_row's arithmetic: each half of the lanes
// is widened to a Pack of 8 doubles, sampled in double as by warp_row_pack8, and rounded.
void warp_row_pack32(const Pack32* f1, const double* const* f2, const Pack32* u,
                     const Pack32* v, int h, int w, int i, Pack32* warped) {
    typedef float Half __attribute__((vector_size(32)));
    auto half = [](const Pack32& a, int which) {
        const Half lanes = which == 0
                               ? __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7)
                               : __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
        return __builtin_convertvector(lanes, Pack);
    };
    for (int j = 0; j < w; ++j) {
        const std::size_t q = static_cast<std::size_t>(i) * w + j;
        Half rounded[2][kFeatures];
        for (int g = 0; g < 2; ++g) {
            Pack out[kFeatures];
            PackMask outside;
            sample_pack8(f2 + 8 * g, h, w, static_cast<double>(j) + half(u[q], g),
                         static_cast<double>(i) + half(v[q], g), out, outside);
            for (int k = 0; k < kFeatures; ++k) {
                // F1 is float already: widening and rounding it back is exact.
                const Pack chosen = select(outside, half(f1[kFeatures * q + k], g), out[k]);
                rounded[g][k] = __builtin_convertvector(chosen, Half);
            }
        }
        for (int k = 0; k < kFeatures; ++k)
            warped[kFeatures * q + k] = __builtin_shufflevector(
                rounded[0][k], rounded[1][k], 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    }
}
#endif

// Row i of warped = F2 sampled at (x + u, y + v), or F1 where that point leaves the image.
// F2 is given per lane (f2[l]: that lane's frame), as the sample points differ between
// lanes.
template <class T>
void warp_row(const T* f1, const double* const* f2, const T* u, const T* v, int h, int w, int i,
              T* warped) {
#if FASTUNLC_PACK_WIDTH == 8
    if constexpr (std::is_same_v<T, Pack>) {
        warp_row_pack8(f1, f2, u, v, h, w, i, warped);
        return;
    }
    if constexpr (std::is_same_v<T, Pack32>) {
        warp_row_pack32(f1, f2, u, v, h, w, i, warped);
        return;
    }
#endif
    for (int j = 0; j < w; ++j) {
        const std::size_t q = static_cast<std::size_t>(i) * w + j;
        for (int l = 0; l < lanes_of<T>; ++l) {
            const double x = j + lane(u[q], l);
            const double y = i + lane(v[q], l);
            double out[kFeatures];
            if (x < 0 || x > w - 1 || y < 0 || y > h - 1) {
                for (int k = 0; k < kFeatures; ++k) out[k] = lane(f1[kFeatures * q + k], l);
            } else {
                sample_bilinear<kFeatures>(f2[l], h, w, x, y, out);
            }
            for (int k = 0; k < kFeatures; ++k) set_lane(warped[kFeatures * q + k], l, out[k]);
        }
    }
}

// Adds the increments (inc, padded) to the flow (u, v), warps F2 with it and sets `noise`
// to the mean absolute residual |F1 - warped F2| of each channel, over the residuals in
// (0, kMaxResidual). Row by row, so that each row is still in cache for the next step.
template <class T>
__attribute__((noinline)) void update_and_warp(const T* f1, const double* const* f2,
                                               const T* inc, int h, int w, T* u, T* v,
                                               T* warped, T noise[kFeatures]) {
    using S = element_t<T>;
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);
    // Adding a zero instead of skipping a residual leaves the (never -0) sums unchanged;
    // each channel is summed in pixel order, as in the reference.
    T total[kFeatures] = {}, count[kFeatures] = {};
    for (int i = 0; i < h; ++i) {
        const std::size_t first = static_cast<std::size_t>(i) * w;
        const T* d = inc + (i + 1) * stride + 2;
        for (std::size_t q = first; q < first + w; ++q, d += 2) {
            u[q] += d[0];
            v[q] += d[1];
        }
        warp_row(f1, f2, u, v, h, w, i, warped);
        for (std::size_t q = first; q < first + w; ++q) {
            for (int k = 0; k < kFeatures; ++k) {
                const T r = abs_lanes(f1[kFeatures * q + k] - warped[kFeatures * q + k]);
                const auto counted = (r > S{0}) & (r < S(kMaxResidual));
                total[k] += select(counted, r, T{});
                count[k] += select(counted, splat<T>(1.0), T{});
            }
        }
    }
    for (int k = 0; k < kFeatures; ++k)
        noise[k] = select(count[k] > S{0}, total[k] / count[k], splat<T>(kNoResidual));
}

// -div(phi grad f) at pixel (i, j): phi of a pixel weighs the edges to its right and below.
template <class T>
inline T weighted_laplacian(const T* f, const T* phi, int h, int w, int i, int j) {
    const std::size_t q = static_cast<std::size_t>(i) * w + j;
    T acc{};
    if (j < w - 1) acc -= (f[q + 1] - f[q]) * phi[q];
    if (j > 0) acc += (f[q] - f[q - 1]) * phi[q - 1];
    if (i < h - 1) acc -= (f[q + w] - f[q]) * phi[q];
    if (i > 0) acc += (f[q] - f[q - w]) * phi[q - w];
    return acc;
}

// Robust weight of the smoothness term on row i, from the flow u + du (du: the padded
// increments).
template <class T>
void smoothness_row(const T* u, const T* v, const T* inc, int h, int w, int i, T* phi) {
    using S = element_t<T>;
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);
    const S eps2 = static_cast<S>(std::pow(kEpsilon, 2));
    const T* d = inc + (i + 1) * stride + 2;
    for (int j = 0; j < w; ++j, d += 2) {
        const std::size_t q = static_cast<std::size_t>(i) * w + j;
        T ux{}, uy{}, vx{}, vy{};
        if (j < w - 1) {
            ux = (u[q + 1] + d[2]) - (u[q] + d[0]);
            vx = (v[q + 1] + d[3]) - (v[q] + d[1]);
        }
        if (i < h - 1) {
            uy = (u[q + w] + d[stride]) - (u[q] + d[0]);
            vy = (v[q + w] + d[stride + 1]) - (v[q] + d[1]);
        }
        phi[q] = S(0.5) / sqrt_lanes(ux * ux + uy * uy + vx * vx + vy * vy + eps2);
    }
}

// The 2x2 system of each pixel of row i, from the data term's derivatives along x (ix),
// y (iy) and time (it) on that row: the robust weights of the data term, averaged over the
// feature channels; `silent[k]` marks the lanes whose channel k is left out.
template <class T, class Mask>
void build_row(const T* ix, const T* iy, const T* it, const T* u, const T* v, const T* phi,
               const T* inc, const Mask silent[kFeatures], int h, int w, int i, double alpha,
               SorCoeffs<T>* sor) {
    using S = element_t<T>;
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);
    const S eps2 = static_cast<S>(std::pow(kEpsilon, 2));
    const S prior = static_cast<S>(alpha * kIncrementPrior);
    const S alpha_s = static_cast<S>(alpha), omega = static_cast<S>(kOmega);
    const S features = kFeatures;
    const T* d = inc + (i + 1) * stride + 2;
    for (int j = 0; j < w; ++j, d += 2) {
        const std::size_t q = static_cast<std::size_t>(i) * w + j;
        T sxx{}, sxy{}, syy{}, sxt{}, syt{};
        for (int k = 0; k < kFeatures; ++k) {
            const T gx = ix[kFeatures * j + k];
            const T gy = iy[kFeatures * j + k];
            const T gt = it[kFeatures * j + k];
            T r = gt + gx * d[0] + gy * d[1];
            r *= r;
            const T psi = select(silent[k], T{}, S{1} / (S{2} * sqrt_lanes(r + eps2)));
            sxx += psi * gx * gx;
            sxy += psi * gx * gy;
            syy += psi * gy * gy;
            sxt += psi * gx * gt;
            syt += psi * gy * gt;
        }
        const T axx = sxx / features, axy = sxy / features;
        const T ayy = syy / features;
        const T bx = -(sxt / features) - alpha_s * weighted_laplacian(u, phi, h, w, i, j);
        const T by = -(syt / features) - alpha_s * weighted_laplacian(v, phi, h, w, i, j);
        // Edge weights to the left, right, up and down neighbours (0 if none).
        const T wn[4] = {j > 0 ? phi[q - 1] : T{}, j < w - 1 ? phi[q] : T{},
                         i > 0 ? phi[q - w] : T{}, i < h - 1 ? phi[q] : T{}};
        const T coeff = (wn[0] + wn[1] + wn[2] + wn[3]) * alpha_s;
        const T ku = omega / (axx + prior + coeff);
        const T kv = omega / (ayy + prior + coeff);
        SorCoeffs<T>& c = sor[q];
        c.base_u = ku * bx;
        c.couple_u = -(ku * axy);
        c.ka_u = ku * alpha_s;
        c.base_v = kv * by;
        c.couple_v = -(kv * axy);
        c.ka_v = kv * alpha_s;
    }
}

// The linear system of the increment around the current flow (the smoothness weights
// `phi` and the SOR coefficients): the data term is linearised with the derivatives of the
// blend of F1 and the warped F2 after both are smoothed. One pass over the rows; the
// smoothed rows, the blend and the derivatives stay in small ring buffers (the y
// derivative of row i needs blend rows i - 2 .. i + 2), so that only the weights and
// coefficients reach memory.
template <class T, class Mask>
__attribute__((noinline)) void build_system(Workspace<T>& ws, T* phi, const T* inc,
                                            const Mask silent[kFeatures], int h, int w,
                                            double alpha) {
    using S = element_t<T>;
    const std::size_t line = static_cast<std::size_t>(w) * kFeatures;
    auto blend_row = [&](int i) { return ws.ring_blend.data() + (i % 5) * line; };
    auto it_row = [&](int i) { return ws.ring_it.data() + (i % 3) * line; };
    auto finish_row = [&](int i) {
        smoothness_row(ws.u.data(), ws.v.data(), inc, h, w, i, phi);
        const T* rows[5];
        for (int l = -2; l <= 2; ++l) rows[l + 2] = blend_row(clamp_index(i + l, h));
        combine_rows<2>(rows, ws.iy_row.data(), line, kDerivative);
        correlate_row<kFeatures>(blend_row(i), ws.ix_row.data(), w, kDerivative, 2);
        build_row(ws.ix_row.data(), ws.iy_row.data(), it_row(i), ws.u.data(), ws.v.data(), phi,
                  inc, silent, h, w, i, alpha, ws.sor.data());
    };
    T* s2 = ws.row.data();
    separable_rows<2, kFeatures>(
        ws.warped.data(), h, w, kPresmooth, ws.ring_smooth.data(), [&](int) { return s2; },
        [&](int i) {
            const T* s1 = ws.smooth1.data() + i * line;
            T* blend = blend_row(i);
            T* it = it_row(i);
            for (std::size_t e = 0; e < line; ++e) {
                blend[e] = s1[e] * S(kBlendFirst);
                blend[e] += s2[e] * S(kBlendSecond);
                it[e] = s2[e] - s1[e];
            }
            if (i >= 2) finish_row(i - 2);
        });
    for (int i = std::max(0, h - 2); i < h; ++i) finish_row(i);
}

// One SOR sweep over one row: `c` and `phi` are the row's coefficients and smoothness
// weights (phi - w: the row above's), `d` its first increment in the padded grid.
// Where a neighbour is missing, its increment is a padding zero, so its weight does not
// matter: the product is +0 either way, as with the reference's zero weight.
template <class T>
inline void sor_row(const SorCoeffs<T>* c, const T* phi, T* d, std::ptrdiff_t stride, int w) {
    const auto relax = static_cast<element_t<T>>(1 - kOmega);
    // The left neighbour's new increment stays in a register: the sweep is a
    // recurrence along the row.
    T left_u{}, left_v{}, phi_left{};
    for (int j = 0; j < w; ++j, d += 2, ++c) {
        const T phi_here = phi[j], phi_up = phi[j - w];
        T du = c->base_u + c->couple_u * d[1] + relax * d[0];
        du += c->ka_u * phi_here * d[2] + c->ka_u * phi_up * d[-stride] +
              c->ka_u * phi_here * d[stride];
        du += c->ka_u * phi_left * left_u;
        T dv = c->base_v + relax * d[1];
        dv += c->ka_v * phi_here * d[3] + c->ka_v * phi_up * d[1 - stride] +
              c->ka_v * phi_here * d[1 + stride];
        dv += c->couple_v * du;
        dv += c->ka_v * phi_left * left_v;
        d[0] = left_u = du;
        d[1] = left_v = dv;
        phi_left = phi_here;
    }
}

// n_sor lexicographic SOR sweeps (from the current increments). Row i of sweep s needs
// row i - 1 of sweep s and row i + 1 of sweep s - 1, so a block of sweeps can run as a
// wavefront, sweep s + t one row behind sweep s + t - 1: every pixel sees exactly the
// values of sweep-by-sweep order, and the block's coefficients are read from cache once
// per block instead of once per sweep. The block is as deep as `cache_bytes` allows.
template <class T>
__attribute__((noinline)) void sor_sweeps(const SorCoeffs<T>* sor, const T* phi, T* inc, int h,
                                          int w, int n_sor, std::size_t cache_bytes) {
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);
    const std::size_t row_bytes = w * (sizeof(SorCoeffs<T>) + sizeof(T)) + stride * sizeof(T);
    const int depth = static_cast<int>(
        std::clamp<std::size_t>(cache_bytes / row_bytes, 1, static_cast<std::size_t>(n_sor)));
    for (int first = 0; first < n_sor; first += depth) {
        const int n = std::min(depth, n_sor - first);
        for (int front = 0; front < h + n - 1; ++front) {
            for (int t = std::max(0, front - h + 1); t < std::min(n, front + 1); ++t) {
                const int i = front - t;
                const std::size_t q = static_cast<std::size_t>(i) * w;
                sor_row(sor + q, phi + q, inc + (i + 1) * stride + 2, stride, w);
            }
        }
    }
}

// Outer fixed-point iterations at one level; updates ws.u, ws.v, ws.warped and `noise`.
// ws.f1 holds F1 of this level; f2[l] is lane l's F2 at this level.
template <class T>
void refine_level(const double* const* f2, int h, int w, double alpha, int n_outer,
                  int n_inner, int n_sor, T noise[kFeatures], Workspace<T>& ws) {
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);  // of the padded grid
    const std::size_t padded = static_cast<std::size_t>(h + 2) * stride;
    T* u = ws.u.data();
    T* v = ws.v.data();
    T* inc = ws.inc.data();
    T* phi = ws.phi.data() + w;
    std::fill(ws.phi.begin(), ws.phi.begin() + w, T{});
    const std::size_t line = static_cast<std::size_t>(w) * kFeatures;
    separable_rows<2, kFeatures>(
        ws.f1.data(), h, w, kPresmooth, ws.ring_smooth.data(),
        [&](int i) { return ws.smooth1.data() + i * line; }, [](int) {});

    for (int outer = 0; outer < n_outer; ++outer) {
        const auto threshold = static_cast<element_t<T>>(kSilentChannel);
        decltype(noise[0] < threshold) silent[kFeatures];
        for (int k = 0; k < kFeatures; ++k) silent[k] = noise[k] < threshold;
        std::fill(inc, inc + padded, T{});
        for (int inner = 0; inner < n_inner; ++inner) {
            build_system(ws, phi, inc, silent, h, w, alpha);
            // SOR from a zero increment.
            std::fill(inc, inc + padded, T{});
            sor_sweeps(ws.sor.data(), phi, inc, h, w, n_sor, ws.cache_bytes);
        }
        update_and_warp(ws.f1.data(), f2, inc, h, w, u, v, ws.warped.data(), noise);
    }
}

// Flow of lanes_of<T> pairs: lane l is the pair of feature pyramids (pyramid1[l],
// pyramid2[l]), whose flow goes to out[l] (h x w x 2 values; nullptr: not wanted).
template <class T, class Out>
void solve(const Plan& plan, const Coarse2FineParams& params, const double* const* pyramid1,
           const double* const* pyramid2, Workspace<T>& ws, Out* const* out) {
    constexpr int kLanes = lanes_of<T>;
    T noise[kFeatures];
    std::fill(noise, noise + kFeatures, splat<T>(kInitialResidual));
    const int top = plan.n_levels() - 1;
    for (int k = top; k >= 0; --k) {
        const int h = plan.height(k), w = plan.width(k);
        const std::size_t pixels = static_cast<std::size_t>(h) * w;
        const double* f1[kLanes];
        const double* f2[kLanes];
        for (int l = 0; l < kLanes; ++l) {
            f1[l] = pyramid1[l] + plan.offset[k];
            f2[l] = pyramid2[l] + plan.offset[k];
        }
        interleave(f1, pixels * kFeatures, ws.f1.data());
        if (k == top) {
            std::fill(ws.u.begin(), ws.u.begin() + pixels, T{});
            std::fill(ws.v.begin(), ws.v.begin() + pixels, T{});
            interleave(f2, pixels * kFeatures, ws.warped.data());
        } else {
            // Bring the coarser flow to this level; the displacement grows by 1 / ratio.
            const int hc = plan.height(k + 1), wc = plan.width(k + 1);
            const double sy = static_cast<double>(h) / hc, sx = static_cast<double>(w) / wc;
            resample<1>(ws.u.data(), hc, wc, ws.u_next.data(), h, w, sy, sx);
            resample<1>(ws.v.data(), hc, wc, ws.v_next.data(), h, w, sy, sx);
            std::swap(ws.u, ws.u_next);
            std::swap(ws.v, ws.v_next);
            const auto grow = static_cast<element_t<T>>(1 / params.ratio);
            for (std::size_t q = 0; q < pixels; ++q) {
                ws.u[q] *= grow;
                ws.v[q] *= grow;
            }
            for (int i = 0; i < h; ++i)
                warp_row(ws.f1.data(), f2, ws.u.data(), ws.v.data(), h, w, i, ws.warped.data());
        }
        refine_level(f2, h, w, params.alpha, params.n_outer + k, params.n_inner,
                     params.n_sor + 3 * k, noise, ws);
    }
    const std::size_t pixels = static_cast<std::size_t>(plan.height(0)) * plan.width(0);
    for (int l = 0; l < kLanes; ++l) {
        if (out[l] == nullptr) continue;
        for (std::size_t q = 0; q < pixels; ++q) {
            out[l][2 * q] = static_cast<Out>(lane(ws.u[q], l));
            out[l][2 * q + 1] = static_cast<Out>(lane(ws.v[q], l));
        }
    }
}

}  // namespace

std::vector<PyramidLevel> pyramid_levels(int height, int width, double ratio, int min_width) {
    if (!(ratio >= 0.4 && ratio <= 0.98))
        throw std::invalid_argument("ratio must be in [0.4, 0.98], got " + std::to_string(ratio));
    if (min_width < 1)
        throw std::invalid_argument("min_width must be >= 1, got " + std::to_string(min_width));
    if (height < 1 || width < 1)
        throw std::invalid_argument("frames must be at least 1 x 1 pixels");
    const double base_sigma = 1 / ratio - 1;
    // Levels down to a quarter of the size are made from the frame itself, coarser ones
    // from the level `direct` steps finer (cheaper, and the same up to resampling).
    const int direct = static_cast<int>(std::log(0.25) / std::log(ratio));
    const int n_levels = std::max(
        1, static_cast<int>(std::log(static_cast<double>(min_width) / width) / std::log(ratio)));
    std::vector<PyramidLevel> levels(n_levels);
    levels[0].height = height;
    levels[0].width = width;
    for (int i = 1; i < n_levels; ++i) {
        PyramidLevel& level = levels[i];
        if (i <= direct) {
            level.source = -1;
            level.sigma = base_sigma * i;
            level.scale = std::pow(ratio, i);
            level.height = static_cast<int>(static_cast<double>(height) * level.scale);
            level.width = static_cast<int>(static_cast<double>(width) * level.scale);
        } else {
            const PyramidLevel& source = levels[i - direct];
            level.source = i - direct;
            level.sigma = base_sigma * direct;
            level.scale = std::pow(ratio, i) * width / source.width;
            level.height = static_cast<int>(static_cast<double>(source.height) * level.scale);
            level.width = static_cast<int>(static_cast<double>(source.width) * level.scale);
        }
        level.radius = static_cast<int>(level.sigma * 3);
        if (level.height < 1 || level.width < 1)
            throw std::invalid_argument(
                "frames of " + std::to_string(height) + " x " + std::to_string(width) +
                " pixels are too small for pyramid level " + std::to_string(i) +
                " (ratio " + std::to_string(ratio) + ", min_width " + std::to_string(min_width) +
                ")");
    }
    return levels;
}

void check_params(const Coarse2FineParams& params) {
    if (!(params.alpha > 0 && std::isfinite(params.alpha)))
        throw std::invalid_argument("alpha must be a positive number, got " +
                                    std::to_string(params.alpha));
    if (params.n_outer < 1 || params.n_inner < 1 || params.n_sor < 1)
        throw std::invalid_argument(
            "n_outer, n_inner and n_sor must be >= 1, got " + std::to_string(params.n_outer) +
            ", " + std::to_string(params.n_inner) + " and " + std::to_string(params.n_sor));
}

namespace {

// coarse2fine_flow_pairs with packs of Wide (Pack or Pack32) and single pairs of Single
// (double or float).
template <class Wide, class Single, class Out>
void flow_pairs(const double* frames, int64_t n_frames, int height, int width,
                const int64_t* pairs, int64_t n_pairs, const Coarse2FineParams& params,
                int n_threads, int pack, Out* out) {
    constexpr int kWide = lanes_of<Wide>;
    if (n_pairs == 0) return;
    const Plan plan(height, width, params.ratio, params.min_width);

    // Only frames that appear in a pair get a pyramid, each exactly once.
    std::vector<int64_t> slot(n_frames, -1);
    std::vector<int64_t> used;
    for (int64_t e = 0; e < 2 * n_pairs; ++e) {
        if (slot[pairs[e]] < 0) {
            slot[pairs[e]] = static_cast<int64_t>(used.size());
            used.push_back(pairs[e]);
        }
    }
    const int64_t n_used = static_cast<int64_t>(used.size());

    // Work items: packs of kWide consecutive pairs (the last one possibly with idle
    // lanes), then single pairs; a pack takes `lanes` pairs from `first`.
    struct Item {
        int64_t first;
        int lanes;
        bool packed;
    };
    std::vector<Item> items;
    int64_t next = 0;
    if (pack != 1) {
        for (; n_pairs - next >= kWide; next += kWide) items.push_back({next, kWide, true});
        if (pack == 0 && n_pairs - next >= min_pack_fill<Wide>()) {
            items.push_back({next, static_cast<int>(n_pairs - next), true});
            next = n_pairs;
        } else if (pack == kWide && n_pairs > next) {
            items.push_back({next, static_cast<int>(n_pairs - next), true});
            next = n_pairs;
        }
    }
    for (; next < n_pairs; ++next) items.push_back({next, 1, false});
    const int64_t n_items = static_cast<int64_t>(items.size());
    const int threads = static_cast<int>(
        std::min<int64_t>(n_threads > 0 ? n_threads : omp_get_max_threads(), n_used));
    const int item_threads = static_cast<int>(std::min<int64_t>(threads, n_items));
    const bool any_packed = items.front().packed;
    const bool any_single = !items.back().packed;

    // Everything is allocated here, so the parallel regions cannot throw.
    // (+ kPackWidth: the packed warp reads up to 3 doubles past a pixel's 5 features.)
    std::vector<double> pyramids(static_cast<std::size_t>(n_used) * plan.frame_size + kPackWidth);
    std::vector<PyramidScratch> scratch(threads, PyramidScratch(plan));
    std::vector<Workspace<Wide>> packed_ws(any_packed ? item_threads : 0,
                                           Workspace<Wide>(height, width));
    std::vector<Workspace<Single>> single_ws(any_single ? item_threads : 0,
                                             Workspace<Single>(height, width));
    const std::size_t frame_values = static_cast<std::size_t>(height) * width * 3;
    const std::size_t flow_values = static_cast<std::size_t>(height) * width * 2;

#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int64_t s = 0; s < n_used; ++s) {
        build_pyramid(plan, frames + used[s] * frame_values, scratch[omp_get_thread_num()],
                      pyramids.data() + s * plan.frame_size);
    }

#pragma omp parallel for num_threads(item_threads) schedule(dynamic)
    for (int64_t it = 0; it < n_items; ++it) {
        const Item& item = items[it];
        // Idle lanes of a pack repeat its last pair and write nothing.
        const double* pyramid1[kWide];
        const double* pyramid2[kWide];
        Out* flow[kWide];
        for (int l = 0; l < kWide; ++l) {
            const int64_t p = item.first + std::min(l, item.lanes - 1);
            pyramid1[l] = pyramids.data() + slot[pairs[2 * p]] * plan.frame_size;
            pyramid2[l] = pyramids.data() + slot[pairs[2 * p + 1]] * plan.frame_size;
            flow[l] = l < item.lanes ? out + p * flow_values : nullptr;
        }
        if (item.packed) {
            solve(plan, params, pyramid1, pyramid2, packed_ws[omp_get_thread_num()], flow);
        } else {
            solve(plan, params, pyramid1, pyramid2, single_ws[omp_get_thread_num()], flow);
        }
    }
}

template <class Out>
void dispatch(const double* frames, int64_t n_frames, int height, int width,
              const int64_t* pairs, int64_t n_pairs, const Coarse2FineParams& params,
              int n_threads, int pack, Precision precision, Out* out) {
    if (precision == Precision::kFloat32) {
        flow_pairs<Pack32, float>(frames, n_frames, height, width, pairs, n_pairs, params,
                                  n_threads, pack, out);
    } else {
        flow_pairs<Pack, double>(frames, n_frames, height, width, pairs, n_pairs, params,
                                 n_threads, pack, out);
    }
}

}  // namespace

int pack_width(Precision precision) {
    return precision == Precision::kFloat32 ? kPack32Width : kPackWidth;
}

void coarse2fine_flow_pairs(const double* frames, int64_t n_frames, int height, int width,
                            const int64_t* pairs, int64_t n_pairs,
                            const Coarse2FineParams& params, int n_threads, int pack,
                            Precision precision, float* out) {
    dispatch(frames, n_frames, height, width, pairs, n_pairs, params, n_threads, pack,
             precision, out);
}

void coarse2fine_flow_pairs(const double* frames, int64_t n_frames, int height, int width,
                            const int64_t* pairs, int64_t n_pairs,
                            const Coarse2FineParams& params, int n_threads, int pack,
                            Precision precision, double* out) {
    dispatch(frames, n_frames, height, width, pairs, n_pairs, params, n_threads, pack,
             precision, out);
}

}  // namespace fastunlc::flow
