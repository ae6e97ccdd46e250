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
#include "flow/coarse2fine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
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
// Bytes of SOR coefficients and increments that a wavefront of sweeps keeps in flight;
// below the L2 cache of current x86-64 and Arm cores (512 KiB - 2 MiB per core).
constexpr std::size_t kSorCacheBytes = 384 * 1024;
// A remainder of fewer pairs than this (after the full packs) is solved one pair at a
// time; from this many on, in one pack with idle lanes (measured: a pack costs about as
// much as kMinPackFill single pairs).
constexpr int kMinPackFill = 3;

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
    correlate_x(s.grey.data(), s.grey_x.data(), h, w, 1, kDerivative, 2);
    correlate_y(s.grey.data(), s.grey_y.data(), h, w, 1, kDerivative, 2);
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
            separable(src, s.smooth.data(), s.tmp.data(), sh, sw, 3, plan.taps[l].data(),
                      level.radius);
            resample(s.smooth.data(), sh, sw, 3, s.rgb[l].data(), level.height, level.width,
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
//   du <- (1 - omega) du + base_u + couple_u dv + sum_n nb_u[n] du_n
//   dv <- (1 - omega) dv + base_v + couple_v du + sum_n nb_v[n] dv_n
// with k_u = omega / (axx + a0 + c): base_u = k_u bx, couple_u = -k_u axy,
// nb_u[n] = k_u alpha w_n (likewise for v). This is the reference's update with its
// products distributed, so that each pixel waits on its left neighbour through a single
// multiply-add; it changes the result only by rounding. Neighbour order: left, right,
// up, down.
template <class T>
struct SorCoeffs {
    T base_u, couple_u, nb_u[4];
    T base_v, couple_v, nb_v[4];
};

// Per-thread buffers for solving one pair (T = double) or one pack of pairs (T = Pack),
// sized for the finest level. The increments (du, dv interleaved) live on a grid padded
// by one zero pixel on every side, so the SOR sweep needs no border tests: a missing
// neighbour has a zero coefficient.
template <class T>
struct Workspace {
    std::vector<T> u, v, u_next, v_next, phi;                      // h * w
    std::vector<T> f1, warped, smooth1, smooth2, tmp, ix, iy, it;  // h * w * 5
    std::vector<SorCoeffs<T>> sor;                                 // h * w
    std::vector<T> inc;                                            // (h + 2) * (w + 2) * 2

    Workspace(int h, int w) {
        const std::size_t pixels = static_cast<std::size_t>(h) * w;
        for (auto* b : {&u, &v, &u_next, &v_next, &phi}) b->resize(pixels);
        for (auto* b : {&f1, &warped, &smooth1, &smooth2, &tmp, &ix, &iy, &it})
            b->resize(pixels * kFeatures);
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

// warped = F2 sampled at (x + u, y + v), or F1 where that point leaves the image. F2 is
// given per lane (f2[l]: that lane's frame), as the sample points differ between lanes.
template <class T>
void warp(const T* f1, const double* const* f2, const T* u, const T* v, int h, int w,
          T* warped) {
    for (int i = 0; i < h; ++i) {
        for (int j = 0; j < w; ++j) {
            const std::size_t q = static_cast<std::size_t>(i) * w + j;
            for (int l = 0; l < lanes_of<T>; ++l) {
                const double x = j + lane(u[q], l);
                const double y = i + lane(v[q], l);
                double out[kFeatures];
                if (x < 0 || x > w - 1 || y < 0 || y > h - 1) {
                    for (int k = 0; k < kFeatures; ++k) out[k] = lane(f1[kFeatures * q + k], l);
                } else {
                    sample_bilinear(f2[l], h, w, kFeatures, x, y, out);
                }
                for (int k = 0; k < kFeatures; ++k) set_lane(warped[kFeatures * q + k], l, out[k]);
            }
        }
    }
}

// Mean absolute residual |F1 - warped F2| per channel, over the residuals in (0, kMaxResidual).
template <class T>
void residual_noise(const T* f1, const T* warped, std::size_t pixels, T noise[kFeatures]) {
    for (int k = 0; k < kFeatures; ++k) {
        // Adding a zero instead of skipping a residual leaves the (never -0) sum unchanged.
        T total{}, count{};
        for (std::size_t q = 0; q < pixels; ++q) {
            const T d = abs_lanes(f1[kFeatures * q + k] - warped[kFeatures * q + k]);
            const auto counted = (d > 0.0) & (d < kMaxResidual);
            total += select(counted, d, T{});
            count += select(counted, splat<T>(1.0), T{});
        }
        noise[k] = select(count > 0.0, total / count, splat<T>(kNoResidual));
    }
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

// Spatial (ix, iy) and temporal (it) derivatives of the data term around the current flow.
template <class T>
__attribute__((noinline)) void linearise(Workspace<T>& ws, int h, int w) {
    const std::size_t n = static_cast<std::size_t>(h) * w * kFeatures;
    const T* s1 = ws.smooth1.data();
    T* s2 = ws.smooth2.data();
    T* blend = ws.tmp.data();
    separable(ws.warped.data(), s2, blend, h, w, kFeatures, kPresmooth, 2);
    for (std::size_t e = 0; e < n; ++e) {
        blend[e] = s1[e] * kBlendFirst;
        blend[e] += s2[e] * kBlendSecond;
        ws.it[e] = s2[e] - s1[e];
    }
    correlate_x(blend, ws.ix.data(), h, w, kFeatures, kDerivative, 2);
    correlate_y(blend, ws.iy.data(), h, w, kFeatures, kDerivative, 2);
}

// Robust weight of the smoothness term, from the flow u + du (du: the padded increments).
template <class T>
__attribute__((noinline)) void smoothness_weights(const T* u, const T* v, const T* inc, int h,
                                                  int w, T* phi) {
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);
    const double eps2 = std::pow(kEpsilon, 2);
    for (int i = 0; i < h; ++i) {
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
            phi[q] = 0.5 / sqrt_lanes(ux * ux + uy * uy + vx * vx + vy * vy + eps2);
        }
    }
}

// Robust weights of the data term, averaged over the feature channels, give each
// pixel's 2x2 system; `silent[k]` marks the lanes whose channel k is left out.
template <class T, class Mask>
__attribute__((noinline)) void build_system(const Workspace<T>& ws, const T* inc,
                                            const Mask silent[kFeatures], int h, int w,
                                            double alpha, SorCoeffs<T>* sor) {
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);
    const double eps2 = std::pow(kEpsilon, 2);
    const double prior = alpha * kIncrementPrior;
    const T* u = ws.u.data();
    const T* v = ws.v.data();
    const T* phi = ws.phi.data();
    for (int i = 0; i < h; ++i) {
        const T* d = inc + (i + 1) * stride + 2;
        for (int j = 0; j < w; ++j, d += 2) {
            const std::size_t q = static_cast<std::size_t>(i) * w + j;
            T sxx{}, sxy{}, syy{}, sxt{}, syt{};
            for (int k = 0; k < kFeatures; ++k) {
                const T gx = ws.ix[kFeatures * q + k];
                const T gy = ws.iy[kFeatures * q + k];
                const T gt = ws.it[kFeatures * q + k];
                T r = gt + gx * d[0] + gy * d[1];
                r *= r;
                const T psi = select(silent[k], T{}, 1.0 / (2.0 * sqrt_lanes(r + eps2)));
                sxx += psi * gx * gx;
                sxy += psi * gx * gy;
                syy += psi * gy * gy;
                sxt += psi * gx * gt;
                syt += psi * gy * gt;
            }
            const T axx = sxx / kFeatures, axy = sxy / kFeatures;
            const T ayy = syy / kFeatures;
            const T bx = -(sxt / kFeatures) - alpha * weighted_laplacian(u, phi, h, w, i, j);
            const T by = -(syt / kFeatures) - alpha * weighted_laplacian(v, phi, h, w, i, j);
            // Edge weights to the left, right, up and down neighbours (0 if none).
            const T wn[4] = {j > 0 ? phi[q - 1] : T{}, j < w - 1 ? phi[q] : T{},
                             i > 0 ? phi[q - w] : T{}, i < h - 1 ? phi[q] : T{}};
            const T coeff = (wn[0] + wn[1] + wn[2] + wn[3]) * alpha;
            const T ku = kOmega / (axx + prior + coeff);
            const T kv = kOmega / (ayy + prior + coeff);
            SorCoeffs<T>& c = sor[q];
            c.base_u = ku * bx;
            c.couple_u = -(ku * axy);
            c.base_v = kv * by;
            c.couple_v = -(kv * axy);
            for (int n = 0; n < 4; ++n) {
                c.nb_u[n] = ku * alpha * wn[n];
                c.nb_v[n] = kv * alpha * wn[n];
            }
        }
    }
}

// One SOR sweep over one row; `d` is the row's first increment in the padded grid.
template <class T>
inline void sor_row(const SorCoeffs<T>* c, T* d, std::ptrdiff_t stride, int w) {
    const double relax = 1 - kOmega;
    // The left neighbour's new increment stays in a register: the sweep is a
    // recurrence along the row, and its latency is what costs.
    T left_u{}, left_v{};
    for (int j = 0; j < w; ++j, d += 2, ++c) {
        T du = c->base_u + c->couple_u * d[1] + relax * d[0];
        du += c->nb_u[1] * d[2] + c->nb_u[2] * d[-stride] + c->nb_u[3] * d[stride];
        du += c->nb_u[0] * left_u;
        T dv = c->base_v + relax * d[1];
        dv += c->nb_v[1] * d[3] + c->nb_v[2] * d[1 - stride] + c->nb_v[3] * d[1 + stride];
        dv += c->couple_v * du;
        dv += c->nb_v[0] * left_v;
        d[0] = left_u = du;
        d[1] = left_v = dv;
    }
}

// n_sor lexicographic SOR sweeps (from the current increments). Row i of sweep s needs
// row i - 1 of sweep s and row i + 1 of sweep s - 1, so a block of sweeps can run as a
// wavefront, sweep s + t one row behind sweep s + t - 1: every pixel sees exactly the
// values of sweep-by-sweep order, and the block's coefficients are read from cache once
// per block instead of once per sweep. The block is as deep as kSorCacheBytes allows.
template <class T>
__attribute__((noinline)) void sor_sweeps(const SorCoeffs<T>* sor, T* inc, int h, int w,
                                          int n_sor) {
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);
    const std::size_t row_bytes = w * sizeof(SorCoeffs<T>) + stride * sizeof(T);
    const int depth = static_cast<int>(
        std::clamp<std::size_t>(kSorCacheBytes / row_bytes, 1, static_cast<std::size_t>(n_sor)));
    for (int first = 0; first < n_sor; first += depth) {
        const int n = std::min(depth, n_sor - first);
        for (int front = 0; front < h + n - 1; ++front) {
            for (int t = std::max(0, front - h + 1); t < std::min(n, front + 1); ++t) {
                const int i = front - t;
                sor_row(sor + static_cast<std::size_t>(i) * w, inc + (i + 1) * stride + 2,
                        stride, w);
            }
        }
    }
}

