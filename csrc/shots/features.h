// Per-frame colour histograms, the KTS shot features of the reference (fastunlc/shots.py).
#pragma once

#include <cstdint>

namespace fastunlc::shots {

// The colour conversion of skimage.color.rgb2lab (D65, 2 degrees), in the caller's numbers.
struct LabConversion {
    const double* linear;     // (256,) a uint8 level, linearised sRGB (skimage's rgb2xyz)
    const double* xyz_from_rgb;  // (3, 3) row-major, skimage's xyz_from_rgb
    const double* white;      // (3,) the D65 white point that xyz2lab divides by
};

// Writes out[f * 6 * bins + c * bins + b]: frame f's L1-normalised histograms of R, G, B
// (uint8 levels) and CIELAB L, a, b, binned with np.histogram's rule over the ranges whose
// edges are edges[c * (bins + 1) ...] (6 rows of bins + 1, np.linspace). frames is
// (n, h, w, 3) uint8, C order. Each distinct colour of a frame is converted once.
// Frames run in parallel on n_threads OpenMP threads (<= 0: OpenMP's default).
void colour_histograms(const uint8_t* frames, int64_t n, int64_t pixels, const LabConversion& lab,
                       const double* edges, int bins, int n_threads, double* out);

}  // namespace fastunlc::shots
