// Bindings of the windowed k-NN kernel (csrc/graph/knn.cpp), as fastunlc._C.graph.
#include <cstdint>
#include <string>

#include "bindings.h"
#include "graph/knn.h"

namespace fastunlc {

namespace {

py::tuple window_knn(const py::array& x_in, const py::array& offsets_in, int64_t radius,
                     int64_t m) {
    if (!py::isinstance<py::array_t<float>>(x_in) || x_in.ndim() != 2 || x_in.shape(1) < 1)
        throw py::value_error("descriptors must be float32 (k, d) with d >= 1, got " +
                              dtype_of(x_in) + " " + shape_of(x_in));
    if (!py::isinstance<py::array_t<int64_t>>(offsets_in) || offsets_in.ndim() != 1 ||
        offsets_in.shape(0) < 2)
        throw py::value_error("frame_offsets must be int64 (n + 1,) with n >= 1, got " +
                              dtype_of(offsets_in) + " " + shape_of(offsets_in));
    if (radius < 0 || m < 1)
        throw py::value_error("radius must be >= 0 and m >= 1, got " + std::to_string(radius) +
                              " and " + std::to_string(m));
    const auto x = py::array_t<float, py::array::c_style>::ensure(x_in);
    const auto offsets = py::array_t<int64_t, py::array::c_style>::ensure(offsets_in);
    const int64_t k = x.shape(0);
    if (k > INT32_MAX)
        throw py::value_error("descriptors has more rows than int32 indices hold: " + shape_of(x));
    const int64_t n = offsets.shape(0) - 1;
    const int64_t* off = offsets.data();
    if (off[0] != 0 || off[n] != k)
        throw py::value_error("frame_offsets must rise from 0 to k = " + std::to_string(k));
    for (int64_t f = 0; f < n; ++f)
        if (off[f + 1] < off[f]) throw py::value_error("frame_offsets must not decrease");
    py::array_t<int64_t> indices({static_cast<py::ssize_t>(k), static_cast<py::ssize_t>(m)});
    py::array_t<float> sq({static_cast<py::ssize_t>(k), static_cast<py::ssize_t>(m)});
    {
        py::gil_scoped_release release;
        graph::window_knn(x.data(), k, x.shape(1), off, n, radius, m, indices.mutable_data(),
                          sq.mutable_data());
    }
    return py::make_tuple(indices, sq);
}

}  // namespace

void register_graph(py::module_& m) {
    py::module_ g = m.def_submodule("graph", "Neighbour graph kernels (see fastunlc.graph).");
    g.def("window_knn", &window_knn, py::arg("descriptors"), py::arg("frame_offsets"),
          py::arg("radius"), py::arg("m"),
          R"doc(The m nearest superpixels of each within frames f - radius .. f + radius.

descriptors float32 (k, d); frame_offsets int64 (n + 1,), frame f owning rows
offsets[f] .. offsets[f + 1] - 1. Returns (indices int64 (k, m), nearest first, ties by
the smaller index, -1 padding; sq_distances float32 (k, m), |x|^2 + |y|^2 - 2 x.y clamped
at 0, inf padding). The row itself is always kept. Same bits for any thread count.)doc");
}

}  // namespace fastunlc
