// Bindings of the shot kernels (csrc/shots/): shot features and KTS's dynamic programme.
#include <cstdint>
#include <string>

#include "bindings.h"
#include "shots/features.h"
#include "shots/kts.h"

namespace fastunlc {

namespace {

template <typename T>
using carray = py::array_t<T, py::array::c_style>;

template <typename T>
carray<T> checked(const py::array& a, const char* name, std::vector<py::ssize_t> shape) {
    if (!a.dtype().is(py::dtype::of<T>()))
        throw py::value_error(std::string(name) + " must be " +
                              py::str(py::dtype::of<T>()).cast<std::string>() + ", got " +
                              dtype_of(a));
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t d = 0; ok && d < shape.size(); ++d)
        ok = shape[d] < 0 || a.shape(static_cast<py::ssize_t>(d)) == shape[d];
    if (!ok) throw py::value_error(std::string(name) + " has the wrong shape " + shape_of(a));
    return carray<T>::ensure(a);
}

py::array colour_histograms(const py::array& frames_in, const py::array& linear_in,
                            const py::array& matrix_in, const py::array& white_in,
                            const py::array& edges_in, int n_threads) {
    const auto frames = checked<uint8_t>(frames_in, "frames", {-1, -1, -1, 3});
    const auto linear = checked<double>(linear_in, "linear", {256});
    const auto matrix = checked<double>(matrix_in, "xyz_from_rgb", {3, 3});
    const auto white = checked<double>(white_in, "white", {3});
    const auto edges = checked<double>(edges_in, "edges", {6, -1});
    if (edges.shape(1) < 2) throw py::value_error("edges needs at least 2 columns");
    const int bins = static_cast<int>(edges.shape(1) - 1);
    const int64_t n = frames.shape(0);
    carray<double> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(6 * bins)});
    const shots::LabConversion lab{linear.data(), matrix.data(), white.data()};
    {
        py::gil_scoped_release release;
        shots::colour_histograms(frames.data(), n, frames.shape(1) * frames.shape(2), lab,
                                 edges.data(), bins, n_threads, out.mutable_data());
    }
    return std::move(out);
}

void kts_block(py::array gram_in, int64_t first_end, const py::array& norms_in,
               const py::array& sq_prefix_in, py::array cost_in, py::array back_in) {
    auto gram = checked<double>(gram_in, "gram", {-1, -1});
    const auto norms = checked<double>(norms_in, "norms", {-1});
    const auto sq_prefix = checked<double>(sq_prefix_in, "sq_prefix", {norms.shape(0)});
    auto cost = checked<double>(cost_in, "cost", {-1, norms.shape(0)});
    auto back = checked<int64_t>(back_in, "back", {cost.shape(0), norms.shape(0)});
    const int64_t rows = gram.shape(0);
    if (first_end < 1 || first_end + rows > norms.shape(0) || gram.shape(1) < first_end + rows - 1)
        throw py::value_error("gram's block of ends does not fit the prefix sums");
    // The kernel writes in place: the arrays must be the caller's, not converted copies.
    if (gram.ptr() != gram_in.ptr() || cost.ptr() != cost_in.ptr() || back.ptr() != back_in.ptr())
        throw py::value_error("gram, cost and back must be C-contiguous (written in place)");
    py::gil_scoped_release release;
    shots::kts_block(gram.mutable_data(), rows, gram.shape(1), first_end, norms.data(),
                     sq_prefix.data(), cost.mutable_data(), back.mutable_data(), cost.shape(0),
                     cost.shape(1));
}

}  // namespace

void register_shots(py::module_& m) {
    py::module_ s = m.def_submodule(
        "shots", "Shot detection's kernels (see fastunlc._kernels.cpu.shots).");
    s.def("colour_histograms", &colour_histograms, py::arg("frames"), py::arg("linear"),
          py::arg("xyz_from_rgb"), py::arg("white"), py::arg("edges"), py::arg("n_threads") = 0,
          R"doc(Per-frame colour histograms (the reference's KTS features).

frames: uint8 (n, h, w, 3) RGB. linear: float64 (256,), each uint8 level as linearised
sRGB (skimage.color.rgb2xyz's gamma step). xyz_from_rgb: float64 (3, 3). white: float64
(3,), the white point xyz2lab divides by. edges: float64 (6, bins + 1), each channel's
np.linspace edges (R, G, B over [0, 255], L over [0, 100], a and b over [-128, 127]).
n_threads: OpenMP threads over frames (<= 0: OpenMP's default).

Returns float64 (n, 6 * bins): per frame the six histograms, binned as np.histogram bins
(values outside a range are dropped), each divided by its sum + (sum < 1e-4). The GIL is
released while the frames run.)doc");
    s.def("kts_block", &kts_block, py::arg("gram"), py::arg("first_end"), py::arg("norms"),
          py::arg("sq_prefix"), py::arg("cost"), py::arg("back"),
          R"doc(KTS's dynamic programme over one block of segment ends, in place.

gram: float64 (B, >= first_end + B - 1), gram[r, t] = S[first_end + r] . S[t]; overwritten
with the scatter of frames [t, first_end + r). first_end: the end (>= 1, exclusive) of
row 0. norms, sq_prefix: float64 (N + 1,), |S[t]|^2 and the prefix sums of |x|^2.
cost: float64 (m + 1, N + 1) and back: int64 (m + 1, N + 1), C-contiguous: the least
scatter of the first l frames cut by k change points and the last change point of that
optimum (the first among ties); entries for ends before first_end must be final.)doc");
}

}  // namespace fastunlc
