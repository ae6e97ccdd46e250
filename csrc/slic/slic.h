// SLIC superpixels reproducing scikit-image 0.26's `slic` on RGB frames, in float32
// (the steps, and what is reproduced of each, are described in slic.cpp and in
// fastunlc/_kernels/cpu/slic.py). All arrays are C-order; the callers (binding.cpp)
// check shapes and index ranges, nothing here checks or throws.
#pragma once

#include <cstdint>
#include <vector>

namespace fastunlc::slic {

constexpr int kBand = 16;                  // rows per band, the height of a tile
constexpr int kTile = 16;                  // columns per tile: one 512-bit vector of float32
constexpr int kTileSize = kBand * kTile;
constexpr double kFixedOne = 4294967296.0;  // colours are summed in units of 1 / 2**32

// Tiles of a height x width frame: ceil(height / kBand) bands of ceil(width / kTile).
struct Tiling {
    int height = 0;
    int width = 0;
    int n_bands = 0;
    int n_tiles = 0;
    Tiling(int h, int w)
        : height(h), width(w), n_bands((h + kBand - 1) / kBand), n_tiles((w + kTile - 1) / kTile) {}
};

// CIELAB (D65, 2 degrees) of rows [r0, r1) of `frame` (h, w, 3) uint8 into `lab` (3, h, w);
// `lut` (256,) is the rescaled, linearised sRGB value of each uint8 level.
void lab_rows(const uint8_t* frame, int h, int w, const float* lut, float* lab, int r0, int r1);

// Source index of positions -r .. n + r - 1 of a line of n samples extended as
// scipy.ndimage's 'reflect' mode does (dcba|abcd|dcba, repeated for short lines).
std::vector<int64_t> reflect_table(int64_t n, int64_t r);

// Gaussian smoothing of rows [r0, r1) of `lab` (3, h, w) with the symmetric kernel
// `weights` (2 radius + 1,), along y then x, times `scale`, into the tiled `image`
// (bands, tiles, 3, kTileSize). `row_source` (h + 2 radius) and `column_source`
// (w + 2 radius) are reflect_table(h, radius) and reflect_table(w, radius).
void smooth_rows(const float* lab, const Tiling& tiling, const float* weights, int radius,
                 float scale, const int64_t* row_source, const int64_t* column_source,
                 float* image, int r0, int r1);

// Per-channel minimum and maximum of each tile's pixels inside the frame into `boxes`
// (bands, tiles, 6) as min L, a, b, max L, a, b.
void colour_boxes(const float* image, const Tiling& tiling, float* boxes);

// Search windows (k, 4) as y0, y1, x0, x1 of `centres` (k, 5: y, x, L, a, b), as
// scikit-image computes them from the half-sizes `half_y`, `half_x`; empty when dead.
void centre_windows(const float* centres, const bool* alive, int64_t n_centres, int64_t half_y,
                    int64_t half_x, int h, int w, int64_t* windows);

// One k-means assignment step over the tiled image and the change it makes to `sums`
// (k, 6): every pixel goes to the first centre, in centre order, at the smallest
// distance among those whose window holds it (keeps its label if none does).
//   image (bands, tiles, 3, kTileSize), boxes (bands, tiles, 6), centres (k, 5),
//   windows (k, 4), guess (bands, tiles) in [0, k), labels (bands, tiles, kTileSize) in
//   [-1, k) updated, distance (bands, tiles, kTileSize) scratch.
void kmeans_step(const float* image, const float* boxes, const float* centres,
                 int64_t n_centres, const int64_t* windows, float spatial_weight,
                 const Tiling& tiling, const int32_t* guess, bool uniform, float* distance,
                 int32_t* labels, int64_t* sums);

// Every centre to the mean of its pixels (sums as kmeans_step's); a centre without
// pixels dies.
void update_centres(const int64_t* sums, float* centres, bool* alive, int64_t n_centres);

// scikit-image's _enforce_label_connectivity_cython on a 2-D label image `labels` (h, w)
// into `out` (h, w), labels in [0, n); returns n. max_size >= 1, h * w >= 1.
int64_t enforce_connectivity(const int32_t* labels, int h, int w, int64_t min_size,
                             int64_t max_size, int32_t* out);

// One worker's working arrays (a slice of fastunlc/_kernels/cpu/slic.py's workspace):
// lab (3, h, w), image (bands, tiles, 3, kTileSize) with zeros outside the frame,
// distance and labels (bands, tiles, kTileSize), raster (h, w), boxes (bands, tiles, 6).
struct Workspace {
    float* lab;
    float* image;
    float* distance;
    int32_t* labels;
    int32_t* raster;
    float* boxes;
};

// What a SLIC run shares across frames (fastunlc/superpixels.py's _Grid).
struct Grid {
    const float* weights;    // (2 radius + 1,) Gaussian kernel
    int radius;
    float scale;             // 1 / compactness
    const float* initial;    // (k, 5) seeds, colours 0
    int64_t n_centres;
    int64_t half_y, half_x;  // window half-sizes
    float spatial_weight;    // 1 / step**2
    const int32_t* guess;    // (bands, tiles) in [0, k)
    int n_iter;
    int64_t min_size, max_size;  // max_size >= 1
};

// SLIC labels of every frame of `frames` (n, h, w, 3), frames in parallel with OpenMP,
// at most n_workers threads, each with its own workspace. luts (n, 256); out (n, h, w)
// labels in [0, counts[f]); counts (n,). Throws std::bad_alloc when memory runs out.
void slic_frames(const uint8_t* frames, int64_t n_frames, const Tiling& tiling,
                 const float* luts, const Grid& grid, const Workspace* workspaces,
                 int n_workers, int32_t* out, int64_t* counts);

}  // namespace fastunlc::slic
