// Bindings of the coarse-to-fine flow (csrc/flow/coarse2fine.cpp).
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "flow/coarse2fine.h"

namespace fastunlc {

namespace {

// (P, 2) int32 or int64 frame indices, each in [0, n_frames), as int64.
std::vector<int64_t> pair_indices(const py::array& pairs, int64_t n_frames) {
    const bool is32 = pairs.dtype().is(py::dtype::of<int32_t>());
    const bool is64 = pairs.dtype().is(py::dtype::of<int64_t>());
    if (!is32 && !is64)
        throw py::value_error("pairs must be int32 or int64, got " + dtype_of(pairs));
    if (pairs.ndim() != 2 || pairs.shape(1) != 2)
        throw py::value_error("pairs must have shape (P, 2), got " + shape_of(pairs));
    std::vector<int64_t> out(static_cast<std::size_t>(pairs.shape(0)) * 2);
    if (is32) {
        auto view = pairs.unchecked<int32_t, 2>();
        for (py::ssize_t p = 0; p < view.shape(0); ++p)
            for (int e = 0; e < 2; ++e) out[2 * p + e] = view(p, e);
    } else {
        auto view = pairs.unchecked<int64_t, 2>();
        for (py::ssize_t p = 0; p < view.shape(0); ++p)
            for (int e = 0; e < 2; ++e) out[2 * p + e] = view(p, e);
    }
    for (std::size_t e = 0; e < out.size(); ++e) {
        if (out[e] < 0 || out[e] >= n_frames)
            throw py::value_error("pairs[" + std::to_string(e / 2) + "] = (" +
                                  std::to_string(out[e - e % 2]) + ", " +
                                  std::to_string(out[e - e % 2 + 1]) +
                                  ") is out of range for " + std::to_string(n_frames) + " frames");
    }
    return out;
}

py::array coarse2fine_flow_pairs(const py::array& frames_in, const py::array& pairs_in,
                                 double alpha, double ratio, int min_width, int n_outer,
                                 int n_inner, int n_sor, int n_threads, int pack, bool float64,
                                 const std::string& precision_name) {
    if (!frames_in.dtype().is(py::dtype::of<double>()))
        throw py::value_error("frames must be float64 in [0, 1], got " + dtype_of(frames_in));
    if (frames_in.ndim() != 4 || frames_in.shape(3) != 3)
        throw py::value_error("frames must have shape (n, h, w, 3), got " + shape_of(frames_in));
    const auto frames = py::array_t<double, py::array::c_style>::ensure(frames_in);
    const int64_t n_frames = frames.shape(0);
    if (frames.shape(1) > INT32_MAX / 4 || frames.shape(2) > INT32_MAX / 4)
        throw py::value_error("frames are too large: " + shape_of(frames_in));
    const int height = static_cast<int>(frames.shape(1));
    const int width = static_cast<int>(frames.shape(2));
    const std::vector<int64_t> pairs = pair_indices(pairs_in, n_frames);
    const int64_t n_pairs = static_cast<int64_t>(pairs.size() / 2);

    fastunlc::flow::Coarse2FineParams params;
    params.alpha = alpha;
    params.ratio = ratio;
    params.min_width = min_width;
    params.n_outer = n_outer;
    params.n_inner = n_inner;
    params.n_sor = n_sor;
    if (precision_name != "float64" && precision_name != "float32")
        throw py::value_error("precision must be 'float64' or 'float32', got '" +
                              precision_name + "'");
    const auto precision = precision_name == "float32" ? fastunlc::flow::Precision::kFloat32
                                                       : fastunlc::flow::Precision::kFloat64;
    const int width_of_pack = fastunlc::flow::pack_width(precision);
    if (pack != 0 && pack != 1 && pack != width_of_pack)
        throw py::value_error("pack must be 0, 1 or " + std::to_string(width_of_pack) +
                              ", got " + std::to_string(pack) + " (precision '" +
                              precision_name + "')");
    try {
        fastunlc::flow::check_params(params);
        fastunlc::flow::pyramid_levels(height, width, ratio, min_width);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    const double* data = frames.data();
    const std::size_t n_values = static_cast<std::size_t>(frames.size());
    for (std::size_t e = 0; e < n_values; ++e) {
        if (!std::isfinite(data[e]))
            throw py::value_error("frames must be finite; found " + std::to_string(data[e]) +
                                  " at flat index " + std::to_string(e));
    }
    const std::vector<py::ssize_t> shape = {static_cast<py::ssize_t>(n_pairs),
                                            static_cast<py::ssize_t>(height),
                                            static_cast<py::ssize_t>(width), 2};
    auto run = [&](auto out) {
        auto* result = out.mutable_data();
        {
            py::gil_scoped_release release;
            fastunlc::flow::coarse2fine_flow_pairs(data, n_frames, height, width, pairs.data(),
                                                   n_pairs, params, n_threads, pack, precision,
                                                   result);
        }
        return py::array(std::move(out));
    };
    return float64 ? run(py::array_t<double>(shape)) : run(py::array_t<float>(shape));
}

}  // namespace

void register_flow(py::module_& m) {
    m.def("coarse2fine_flow_pairs", &coarse2fine_flow_pairs, py::arg("frames"), py::arg("pairs"),
          py::arg("alpha"), py::arg("ratio"), py::arg("min_width"), py::arg("n_outer"),
          py::arg("n_inner"), py::arg("n_sor"), py::arg("n_threads") = 0, py::arg("pack") = 0,
          py::arg("float64") = false, py::arg("precision") = "float64",
          R"doc(Coarse-to-fine variational optical flow (Brox et al. 2004, Ce Liu's solver) of
many frame pairs.

frames: float64 (n, h, w, 3), RGB in [0, 1], finite.
pairs: int32 or int64 (P, 2), frame indices (a, b) in [0, n).
alpha, ratio, min_width, n_outer, n_inner, n_sor: the solver's parameters (ratio in
[0.4, 0.98]; iteration counts >= 1).
n_threads: OpenMP threads; <= 0 uses OpenMP's default.
pack: 0 (default) solves pairs W at a time, one per SIMD lane, and a small remainder one
pair at a time; W puts any remainder in a pack too; 1 solves one pair at a time, where W
is C2F_PACK_WIDTH with precision "float64" and C2F_PACK32_WIDTH with "float32". Every
choice gives the same flow, bit for bit (each lane does exactly the IEEE operations of
the single-pair path in the same precision): the option exists to test that.
float64: return the solver's flow as float64 instead of float32 (for tests; with
precision "float32" that is the float32 flow widened).
precision: "float64" (default, the reference's arithmetic) or "float32": the solver's
arithmetic after the pyramids (built in float64 either way); float32 puts twice the pairs
in one SIMD register and moves the flow by rounding only (see tests/test_flow.py for how
far).

Returns float32 (P, h, w, 2): flow (u = x, v = y, pixels) from frame a to frame b, so
that frame_a(x, y) ~ frame_b(x + u, y + v). Each frame's pyramid is built once; the GIL
is released while the pairs run. Raises ValueError for a bad argument.)doc");
    m.attr("C2F_PACK_WIDTH") = fastunlc::flow::kPackWidth;
    m.attr("C2F_PACK32_WIDTH") = fastunlc::flow::kPack32Width;
}

}  // namespace fastunlc
