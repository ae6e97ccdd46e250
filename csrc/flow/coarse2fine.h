// Coarse-to-fine variational optical flow (Brox et al. 2004 energy, Ce Liu's solver),
// the flow the uNLC reference computes through pyflow. See coarse2fine.cpp for the
// algorithm and fastunlc/reference/flow.py for the same steps in plain NumPy.
#pragma once

#include <cstdint>
#include <vector>

#include "flow/lanes.h"

namespace fastunlc::flow {

struct Coarse2FineParams {
    double alpha = 0.012;  // weight of the smoothness term
    double ratio = 0.75;   // size ratio of consecutive pyramid levels, in [0.4, 0.98]
    int min_width = 20;    // the coarsest level is about this wide (pixels)
    int n_outer = 7;       // outer fixed-point iterations at the finest level (+1 per level up)
    int n_inner = 1;       // inner fixed-point iterations
    int n_sor = 30;        // SOR sweeps at the finest level (+3 per level up)
};

// One pyramid level and how it is made from a finer image: smooth `source` (-1 for the
// input frame, else a level index) with a Gaussian of `sigma` and `radius` taps, then
// resample by `scale`. Level 0 is the input itself.
struct PyramidLevel {
    int height = 0;
    int width = 0;
    int source = -1;
    double sigma = 0.0;
    int radius = 0;
    double scale = 1.0;
};

// Levels for frames of height x width, finest first. Throws std::invalid_argument for a
// ratio outside [0.4, 0.98], min_width < 1, or a level that would be empty.
std::vector<PyramidLevel> pyramid_levels(int height, int width, double ratio, int min_width);

// Throws std::invalid_argument when a parameter is out of range.
void check_params(const Coarse2FineParams& params);

// Arithmetic of the solver: float64 (the reference's) or float32, which puts twice the
// pairs in one SIMD register. The pyramids are built in float64 either way.
enum class Precision { kFloat64, kFloat32 };

// Pairs solved side by side with `precision`: kPackWidth (8 with AVX-512, 4 with AVX,
// else 2) for float64, kPack32Width = 2 kPackWidth for float32.
int pack_width(Precision precision);

// Flow of every pair (a, b) of `frames`, from frame a to frame b: frame_a(x, y) is
// close to frame_b(x + u, y + v).
//   frames: n_frames x height x width x 3 doubles (RGB in [0, 1]), C order, finite.
//   pairs:  n_pairs x 2 frame indices, each in [0, n_frames).
//   out:    n_pairs x height x width x 2 values (u, v in pixels), written in full; the
//           solver works in `precision`, a narrower output is its rounding.
// Each frame's pyramid is built once. Pairs are solved W = pack_width(precision) at a
// time, one per SIMD lane, with the same IEEE operations as one at a time (in the same
// precision), so a pair's flow does not depend on `pack`, on the other pairs nor on
// threads:
//   pack = 0: full packs; a remainder of at least 3 pairs (2 if W < 8) in a pack with
//             idle lanes, a smaller one pair by pair (what is fastest);
//   pack = W: full packs, any remainder in a pack with idle lanes;
//   pack = 1: pair by pair (the scalar path).
// Parallel over packs and single pairs with OpenMP (n_threads <= 0: OpenMP's default).
// Arguments must have been validated (pyramid_levels, check_params, pack in {0, 1, W});
// nothing here throws once the buffers are allocated.
void coarse2fine_flow_pairs(const double* frames, int64_t n_frames, int height, int width,
                            const int64_t* pairs, int64_t n_pairs,
                            const Coarse2FineParams& params, int n_threads, int pack,
                            Precision precision, float* out);
void coarse2fine_flow_pairs(const double* frames, int64_t n_frames, int height, int width,
                            const int64_t* pairs, int64_t n_pairs,
                            const Coarse2FineParams& params, int n_threads, int pack,
                            Precision precision, double* out);

}  // namespace fastunlc::flow
