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
#include "flow/coarse2fine.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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

inline int clamp_index(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

// Correlation with 2 * radius + 1 taps along x (rows) or y (columns) of an h x w image
// with c interleaved channels; the border is replicated.
void correlate_x(const double* src, double* dst, int h, int w, int c, const double* taps,
                 int radius) {
    for (int i = 0; i < h; ++i) {
        const double* row = src + static_cast<std::size_t>(i) * w * c;
        double* out = dst + static_cast<std::size_t>(i) * w * c;
        for (int j = 0; j < w; ++j) {
            double* o = out + static_cast<std::size_t>(j) * c;
            for (int k = 0; k < c; ++k) o[k] = 0.0;
            for (int l = -radius; l <= radius; ++l) {
                const double t = taps[l + radius];
                const double* s = row + static_cast<std::size_t>(clamp_index(j + l, w)) * c;
                for (int k = 0; k < c; ++k) o[k] += s[k] * t;
            }
        }
    }
}

void correlate_y(const double* src, double* dst, int h, int w, int c, const double* taps,
                 int radius) {
    const std::size_t line = static_cast<std::size_t>(w) * c;
    for (int i = 0; i < h; ++i) {
        double* out = dst + i * line;
        for (std::size_t e = 0; e < line; ++e) out[e] = 0.0;
        for (int l = -radius; l <= radius; ++l) {
            const double t = taps[l + radius];
            const double* s = src + clamp_index(i + l, h) * line;
            for (std::size_t e = 0; e < line; ++e) out[e] += s[e] * t;
        }
    }
}

// x first, then y; `tmp` holds h * w * c values.
void separable(const double* src, double* dst, double* tmp, int h, int w, int c,
               const double* taps, int radius) {
    correlate_x(src, tmp, h, w, c, taps, radius);
    correlate_y(tmp, dst, h, w, c, taps, radius);
}

// Bilinear sample at (x, y): the integer part truncates towards zero, the fraction is
// clipped to [0, 1] and the corner indices to the image, so outside points read the border.
inline void sample_bilinear(const double* img, int h, int w, int c, double x, double y,
                            double* out) {
    const int x0 = static_cast<int>(x);
    const int y0 = static_cast<int>(y);
    const double fx = std::max(std::min(x - x0, 1.0), 0.0);
    const double fy = std::max(std::min(y - y0, 1.0), 0.0);
    const int xs[2] = {clamp_index(x0, w), clamp_index(x0 + 1, w)};
    const int ys[2] = {clamp_index(y0, h), clamp_index(y0 + 1, h)};
    const double wx[2] = {1.0 - fx, fx};
    const double wy[2] = {1.0 - fy, fy};
    for (int k = 0; k < c; ++k) out[k] = 0.0;
    for (int m = 0; m < 2; ++m) {
        for (int n = 0; n < 2; ++n) {
            const double s = wx[m] * wy[n];
            const double* p = img + (static_cast<std::size_t>(ys[n]) * w + xs[m]) * c;
            for (int k = 0; k < c; ++k) out[k] += p[k] * s;
        }
    }
}

// Output pixel (i, j) reads the input at ((i + 1) / scale_y - 1, (j + 1) / scale_x - 1).
void resample(const double* src, int sh, int sw, int c, double* dst, int dh, int dw,
              double scale_y, double scale_x) {
    for (int i = 0; i < dh; ++i) {
        for (int j = 0; j < dw; ++j) {
            const double x = static_cast<double>(j + 1) / scale_x - 1;
            const double y = static_cast<double>(i + 1) / scale_y - 1;
            sample_bilinear(src, sh, sw, c, x, y, dst + (static_cast<std::size_t>(i) * dw + j) * c);
        }
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
struct SorCoeffs {
    double base_u, couple_u, nb_u[4];
    double base_v, couple_v, nb_v[4];
};

// Per-thread buffers for solving one pair, sized for the finest level. The increments
// (du, dv interleaved) live on a grid padded by one zero pixel on every side, so the
// SOR sweep needs no border tests: a missing neighbour has a zero coefficient.
struct Workspace {
    std::vector<double> u, v, u_next, v_next, phi;                  // h * w
    std::vector<double> warped, smooth1, smooth2, tmp, ix, iy, it;  // h * w * 5
    std::vector<SorCoeffs> sor;                                     // h * w
    std::vector<double> inc;                                        // (h + 2) * (w + 2) * 2

    Workspace(int h, int w) {
        const std::size_t pixels = static_cast<std::size_t>(h) * w;
        for (auto* b : {&u, &v, &u_next, &v_next, &phi}) b->resize(pixels);
        for (auto* b : {&warped, &smooth1, &smooth2, &tmp, &ix, &iy, &it})
            b->resize(pixels * kFeatures);
        sor.resize(pixels);
        inc.resize(static_cast<std::size_t>(h + 2) * (w + 2) * 2);
    }
};

// warped = F2 sampled at (x + u, y + v), or F1 where that point leaves the image.
void warp(const double* f1, const double* f2, const double* u, const double* v, int h, int w,
          double* warped) {
    for (int i = 0; i < h; ++i) {
        for (int j = 0; j < w; ++j) {
            const std::size_t q = static_cast<std::size_t>(i) * w + j;
            const double x = j + u[q];
            const double y = i + v[q];
            double* out = warped + kFeatures * q;
            if (x < 0 || x > w - 1 || y < 0 || y > h - 1) {
                for (int k = 0; k < kFeatures; ++k) out[k] = f1[kFeatures * q + k];
            } else {
                sample_bilinear(f2, h, w, kFeatures, x, y, out);
            }
        }
    }
}

// -div(phi grad f) at pixel (i, j): phi of a pixel weighs the edges to its right and below.
inline double weighted_laplacian(const double* f, const double* phi, int h, int w, int i, int j) {
    const std::size_t q = static_cast<std::size_t>(i) * w + j;
    double acc = 0.0;
    if (j < w - 1) acc -= (f[q + 1] - f[q]) * phi[q];
    if (j > 0) acc += (f[q] - f[q - 1]) * phi[q - 1];
    if (i < h - 1) acc -= (f[q + w] - f[q]) * phi[q];
    if (i > 0) acc += (f[q] - f[q - w]) * phi[q - w];
    return acc;
}

// Outer fixed-point iterations at one level; updates ws.u, ws.v, ws.warped and `noise`.
void refine_level(const double* f1, const double* f2, int h, int w, double alpha, int n_outer,
                  int n_inner, int n_sor, double noise[kFeatures], Workspace& ws) {
    const std::size_t pixels = static_cast<std::size_t>(h) * w;
    const std::ptrdiff_t stride = 2 * static_cast<std::ptrdiff_t>(w + 2);  // of the padded grid
    const std::size_t padded = static_cast<std::size_t>(h + 2) * stride;
    const double eps2 = std::pow(kEpsilon, 2);
    const double prior = alpha * kIncrementPrior;
    const double relax = 1 - kOmega;
    double* u = ws.u.data();
    double* v = ws.v.data();
    double* phi = ws.phi.data();
    double* inc = ws.inc.data();
    SorCoeffs* sor = ws.sor.data();
    // Increment (du, dv) of pixel q = i * w + j in the padded grid.
    auto at = [&](int i, int j) { return inc + (i + 1) * stride + 2 * (j + 1); };
    separable(f1, ws.smooth1.data(), ws.tmp.data(), h, w, kFeatures, kPresmooth, 2);

    for (int outer = 0; outer < n_outer; ++outer) {
        // Linearise the data term around the current flow.
        const double* s1 = ws.smooth1.data();
        double* s2 = ws.smooth2.data();
        double* blend = ws.tmp.data();
        separable(ws.warped.data(), s2, blend, h, w, kFeatures, kPresmooth, 2);
        for (std::size_t e = 0; e < pixels * kFeatures; ++e) {
            blend[e] = s1[e] * kBlendFirst;
            blend[e] += s2[e] * kBlendSecond;
            ws.it[e] = s2[e] - s1[e];
        }
        correlate_x(blend, ws.ix.data(), h, w, kFeatures, kDerivative, 2);
        correlate_y(blend, ws.iy.data(), h, w, kFeatures, kDerivative, 2);
        bool active[kFeatures];
        for (int k = 0; k < kFeatures; ++k) active[k] = !(noise[k] < kSilentChannel);
        std::fill(inc, inc + padded, 0.0);

        for (int inner = 0; inner < n_inner; ++inner) {
            // Robust weight of the smoothness term, from the flow u + du.
            for (int i = 0; i < h; ++i) {
                for (int j = 0; j < w; ++j) {
                    const std::size_t q = static_cast<std::size_t>(i) * w + j;
                    const double* d = at(i, j);
                    double ux = 0.0, uy = 0.0, vx = 0.0, vy = 0.0;
                    if (j < w - 1) {
                        ux = (u[q + 1] + d[2]) - (u[q] + d[0]);
                        vx = (v[q + 1] + d[3]) - (v[q] + d[1]);
                    }
                    if (i < h - 1) {
                        uy = (u[q + w] + d[stride]) - (u[q] + d[0]);
                        vy = (v[q + w] + d[stride + 1]) - (v[q] + d[1]);
                    }
                    phi[q] = 0.5 / std::sqrt(ux * ux + uy * uy + vx * vx + vy * vy + eps2);
                }
            }
            // Robust weights of the data term, averaged over the feature channels, give
            // each pixel's 2x2 system.
            for (int i = 0; i < h; ++i) {
                for (int j = 0; j < w; ++j) {
                    const std::size_t q = static_cast<std::size_t>(i) * w + j;
                    const double* d = at(i, j);
                    double sxx = 0.0, sxy = 0.0, syy = 0.0, sxt = 0.0, syt = 0.0;
                    for (int k = 0; k < kFeatures; ++k) {
                        const double gx = ws.ix[kFeatures * q + k];
                        const double gy = ws.iy[kFeatures * q + k];
                        const double gt = ws.it[kFeatures * q + k];
                        double r = gt + gx * d[0] + gy * d[1];
                        r *= r;
                        const double psi = active[k] ? 1 / (2 * std::sqrt(r + eps2)) : 0.0;
                        sxx += psi * gx * gx;
                        sxy += psi * gx * gy;
                        syy += psi * gy * gy;
                        sxt += psi * gx * gt;
                        syt += psi * gy * gt;
                    }
                    const double axx = sxx / kFeatures, axy = sxy / kFeatures;
                    const double ayy = syy / kFeatures;
                    const double bx =
                        -(sxt / kFeatures) - alpha * weighted_laplacian(u, phi, h, w, i, j);
                    const double by =
                        -(syt / kFeatures) - alpha * weighted_laplacian(v, phi, h, w, i, j);
                    // Edge weights to the left, right, up and down neighbours (0 if none).
                    const double wn[4] = {j > 0 ? phi[q - 1] : 0.0, j < w - 1 ? phi[q] : 0.0,
                                          i > 0 ? phi[q - w] : 0.0, i < h - 1 ? phi[q] : 0.0};
                    const double coeff = (wn[0] + wn[1] + wn[2] + wn[3]) * alpha;
                    const double ku = kOmega / (axx + prior + coeff);
                    const double kv = kOmega / (ayy + prior + coeff);
                    SorCoeffs& c = sor[q];
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
            // Lexicographic SOR sweeps from a zero increment.
            std::fill(inc, inc + padded, 0.0);
            for (int sweep = 0; sweep < n_sor; ++sweep) {
                for (int i = 0; i < h; ++i) {
                    double* d = at(i, 0);
                    const SorCoeffs* c = sor + static_cast<std::size_t>(i) * w;
                    // The left neighbour's new increment stays in a register: the sweep
                    // is a recurrence along the row, and its latency is what costs.
                    double left_u = 0.0, left_v = 0.0;
                    for (int j = 0; j < w; ++j, d += 2, ++c) {
                        double du = c->base_u + c->couple_u * d[1] + relax * d[0];
                        du += c->nb_u[1] * d[2] + c->nb_u[2] * d[-stride] +
                              c->nb_u[3] * d[stride];
                        du += c->nb_u[0] * left_u;
                        double dv = c->base_v + relax * d[1];
                        dv += c->nb_v[1] * d[3] + c->nb_v[2] * d[1 - stride] +
                              c->nb_v[3] * d[1 + stride];
                        dv += c->couple_v * du;
                        dv += c->nb_v[0] * left_v;
                        d[0] = left_u = du;
                        d[1] = left_v = dv;
                    }
                }
            }
        }
        for (int i = 0; i < h; ++i) {
            for (int j = 0; j < w; ++j) {
                const std::size_t q = static_cast<std::size_t>(i) * w + j;
                u[q] += at(i, j)[0];
                v[q] += at(i, j)[1];
            }
        }
        warp(f1, f2, u, v, h, w, ws.warped.data());
        // Mean absolute residual per channel, which can switch a channel off.
        for (int k = 0; k < kFeatures; ++k) {
            double total = 0.0;
            std::size_t count = 0;
            for (std::size_t q = 0; q < pixels; ++q) {
                const double d = std::fabs(f1[kFeatures * q + k] - ws.warped[kFeatures * q + k]);
                if (d > 0 && d < kMaxResidual) {
                    total += d;
                    ++count;
                }
            }
            noise[k] = count ? total / static_cast<double>(count) : kNoResidual;
        }
    }
}

void solve_pair(const Plan& plan, const Coarse2FineParams& params, const double* pyramid1,
                const double* pyramid2, Workspace& ws, float* out) {
    double noise[kFeatures];
    std::fill(noise, noise + kFeatures, kInitialResidual);
    const int top = plan.n_levels() - 1;
    for (int k = top; k >= 0; --k) {
        const int h = plan.height(k), w = plan.width(k);
        const std::size_t pixels = static_cast<std::size_t>(h) * w;
        const double* f1 = pyramid1 + plan.offset[k];
        const double* f2 = pyramid2 + plan.offset[k];
        if (k == top) {
            std::fill(ws.u.begin(), ws.u.begin() + pixels, 0.0);
            std::fill(ws.v.begin(), ws.v.begin() + pixels, 0.0);
            std::copy(f2, f2 + pixels * kFeatures, ws.warped.begin());
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
            warp(f1, f2, ws.u.data(), ws.v.data(), h, w, ws.warped.data());
        }
        refine_level(f1, f2, h, w, params.alpha, params.n_outer + k, params.n_inner,
                     params.n_sor + 3 * k, noise, ws);
    }
    const std::size_t pixels = static_cast<std::size_t>(plan.height(0)) * plan.width(0);
    for (std::size_t q = 0; q < pixels; ++q) {
        out[2 * q] = static_cast<float>(ws.u[q]);
        out[2 * q + 1] = static_cast<float>(ws.v[q]);
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
                            const Coarse2FineParams& params, int n_threads, float* out) {
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
    const int threads = static_cast<int>(
        std::min<int64_t>(n_threads > 0 ? n_threads : omp_get_max_threads(), n_pairs));

    // Everything is allocated here, so the parallel regions cannot throw.
    std::vector<double> pyramids(static_cast<std::size_t>(n_used) * plan.frame_size);
    std::vector<PyramidScratch> scratch(threads, PyramidScratch(plan));
    std::vector<Workspace> workspaces(threads, Workspace(height, width));
    const std::size_t frame_values = static_cast<std::size_t>(height) * width * 3;
    const std::size_t flow_values = static_cast<std::size_t>(height) * width * 2;

#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int64_t s = 0; s < n_used; ++s) {
        build_pyramid(plan, frames + used[s] * frame_values, scratch[omp_get_thread_num()],
                      pyramids.data() + s * plan.frame_size);
    }

#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int64_t p = 0; p < n_pairs; ++p) {
        solve_pair(plan, params, pyramids.data() + slot[pairs[2 * p]] * plan.frame_size,
                   pyramids.data() + slot[pairs[2 * p + 1]] * plan.frame_size,
                   workspaces[omp_get_thread_num()], out + p * flow_values);
    }
}

}  // namespace fastunlc::flow
