// Superpixel descriptors (spec section 4): bounding boxes, patch placement, the HOG of a
// grey patch and the six colour histograms (R, G, B, CIELAB L, a, b), with NumPy's and
// scikit-image's arithmetic to the last bit. See descriptors.cpp for how, and
// fastunlc/reference/descriptors.py for the same steps in plain NumPy / scikit-image.
#pragma once

#include <cstdint>

namespace fastunlc::descriptors {

// Block normalisations of the HOG (scikit-image's names), numbered as BLOCK_NORMS in
// fastunlc/_kernels/cpu/descriptors.py.
enum BlockNorm : int { kL1 = 0, kL1Sqrt = 1, kL2 = 2, kL2Hys = 3 };

// Bounding boxes of the labels of `labels` (h x w, C order, in [0, n_labels)):
// `boxes` (n_labels x 4) gets (xmin, ymin, xmax, ymax), inclusive; a label with no pixel
// gets (w, h, -1, -1). Returns -1, or the flat index of the first pixel whose label is
// out of range (the boxes are then incomplete).
int64_t region_boxes(const int32_t* labels, int64_t h, int64_t w, int64_t n_labels,
                     int64_t* boxes);

// Patch start along one axis for a box [lo, hi]: `start`, the reference's
// int((lo + hi - size) / 2) (true division, truncation toward zero), and `first`, the
// start after the reference's shift inside [0, extent - 1) (the last row or column is
// never in a patch). Needs extent >= size + 1.
void place_1d(int64_t lo, int64_t hi, int64_t size, int64_t extent, int64_t* start,
              int64_t* first);

// np.sum of n doubles in NumPy's pairwise order (blocks of 128 summed with 8 running
// sums, longer runs split in two at a multiple of 8), bit for bit.
double pairwise_sum(const double* a, int64_t n);

// np.histogram's bin of x among `edges` (n_bins + 1 values from np.linspace over
// [edges[0], edges[n_bins]]): the last bin closed, values outside the range (and NaN)
// give -1.
int64_t bin_index(double x, const double* edges, int64_t n_bins);

// L1-normalise each of `rows` rows of `cols` values in place, dividing by
// sum + (sum < 1e-4), the reference's rule (an all-zero row stays zero).
void normalise_rows(double* hist, int64_t rows, int64_t cols);

// HOG and colour histograms of n square patches of side `size`, in parallel over patches.
//   grey:      n x size x size doubles, skimage.color.rgb2gray of the patches;
//   rgb:       n x size x size x 3 uint8, the patches;
//   lab:       n_colours x 3 doubles, CIELAB of colours, and colour_of (n x size x size,
//              each in [0, n_colours)) the colour of each patch pixel;
//   edges:     6 x (bins + 1) bin edges of R, G, B, L, a, b (np.linspace);
//   out:       n rows of `stride` doubles: the HOG (orientations * (size / cell)^2 values,
//              order cell row, cell column, orientation) then the six L1-normalised
//              histograms (6 * bins values); the rest of each row is left untouched.
// Arguments must have been validated (orientations, cell >= 1, cell <= size, norm a
// BlockNorm); nothing here throws.
void patch_descriptors(const double* grey, const uint8_t* rgb, const double* lab,
                       const int32_t* colour_of, int64_t n, int64_t size, const double* edges,
                       int64_t bins, int64_t orientations, int64_t cell, int norm,
                       double* out, int64_t stride);

}  // namespace fastunlc::descriptors
