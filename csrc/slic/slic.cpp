// SLIC superpixels, scikit-image 0.26's `slic` in float32 (fastunlc/_kernels/cpu/slic.py
// lists scikit-image's steps and what is reproduced of each).
//
// Every float operation is the former Numba kernel's, in its order and precision (this
// file is compiled without FMA contraction), so the labels are the same bit for bit.
// The k-means step prunes centres with lower bounds, but a pixel's winner is the first
// centre, in centre order, at the smallest distance among all centres whose window holds
// it: what the pruning skips could not have won, so the labels are the exhaustive
// search's whatever order the centres are tried in.
#include "slic/slic.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>

namespace fastunlc::slic {

namespace {

constexpr float kFar = std::numeric_limits<float>::max();

// The constants as NumPy made them: float64 values rounded to float32.
constexpr float kKnee = static_cast<float>(0.008856);
constexpr float kSlope = static_cast<float>(7.787);
constexpr float kOffset = static_cast<float>(16.0 / 116.0);

// sRGB -> XYZ (skimage.color.colorconv.xyz_from_rgb), each row divided in float64 by the
// D65 white point's component (0.95047, 1, 1.08883), then rounded to float32.
constexpr float kXyzn[3][3] = {
    {static_cast<float>(0.412453 / 0.95047), static_cast<float>(0.357580 / 0.95047),
     static_cast<float>(0.180423 / 0.95047)},
    {static_cast<float>(0.212671), static_cast<float>(0.715160), static_cast<float>(0.072169)},
    {static_cast<float>(0.019334 / 1.08883), static_cast<float>(0.119193 / 1.08883),
     static_cast<float>(0.950227 / 1.08883)},
};

// Row and column of each pixel of a tile, as float32.
struct TileCoordinates {
    alignas(64) float rows[kTileSize];
    alignas(64) float columns[kTileSize];
    TileCoordinates() {
        for (int i = 0; i < kTileSize; ++i) {
            rows[i] = static_cast<float>(i / kTile);
            columns[i] = static_cast<float>(i % kTile);
        }
    }
};
const TileCoordinates kCoords;

// Minimum and maximum as selects, which vectorise (the values are never NaN, and which
// zero of equal signed zeros wins changes no bound's value).
inline float min_of(float a, float b) { return b < a ? b : a; }
inline float max_of(float a, float b) { return a < b ? b : a; }

// floor of c, |c| < 2**31: unlike std::floor it vectorises (GCC 12, trapping math).
inline float floor_of(float c) {
    const float t = static_cast<float>(static_cast<int32_t>(c));
    return t > c ? t - 1.0f : t;
}

inline int32_t bits_of(float v) {
    int32_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
}

// CIELAB's f of t in [0, 1]: the cube root above the knee, the linear segment below.
// The cube root starts from t ** (5/16) (square roots only) and takes three Halley
// steps, so that the loop over pixels vectorises (libm's cbrt does not).
inline float lab_f(float t) {
    const float c = t > kKnee ? t : kKnee;
    const float q = std::sqrt(std::sqrt(c));
    float y = q * std::sqrt(std::sqrt(q));
    for (int step = 0; step < 3; ++step) {
        const float y3 = y * y * y;
        y = y * (y3 + 2.0f * c) / (2.0f * y3 + c);
    }
    return t > kKnee ? y : kSlope * t + kOffset;
}

// Smallest float32 (c - i)**2 over integers i in [lo, hi): the computed square grows
// with |c - i|, so one of the two integers around c (clamped to the range) holds it.
inline float nearest_square(float c, int64_t lo, int64_t hi) {
    const int64_t i = std::min(std::max(static_cast<int64_t>(c), lo), hi - 1);
    const int64_t j = std::min(i + 1, hi - 1);
    const float d = c - static_cast<float>(i);
    const float e = c - static_cast<float>(j);
    return std::min(d * d, e * e);
}

// Window of a centre as float32 row and column bounds, both inclusive.
struct Window {
    float y0, y1, x0, x1;
    explicit Window(const int64_t* window)
        : y0(static_cast<float>(window[0])),
          y1(static_cast<float>(window[1] - 1)),
          x0(static_cast<float>(window[2])),
          x1(static_cast<float>(window[3] - 1)) {}
};

// Pixel i of a tile against a centre (y, x, L, a, b): its spatial term
// ((cy - y)**2 + (cx - x)**2) * spatial_weight and its colour term |colour - centre|**2,
// each in scikit-image's operation order.
struct Terms {
    float spatial, colour;
};

inline Terms pixel_terms(const float* __restrict image, int i, float yf, float xf,
                         const float* centre, float spatial_weight) {
    const float dy = centre[0] - yf;
    const float dx = centre[1] - xf;
    const float spatial = (dy * dy + dx * dx) * spatial_weight;
    float v = image[i] - centre[2];
    float colour = v * v;
    v = image[kTileSize + i] - centre[3];
    colour += v * v;
    v = image[2 * kTileSize + i] - centre[4];
    colour += v * v;
    return {spatial, colour};
}

// Offer the pixels of a tile (top-left corner at row `top`, column `left`; its three
// channels `image`, its `distance` and `labels`) that lie in centre k's window to it. A
// pixel moves to centre k when (distance, k) is lexicographically smaller than its
// (distance, label), so the outcome does not depend on the order centres come in.
inline void evaluate(const float* __restrict image, float* __restrict distance,
                     int32_t* __restrict labels, float top, float left, const float* centre,
                     int32_t k, const int64_t* window, float spatial_weight) {
    const Window win(window);
    for (int i = 0; i < kTileSize; ++i) {
        const float yf = top + kCoords.rows[i];
        const float xf = left + kCoords.columns[i];
        // scikit-image's operation order: the spatial term, then the colour terms.
        const Terms terms = pixel_terms(image, i, yf, xf, centre, spatial_weight);
        const float d = terms.spatial + terms.colour;
        const float old = distance[i];
        const int32_t owner = labels[i];
        // Bitwise & and |: no short-circuit branches, so the loop vectorises.
        const bool better = (yf >= win.y0) & (yf <= win.y1) & (xf >= win.x0) & (xf <= win.x1) &
                            ((d < old) | ((d == old) & (k < owner)));
        distance[i] = better ? d : old;
        labels[i] = better ? k : owner;
    }
}

// Largest of a tile's values read as int32 bits: for floats >= 0 the bit patterns order
// as the values (and -1 stays below them), and an integer maximum vectorises where a
// float one does not (without -ffast-math).
inline int32_t tile_max(const float* values) {
    int32_t top = bits_of(values[0]);
    for (int i = 1; i < kTileSize; ++i) top = std::max(top, bits_of(values[i]));
    return top;
}

// Pruning limit of a tile in a step where all centres have the same colour (the first:
// scikit-image starts them black), after offering it to centre k. With a common colour a
// pixel's colour term C is the same for every centre, and a centre whose spatial term s
// exceeds s_k * (1 + 8 u) + 8 u C (u = 2**-24) is strictly farther after rounding. The
// limit is the largest such value over the tile's pixels, with a margin of 32 u that
// covers its own rounding; FAR where a pixel is outside centre k's window, -1 outside
// the frame. Returned as int32 bits like tile_max; `limit` (kTileSize) is scratch.
inline int32_t uniform_limit(const float* __restrict image, float top, float left,
                             const float* centre, const int64_t* window, float spatial_weight,
                             float height, float width, float* __restrict limit) {
    const Window win(window);
    const float scale = static_cast<float>(1.0 + 32.0 * 0x1p-24);
    const float margin = static_cast<float>(32.0 * 0x1p-24);
    for (int i = 0; i < kTileSize; ++i) {
        const float yf = top + kCoords.rows[i];
        const float xf = left + kCoords.columns[i];
        const Terms terms = pixel_terms(image, i, yf, xf, centre, spatial_weight);
        const float value = terms.spatial * scale + terms.colour * margin;
        const bool covered = (yf >= win.y0) & (yf <= win.y1) & (xf >= win.x0) & (xf <= win.x1);
        const bool inside = (yf < height) & (xf < width);
        const float outside = inside ? kFar : -1.0f;
        limit[i] = covered ? value : outside;
    }
    return tile_max(limit);
}

// Lower bounds, as int32 bits, of the distances from the n centres of a band's run (x,
// window columns [x0, x1), row term, colours at member_colour[c * stride]) to the pixels
// of the tile at column xa with colour box `box`: the spatial term at the nearest column
// (as nearest_square, in float32, exact for these integers) plus, unless `uniform`, the
// colour term at the box's nearest point. A template parameter rather than a branch in
// the loop, which would keep it from vectorising.
template <bool kUniform>
inline void bounds(const float* __restrict member_x, const float* __restrict window_x0,
                   const float* __restrict window_x1, const float* __restrict row_part,
                   const float* __restrict member_colour, int64_t stride, int64_t n, float xa,
                   const float* box, float spatial_weight, int32_t* __restrict bound_bits) {
    const float xb = xa + static_cast<float>(kTile);
    const float l0 = box[0], l1 = box[1], l2 = box[2], h0 = box[3], h1 = box[4], h2 = box[5];
    const float* __restrict m0 = member_colour;
    const float* __restrict m1 = member_colour + stride;
    const float* __restrict m2 = member_colour + 2 * stride;
    for (int64_t j = 0; j < n; ++j) {
        const float c = member_x[j];
        const float first_column = max_of(xa, window_x0[j]);
        const float last_column = min_of(xb, window_x1[j]) - 1.0f;
        const float near = min_of(max_of(floor_of(c), first_column), last_column);
        const float d = c - near;
        const float e = c - min_of(near + 1.0f, last_column);
        float bound = (row_part[j] + min_of(d * d, e * e)) * spatial_weight;
        if (!kUniform) {
            float g = max_of(max_of(l0 - m0[j], m0[j] - h0), 0.0f);
            float colour = g * g;
            g = max_of(max_of(l1 - m1[j], m1[j] - h1), 0.0f);
            colour += g * g;
            g = max_of(max_of(l2 - m2[j], m2[j] - h2), 0.0f);
            colour += g * g;
            bound += colour;
        }
        bound_bits[j] = bits_of(bound);
    }
}

// Move pixel i of a tile (its channels `image`, corner at row `y0`, column `x0`) from
// centre `was` (none if -1) to `now` in the centre sums (k, 6).
inline void move_pixel(const float* image, int y0, int x0, int i, int64_t* sums, int32_t was,
                       int32_t now) {
    const int64_t y = y0 + i / kTile;
    const int64_t x = x0 + i % kTile;
    int64_t* to = sums + 6 * static_cast<int64_t>(now);
    to[0] += 1;
    to[1] += y;
    to[2] += x;
    int64_t* from = was >= 0 ? sums + 6 * static_cast<int64_t>(was) : nullptr;
    if (from) {
        from[0] -= 1;
        from[1] -= y;
        from[2] -= x;
    }
    for (int c = 0; c < 3; ++c) {
        const auto v = static_cast<int64_t>(static_cast<double>(image[c * kTileSize + i]) *
                                            kFixedOne);
        to[3 + c] += v;
        if (from) from[3 + c] -= v;
    }
}

// Raster `out` (h, w) from tiled labels (bands, tiles, kTileSize).
void untile(const int32_t* tiled, const Tiling& tiling, int32_t* out) {
    for (int y = 0; y < tiling.height; ++y) {
        const int32_t* row = tiled + static_cast<int64_t>(y / kBand) * tiling.n_tiles * kTileSize +
                             (y % kBand) * kTile;
        for (int x = 0; x < tiling.width; ++x)
            out[static_cast<int64_t>(y) * tiling.width + x] =
                row[static_cast<int64_t>(x / kTile) * kTileSize + x % kTile];
    }
}

// SLIC labels of one frame into `out`; returns the number of labels.
int64_t slic_frame(const uint8_t* frame, const Tiling& tiling, const float* lut,
                   const Grid& grid, const int64_t* row_source, const int64_t* column_source,
                   const Workspace& ws, int32_t* out) {
    const int h = tiling.height, w = tiling.width;
    const int64_t k = grid.n_centres;
    std::vector<float> centres(grid.initial, grid.initial + 5 * k);
    lab_rows(frame, h, w, lut, ws.lab, 0, h);
    smooth_rows(ws.lab, tiling, grid.weights, grid.radius, grid.scale, row_source, column_source,
                ws.image, 0, h);
    colour_boxes(ws.image, tiling, ws.boxes);
    std::fill_n(ws.labels, static_cast<int64_t>(tiling.n_bands) * tiling.n_tiles * kTileSize, -1);
    // std::vector<bool> is packed bits; a plain array of bool is what update_centres takes.
    std::unique_ptr<bool[]> alive(new bool[k]);
    std::fill_n(alive.get(), k, true);
    std::vector<int64_t> windows(4 * k);
    std::vector<int64_t> sums(6 * k, 0);
    for (int i = 0; i < grid.n_iter; ++i) {
        centre_windows(centres.data(), alive.get(), k, grid.half_y, grid.half_x, h, w,
                       windows.data());
        // The seeds all start black (scikit-image's zero colours).
        kmeans_step(ws.image, ws.boxes, centres.data(), k, windows.data(), grid.spatial_weight,
                    tiling, grid.guess, i == 0, ws.distance, ws.labels, sums.data());
        update_centres(sums.data(), centres.data(), alive.get(), k);
    }
    untile(ws.labels, tiling, ws.raster);
    return enforce_connectivity(ws.raster, h, w, grid.min_size, grid.max_size, out);
}

}  // namespace

void lab_rows(const uint8_t* frame, int h, int w, const float* lut, float* lab, int r0, int r1) {
    std::vector<float> rgb(3 * static_cast<std::size_t>(w));
    float* __restrict red = rgb.data();
    float* __restrict green = red + w;
    float* __restrict blue = green + w;
    const int64_t plane = static_cast<int64_t>(h) * w;
    for (int y = r0; y < r1; ++y) {
        // Table look-ups first, the arithmetic in a separate loop that vectorises.
        const uint8_t* row = frame + static_cast<int64_t>(y) * w * 3;
        for (int x = 0; x < w; ++x) {
            red[x] = lut[row[3 * x]];
            green[x] = lut[row[3 * x + 1]];
            blue[x] = lut[row[3 * x + 2]];
        }
        float* __restrict l_row = lab + static_cast<int64_t>(y) * w;
        float* __restrict a_row = l_row + plane;
        float* __restrict b_row = a_row + plane;
        for (int x = 0; x < w; ++x) {
            const float r = red[x], g = green[x], b = blue[x];
            const float fx = lab_f(r * kXyzn[0][0] + g * kXyzn[0][1] + b * kXyzn[0][2]);
            const float fy = lab_f(r * kXyzn[1][0] + g * kXyzn[1][1] + b * kXyzn[1][2]);
            const float fz = lab_f(r * kXyzn[2][0] + g * kXyzn[2][1] + b * kXyzn[2][2]);
            l_row[x] = 116.0f * fy - 16.0f;
            a_row[x] = 500.0f * (fx - fy);
            b_row[x] = 200.0f * (fy - fz);
        }
    }
}

std::vector<int64_t> reflect_table(int64_t n, int64_t r) {
    std::vector<int64_t> table(n + 2 * r);
    for (int64_t i = 0; i < n + 2 * r; ++i) {
        int64_t j = (i - r) % (2 * n);
        if (j < 0) j += 2 * n;  // Python's modulo: non-negative for a positive divisor
        table[i] = j < n ? j : 2 * n - 1 - j;
    }
    return table;
}

// GCC 12's unroll-and-jam of the tap loops (-O3) makes this twice as slow.
__attribute__((optimize("no-loop-unroll-and-jam"))) void smooth_rows(const float* lab, const Tiling& tiling, const float* weights, int radius,
                 float scale, const int64_t* row_source, const int64_t* column_source,
                 float* image, int r0, int r1) {
    const int h = tiling.height, w = tiling.width, r = radius;
    const float wc = weights[r];
    std::vector<float> padded_store(static_cast<std::size_t>(w) + 2 * r);
    std::vector<float> out_store(w);
    float* __restrict padded = padded_store.data();
    float* __restrict column = padded + r;
    float* __restrict out = out_store.data();
    for (int c = 0; c < 3; ++c) {
        const float* plane = lab + static_cast<int64_t>(c) * h * w;
        for (int y = r0; y < r1; ++y) {
            const float* centre = plane + static_cast<int64_t>(y) * w;
            for (int x = 0; x < w; ++x) column[x] = centre[x] * wc;
            // Pair terms farthest first, as scipy.ndimage.correlate1d adds them.
            for (int j = r; j > 0; --j) {
                const float* above = plane + row_source[y + r - j] * w;
                const float* below = plane + row_source[y + r + j] * w;
                const float wj = weights[r - j];
                for (int x = 0; x < w; ++x) column[x] += (above[x] + below[x]) * wj;
            }
            for (int i = 0; i < r; ++i) {
                padded[i] = column[column_source[i]];
                padded[r + w + i] = column[column_source[r + w + i]];
            }
            for (int x = 0; x < w; ++x) out[x] = column[x] * wc;
            for (int j = r; j > 0; --j) {
                const float* left = padded + r - j;
                const float* right = padded + r + j;
                const float wj = weights[r - j];
                for (int x = 0; x < w; ++x) out[x] += (left[x] + right[x]) * wj;
            }
            const int64_t base =
                ((static_cast<int64_t>(y / kBand) * tiling.n_tiles * 3 + c) * kTileSize) +
                (y % kBand) * kTile;
            for (int t = 0; t < tiling.n_tiles; ++t) {
                float* dst = image + base + static_cast<int64_t>(t) * 3 * kTileSize;
                const int n = std::min(kTile, w - t * kTile);
                for (int i = 0; i < n; ++i) dst[i] = out[t * kTile + i] * scale;
            }
        }
    }
}

void colour_boxes(const float* image, const Tiling& tiling, float* boxes) {
    for (int b = 0; b < tiling.n_bands; ++b) {
        const int n_rows = std::min(kBand, tiling.height - b * kBand);
        for (int t = 0; t < tiling.n_tiles; ++t) {
            const int n_columns = std::min(kTile, tiling.width - t * kTile);
            const int64_t tile = static_cast<int64_t>(b) * tiling.n_tiles + t;
            for (int c = 0; c < 3; ++c) {
                const float* values = image + (tile * 3 + c) * kTileSize;
                // Column-wise extremes first (element-wise minima vectorise, a float
                // reduction does not); the values are finite, so any order is exact.
                float lo[kTile], hi[kTile];
                std::fill_n(lo, kTile, kFar);
                std::fill_n(hi, kTile, -kFar);
                for (int row = 0; row < n_rows; ++row) {
                    for (int x = 0; x < kTile; ++x) {
                        const float v = values[row * kTile + x];
                        lo[x] = v < lo[x] ? v : lo[x];
                        hi[x] = v > hi[x] ? v : hi[x];
                    }
                }
                float low = kFar, high = -kFar;
                for (int x = 0; x < n_columns; ++x) {
                    low = std::min(low, lo[x]);
                    high = std::max(high, hi[x]);
                }
                boxes[tile * 6 + c] = low;
                boxes[tile * 6 + 3 + c] = high;
            }
        }
    }
}

void centre_windows(const float* centres, const bool* alive, int64_t n_centres, int64_t half_y,
                    int64_t half_x, int h, int w, int64_t* windows) {
    for (int64_t k = 0; k < n_centres; ++k) {
        int64_t* window = windows + 4 * k;
        if (!alive[k]) {
            std::fill_n(window, 4, 0);
            continue;
        }
        // In float64, as scikit-image computes them, truncated toward zero.
        const double cy = centres[5 * k];
        const double cx = centres[5 * k + 1];
        window[0] = static_cast<int64_t>(std::max(cy - static_cast<double>(half_y), 0.0));
        window[1] = static_cast<int64_t>(std::min(cy + static_cast<double>(half_y) + 1.0,
                                                  static_cast<double>(h)));
        window[2] = static_cast<int64_t>(std::max(cx - static_cast<double>(half_x), 0.0));
        window[3] = static_cast<int64_t>(std::min(cx + static_cast<double>(half_x) + 1.0,
                                                  static_cast<double>(w)));
    }
}

// Each tile is first offered to one likely owner: the previous owner of its middle pixel
// (`guess` before the first step). Then every centre whose window reaches the tile is
// offered it, unless a lower bound of its distance to the tile's pixels exceeds the
// tile's largest distance so far (it could not take a pixel). The bound is the spatial
// term at the nearest row and column plus the colour term at the nearest point of the
// tile's colour box, with the kernel's own float32 operations: rounding is monotone, so
// it bounds the computed distances too. When all centres share one colour (`uniform`,
// the first step) the colour terms cancel out and the spatial bound is compared with
// uniform_limit instead. A band's centres are sorted by column, so the ones whose
// windows reach a tile are a contiguous run.
void kmeans_step(const float* image, const float* boxes, const float* centres,
                 int64_t n_centres, const int64_t* windows, float spatial_weight,
                 const Tiling& tiling, const int32_t* guess, bool uniform, float* distance,
                 int32_t* labels, int64_t* sums) {
    const int h = tiling.height, w = tiling.width;
    const float height = static_cast<float>(h), width = static_cast<float>(w);
    alignas(64) int32_t before[kTileSize];
    alignas(64) float limit[kTileSize];
    // The band's centres, by column: index, row term, x, window columns [x0, x1), colour.
    std::vector<int64_t> members(n_centres);
    std::vector<float> row_part(n_centres), member_x(n_centres), window_x0(n_centres),
        window_x1(n_centres), member_colour(3 * n_centres);
    std::vector<int32_t> bound_bits(n_centres);
    std::vector<int64_t> by_column(n_centres);
    std::iota(by_column.begin(), by_column.end(), 0);
    // Ties may come in any order: equal columns have equal windows.
    std::sort(by_column.begin(), by_column.end(),
              [&](int64_t a, int64_t b) { return centres[5 * a + 1] < centres[5 * b + 1]; });
    for (int b = 0; b < tiling.n_bands; ++b) {
        const int r0 = b * kBand;
        const int r1 = std::min(r0 + kBand, h);
        const float top = static_cast<float>(r0);
        const int middle = std::min(kBand / 2, r1 - r0 - 1) * kTile + kTile / 2;
        int64_t n = 0;
        for (const int64_t k : by_column) {
            const int64_t* window = windows + 4 * k;
            if (window[0] < r1 && window[1] > r0) {
                members[n] = k;
                row_part[n] = nearest_square(centres[5 * k], std::max<int64_t>(r0, window[0]),
                                             std::min<int64_t>(r1, window[1]));
                member_x[n] = centres[5 * k + 1];
                // Both grow with the centre's column.
                window_x0[n] = static_cast<float>(window[2]);
                window_x1[n] = static_cast<float>(window[3]);
                for (int c = 0; c < 3; ++c) member_colour[c * n_centres + n] = centres[5 * k + 2 + c];
                ++n;
            }
        }
        int64_t lo = 0, hi = 0;
        for (int t = 0; t < tiling.n_tiles; ++t) {
            const int64_t tile = static_cast<int64_t>(b) * tiling.n_tiles + t;
            const float* tile_image = image + tile * 3 * kTileSize;
            float* tile_distance = distance + tile * kTileSize;
            int32_t* tile_labels = labels + tile * kTileSize;
            const float* box = boxes + tile * 6;
            const float xa = static_cast<float>(t * kTile);
            const float xb = xa + static_cast<float>(kTile);
            while (lo < n && window_x1[lo] <= xa) ++lo;
            while (hi < n && window_x0[hi] < xb) ++hi;
            for (int i = 0; i < kTileSize; ++i) {
                before[i] = tile_labels[i];
                // Pixels outside the frame get -1: never in a window, never the largest.
                const bool inside = (top + kCoords.rows[i] < height) &
                                    (xa + kCoords.columns[i] < width);
                tile_distance[i] = inside ? kFar : -1.0f;
            }
            int32_t first = t * kTile + kTile / 2 < w ? before[middle] : -1;
            first = first >= 0 ? first : guess[tile];
            evaluate(tile_image, tile_distance, tile_labels, top, xa, centres + 5 * first, first,
                     windows + 4 * first, spatial_weight);
            int32_t largest =
                uniform ? uniform_limit(tile_image, top, xa, centres + 5 * first,
                                        windows + 4 * first, spatial_weight, height, width, limit)
                        : tile_max(tile_distance);
            // Bounds of the run of centres reaching the tile, vectorised; the nearest
            // column as in nearest_square, in float32 (exact for these integers).
            (uniform ? bounds<true> : bounds<false>)(
                member_x.data() + lo, window_x0.data() + lo, window_x1.data() + lo,
                row_part.data() + lo, member_colour.data() + lo, n_centres, hi - lo, xa, box,
                spatial_weight, bound_bits.data() + lo);
            for (int64_t j = lo; j < hi; ++j) {
                const int64_t k = members[j];
                if (k != first && bound_bits[j] <= largest) {
                    evaluate(tile_image, tile_distance, tile_labels, top, xa, centres + 5 * k,
                             static_cast<int32_t>(k), windows + 4 * k, spatial_weight);
                    if (!uniform) largest = tile_max(tile_distance);
                }
            }
            // Changes are sparse: find the tile rows that have any, vectorised.
            for (int row = 0; row < kTileSize; row += kTile) {
                int changed = 0;
                for (int i = row; i < row + kTile; ++i) changed += tile_labels[i] != before[i];
                if (!changed) continue;
                for (int i = row; i < row + kTile; ++i) {
                    if (tile_labels[i] != before[i])
                        move_pixel(tile_image, r0, t * kTile, i, sums, before[i], tile_labels[i]);
                }
            }
        }
    }
}

void update_centres(const int64_t* sums, float* centres, bool* alive, int64_t n_centres) {
    for (int64_t k = 0; k < n_centres; ++k) {
        const int64_t* s = sums + 6 * k;
        if (s[0] == 0) {
            alive[k] = false;
            continue;
        }
        // float64 means rounded to float32, as NumPy's int64 / int64 gives.
        const double n = static_cast<double>(s[0]);
        float* centre = centres + 5 * k;
        centre[0] = static_cast<float>(static_cast<double>(s[1]) / n);
        centre[1] = static_cast<float>(static_cast<double>(s[2]) / n);
        for (int c = 0; c < 3; ++c)
            centre[2 + c] = static_cast<float>(static_cast<double>(s[3 + c]) / kFixedOne / n);
    }
}

// Raster-order breadth-first search over 4-neighbours (x+1, x-1, y+1, y-1) with the same
// label, stopped at max_size pixels; a component gets the next new label unless it has
// fewer than min_size pixels: then it takes the new label of the last already
// relabelled, differently labelled neighbour the search met (the next new label itself
// if none).
int64_t enforce_connectivity(const int32_t* labels, int h, int w, int64_t min_size,
                             int64_t max_size, int32_t* out) {
    const int64_t n_pixels = static_cast<int64_t>(h) * w;
    std::fill_n(out, n_pixels, -1);
    // A component never holds more than the frame's pixels.
    const int64_t capacity = std::min(max_size, n_pixels);
    std::vector<int32_t> queue_y(capacity), queue_x(capacity);
    int32_t new_label = 0;
    for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
            const int64_t p = static_cast<int64_t>(y) * w + x;
            if (out[p] >= 0) continue;
            const int32_t label = labels[p];
            int32_t adjacent = new_label;
            out[p] = new_label;
            queue_y[0] = y;
            queue_x[0] = x;
            int64_t size = 1, head = 0;
            auto visit = [&](int64_t q, int qy, int qx) {
                const int32_t o = out[q];
                if (labels[q] == label && o < 0) {
                    out[q] = new_label;
                    queue_y[size] = qy;
                    queue_x[size] = qx;
                    ++size;
                } else if (o >= 0 && o != new_label) {
                    adjacent = o;
                }
                return size >= max_size;
            };
            while (head < size && size < max_size) {
                const int qy = queue_y[head], qx = queue_x[head];
                const int64_t q = static_cast<int64_t>(qy) * w + qx;
                ++head;
                // When the component reaches max_size the search stops at once, skipping
                // the remaining neighbours, as scikit-image's does.
                if (qx + 1 < w && visit(q + 1, qy, qx + 1)) break;
                if (qx > 0 && visit(q - 1, qy, qx - 1)) break;
                if (qy + 1 < h && visit(q + w, qy + 1, qx)) break;
                if (qy > 0) visit(q - w, qy - 1, qx);
            }
            if (size < min_size) {
                for (int64_t i = 0; i < size; ++i)
                    out[static_cast<int64_t>(queue_y[i]) * w + queue_x[i]] = adjacent;
            } else {
                ++new_label;
            }
        }
    }
    // A last component too small and without relabelled neighbours keeps new_label,
    // hence the maximum rather than new_label.
    return static_cast<int64_t>(*std::max_element(out, out + n_pixels)) + 1;
}

void slic_frames(const uint8_t* frames, int64_t n_frames, const Tiling& tiling,
                 const float* luts, const Grid& grid, const Workspace* workspaces,
                 int n_workers, int32_t* out, int64_t* counts) {
    const std::vector<int64_t> row_source = reflect_table(tiling.height, grid.radius);
    const std::vector<int64_t> column_source = reflect_table(tiling.width, grid.radius);
    const int64_t frame_pixels = static_cast<int64_t>(tiling.height) * tiling.width;
    std::exception_ptr failure;
#pragma omp parallel num_threads(n_workers)
    {
        const Workspace& ws = workspaces[omp_get_thread_num()];
#pragma omp for schedule(dynamic)
        for (int64_t f = 0; f < n_frames; ++f) {
            // An exception must not leave the parallel region: the first is rethrown.
            try {
                counts[f] = slic_frame(frames + f * frame_pixels * 3, tiling, luts + 256 * f, grid,
                                       row_source.data(), column_source.data(), ws,
                                       out + f * frame_pixels);
            } catch (...) {
#pragma omp critical
                if (!failure) failure = std::current_exception();
            }
        }
    }
    if (failure) std::rethrow_exception(failure);
}

}  // namespace fastunlc::slic