// Outer fixed-point iterations at one level; updates ws.u, ws.v, ws.warped and `noise`.
// ws.f1 holds F1 of this level; f2[l] is lane l's F2 at this level.
template <class T>
void refine_level(const double* const* f2, int h, int w, double alpha, int n_outer,
                  int n_inner, int n_sor, T noise[kFeatures], Workspace<T>& ws) {
    const std::size_t pixels = static_cast<std::size_t>(h) * w;
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);  // of the padded grid
    const std::size_t padded = static_cast<std::size_t>(h + 2) * stride;
    T* u = ws.u.data();
    T* v = ws.v.data();
    T* inc = ws.inc.data();
    separable(ws.f1.data(), ws.smooth1.data(), ws.tmp.data(), h, w, kFeatures, kPresmooth, 2);

    for (int outer = 0; outer < n_outer; ++outer) {
        linearise(ws, h, w);
        decltype(noise[0] < kSilentChannel) silent[kFeatures];
        for (int k = 0; k < kFeatures; ++k) silent[k] = noise[k] < kSilentChannel;
        std::fill(inc, inc + padded, T{});
        for (int inner = 0; inner < n_inner; ++inner) {
            smoothness_weights(u, v, inc, h, w, ws.phi.data());
            build_system(ws, inc, silent, h, w, alpha, ws.sor.data());
            // SOR from a zero increment.
            std::fill(inc, inc + padded, T{});
            sor_sweeps(ws.sor.data(), inc, h, w, n_sor);
        }
        for (int i = 0; i < h; ++i) {
            const T* d = inc + (i + 1) * stride + 2;
            for (int j = 0; j < w; ++j, d += 2) {
                const std::size_t q = static_cast<std::size_t>(i) * w + j;
                u[q] += d[0];
                v[q] += d[1];
            }
        }
        warp(ws.f1.data(), f2, u, v, h, w, ws.warped.data());
        residual_noise(ws.f1.data(), ws.warped.data(), pixels, noise);
    }
}

