// Separable correlation and bilinear resampling of images with C interleaved channels, for
// any element type T of lanes.h (double, float, Pack, Pack32): with packs, every lane is
// filtered exactly as an image of their element type would be.
//
// Every output value is 0 + s_0 t_0 + s_1 t_1 + ..., summed in tap order, with the taps
// and weights rounded to T's element type; the loops keep the partial sums in registers,
// which does not change a single rounding.
#pragma once

#include <algorithm>
#include <cstddef>

#include "flow/lanes.h"

namespace fastunlc::flow {

inline int clamp_index(int i, int n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

// Correlation with 2 * radius + 1 taps along a row of w pixels; the border is replicated.
template <int C, class T>
void correlate_row(const T* row, T* out, int w, const double* taps, int radius) {
    auto pixel = [&](int j, auto index) {
        T acc[C];
        for (int k = 0; k < C; ++k) acc[k] = T{};
        for (int l = -radius; l <= radius; ++l) {
            const auto t = static_cast<element_t<T>>(taps[l + radius]);
            const T* s = row + static_cast<std::size_t>(index(j + l)) * C;
            for (int k = 0; k < C; ++k) acc[k] += s[k] * t;
        }
        for (int k = 0; k < C; ++k) out[static_cast<std::size_t>(j) * C + k] = acc[k];
    };
    auto clamped = [w](int i) { return clamp_index(i, w); };
    auto inside = [](int i) { return i; };
    int j = 0;
    for (; j < std::min(radius, w); ++j) pixel(j, clamped);
    for (; j < w - radius; ++j) pixel(j, inside);
    for (; j < w; ++j) pixel(j, clamped);
}

// out[e] = sum over l of rows[l][e] * taps[l], l = 0 .. 2 * R, in that order: one output
// row of a correlation along y, given its input rows.
template <int R, class T>
void combine_rows(const T* const* rows, T* out, std::size_t n, const double* taps) {
    for (std::size_t e = 0; e < n; ++e) {
        T acc{};
        for (int l = 0; l <= 2 * R; ++l) acc += rows[l][e] * static_cast<element_t<T>>(taps[l]);
        out[e] = acc;
    }
}

// Correlation along x (rows) or y (columns) of an h x w image.
template <int C, class T>
void correlate_x(const T* src, T* dst, int h, int w, const double* taps, int radius) {
    const std::size_t line = static_cast<std::size_t>(w) * C;
    for (int i = 0; i < h; ++i) correlate_row<C>(src + i * line, dst + i * line, w, taps, radius);
}

template <int C, class T>
void correlate_y(const T* src, T* dst, int h, int w, const double* taps, int radius) {
    const std::size_t line = static_cast<std::size_t>(w) * C;
    for (int i = 0; i < h; ++i) {
        T* out = dst + i * line;
        for (std::size_t e = 0; e < line; ++e) {
            T acc{};
            for (int l = -radius; l <= radius; ++l)
                acc += src[clamp_index(i + l, h) * line + e] *
                       static_cast<element_t<T>>(taps[l + radius]);
            out[e] = acc;
        }
    }
}

// x first, then y; `tmp` holds h * w * C values.
template <int C, class T>
void separable(const T* src, T* dst, T* tmp, int h, int w, const double* taps, int radius) {
    correlate_x<C>(src, tmp, h, w, taps, radius);
    correlate_y<C>(tmp, dst, h, w, taps, radius);
}

// The same separable correlation (taps of radius R), one output row at a time and in
// order, keeping only 2 R + 1 rows smoothed along x in `ring` (2 R + 1 rows of w * C
// values): row i is written to dest(i), then done(i) is called. The arithmetic is that of
// `separable`; the intermediate image never leaves the cache.
template <int R, int C, class T, class Dest, class Done>
void separable_rows(const T* src, int h, int w, const double* taps, T* ring, Dest&& dest,
                    Done&& done) {
    constexpr int kRows = 2 * R + 1;
    const std::size_t line = static_cast<std::size_t>(w) * C;
    auto ring_row = [&](int r) { return ring + static_cast<std::size_t>(r % kRows) * line; };
    int next = 0;  // next input row to smooth along x
    for (int i = 0; i < h; ++i) {
        // Row i + R replaces row i - R - 1, which no output row needs any more.
        for (; next <= std::min(i + R, h - 1); ++next)
            correlate_row<C>(src + next * line, ring_row(next), w, taps, R);
        const T* rows[kRows];
        for (int l = -R; l <= R; ++l) rows[l + R] = ring_row(clamp_index(i + l, h));
        combine_rows<R>(rows, dest(i), line, taps);
        done(i);
    }
}

// Bilinear sample at (x, y): the integer part truncates towards zero, the fraction is
// clipped to [0, 1] and the corner indices to the image, so outside points read the border.
template <int C, class T>
inline void sample_bilinear(const T* img, int h, int w, double x, double y, T* out) {
    const int x0 = static_cast<int>(x);
    const int y0 = static_cast<int>(y);
    const double fx = std::max(std::min(x - x0, 1.0), 0.0);
    const double fy = std::max(std::min(y - y0, 1.0), 0.0);
    const int xs[2] = {clamp_index(x0, w), clamp_index(x0 + 1, w)};
    const int ys[2] = {clamp_index(y0, h), clamp_index(y0 + 1, h)};
    const double wx[2] = {1.0 - fx, fx};
    const double wy[2] = {1.0 - fy, fy};
    for (int k = 0; k < C; ++k) out[k] = T{};
    for (int m = 0; m < 2; ++m) {
        for (int n = 0; n < 2; ++n) {
            const auto s = static_cast<element_t<T>>(wx[m] * wy[n]);
            const T* p = img + (static_cast<std::size_t>(ys[n]) * w + xs[m]) * C;
            for (int k = 0; k < C; ++k) out[k] += p[k] * s;
        }
    }
}

// Output pixel (i, j) reads the input at ((i + 1) / scale_y - 1, (j + 1) / scale_x - 1).
template <int C, class T>
void resample(const T* src, int sh, int sw, T* dst, int dh, int dw, double scale_y,
              double scale_x) {
    for (int i = 0; i < dh; ++i) {
        for (int j = 0; j < dw; ++j) {
            const double x = static_cast<double>(j + 1) / scale_x - 1;
            const double y = static_cast<double>(i + 1) / scale_y - 1;
            sample_bilinear<C>(src, sh, sw, x, y, dst + (static_cast<std::size_t>(i) * dw + j) * C);
        }
    }
}

}  // namespace fastunlc::flow