// Flow of lanes_of<T> pairs: lane l is the pair of feature pyramids (pyramid1[l],
// pyramid2[l]), whose flow goes to out[l] (h x w x 2 floats; nullptr: not wanted).
template <class T>
void solve(const Plan& plan, const Coarse2FineParams& params, const double* const* pyramid1,
           const double* const* pyramid2, Workspace<T>& ws, float* const* out) {
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
            resample(ws.u.data(), hc, wc, 1, ws.u_next.data(), h, w, sy, sx);
            resample(ws.v.data(), hc, wc, 1, ws.v_next.data(), h, w, sy, sx);
            std::swap(ws.u, ws.u_next);
            std::swap(ws.v, ws.v_next);
            const double grow = 1 / params.ratio;
            for (std::size_t q = 0; q < pixels; ++q) {
                ws.u[q] *= grow;
                ws.v[q] *= grow;
            }
            warp(ws.f1.data(), f2, ws.u.data(), ws.v.data(), h, w, ws.warped.data());
        }
        refine_level(f2, h, w, params.alpha, params.n_outer + k, params.n_inner,
                     params.n_sor + 3 * k, noise, ws);
    }
    const std::size_t pixels = static_cast<std::size_t>(plan.height(0)) * plan.width(0);
    for (int l = 0; l < kLanes; ++l) {
        if (out[l] == nullptr) continue;
        for (std::size_t q = 0; q < pixels; ++q) {
            out[l][2 * q] = static_cast<float>(lane(ws.u[q], l));
            out[l][2 * q + 1] = static_cast<float>(lane(ws.v[q], l));
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

void coarse2fine_flow_pairs(const double* frames, int64_t n_frames, int height, int width,
                            const int64_t* pairs, int64_t n_pairs,
                            const Coarse2FineParams& params, int n_threads, int pack,
                            float* out) {
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

    // Work items: packs of kPackWidth consecutive pairs (the last one possibly with idle
    // lanes), then single pairs; a pack takes `lanes` pairs from `first`.
    struct Item {
        int64_t first;
        int lanes;
        bool packed;
    };
    std::vector<Item> items;
    int64_t next = 0;
    if (pack != 1) {
        for (; n_pairs - next >= kPackWidth; next += kPackWidth)
            items.push_back({next, kPackWidth, true});
        if (pack == 0 && n_pairs - next >= kMinPackFill) {
            items.push_back({next, static_cast<int>(n_pairs - next), true});
            next = n_pairs;
        } else if (pack == kPackWidth && n_pairs > next) {
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
    std::vector<double> pyramids(static_cast<std::size_t>(n_used) * plan.frame_size);
    std::vector<PyramidScratch> scratch(threads, PyramidScratch(plan));
    std::vector<Workspace<Pack>> packed_ws(any_packed ? item_threads : 0,
                                           Workspace<Pack>(height, width));
    std::vector<Workspace<double>> single_ws(any_single ? item_threads : 0,
                                             Workspace<double>(height, width));
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
        const double* pyramid1[kPackWidth];
        const double* pyramid2[kPackWidth];
        float* flow[kPackWidth];
        for (int l = 0; l < kPackWidth; ++l) {
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

}  // namespace fastunlc::flow
