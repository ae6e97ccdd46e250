// Bindings of the superpixel descriptor and colour histogram kernels
// (csrc/descriptors/descriptors.cpp), as the submodule fastunlc._C.descriptors.
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "bindings.h"
#include "descriptors/descriptors.h"

namespace fastunlc {

namespace {

namespace d = fastunlc::descriptors;

// Whether `a` holds T in native byte order (NumPy's PyArray_EquivTypes: equal dtypes may be
// different objects, e.g. after boolean indexing, so identity is no test).
template <typename T>
bool holds(const py::array& a) {
    return py::isinstance<py::array_t<T>>(a);
}

// `a` as a C-ordered array of T with `ndim` dimensions (copied only if it is not C-ordered);
// a ValueError naming `name` and `layout` otherwise.
template <typename T>
py::array_t<T, py::array::c_style> input(const py::array& a, const std::string& name,
                                         py::ssize_t ndim, const std::string& layout) {
    if (!holds<T>(a) || a.ndim() != ndim)
        throw py::value_error(name + " must be " + layout + ", got " + dtype_of(a) + " " +
                              shape_of(a));
    return py::array_t<T, py::array::c_style>::ensure(a);
}

// The buffer of `a`, which the kernel writes: it must be a writeable C-ordered array of T
// of exactly `shape`.
template <typename T>
T* output(py::array& a, const std::string& name, const std::vector<py::ssize_t>& shape,
          const std::string& layout) {
    bool ok = holds<T>(a) && a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t k = 0; ok && k < shape.size(); ++k) ok = a.shape(k) == shape[k];
    if (!ok)
        throw py::value_error(name + " must be " + layout + ", got " + dtype_of(a) + " " +
                              shape_of(a));
    if (!(a.flags() & py::array::c_style) || !a.writeable())
        throw py::value_error(name + " must be a writeable C-contiguous array");
    return static_cast<T*>(a.mutable_data());
}

// Edges (6, bins + 1) float64 with bins >= 1; returns bins.
int64_t check_edges(const py::array_t<double, py::array::c_style>& edges) {
    if (edges.shape(0) != 6 || edges.shape(1) < 2)
        throw py::value_error("edges must be float64 (6, bins + 1) with bins >= 1, got " +
                              shape_of(edges));
    return edges.shape(1) - 1;
}

py::array region_boxes(const py::array& labels_in, int64_t n_labels) {
    const auto labels = input<int32_t>(labels_in, "labels", 2, "int32 (h, w)");
    if (n_labels < 1) throw py::value_error("n_labels must be >= 1, got " + std::to_string(n_labels));
    const int32_t* data = labels.data();
    py::array_t<int64_t> boxes({static_cast<py::ssize_t>(n_labels), py::ssize_t{4}});
    int64_t* out = boxes.mutable_data();
    int64_t bad = -1;
    {
        py::gil_scoped_release release;
        bad = d::region_boxes(data, labels.shape(0), labels.shape(1), n_labels, out);
    }
    if (bad >= 0)
        throw py::value_error("labels must lie in [0, " + std::to_string(n_labels) +
                              "), found " + std::to_string(data[bad]));
    return std::move(boxes);
}

std::tuple<py::array, py::array> place_patches(const py::array& boxes_in, int64_t size,
                                               int64_t h, int64_t w) {
    const auto boxes = input<int64_t>(boxes_in, "boxes", 2, "int64 (n, 4)");
    if (boxes.shape(1) != 4)
        throw py::value_error("boxes must be int64 (n, 4), got " + shape_of(boxes));
    if (size < 1 || h < size + 1 || w < size + 1)
        throw py::value_error("the frame (" + std::to_string(h) + " x " + std::to_string(w) +
                              ") must be at least patch size + 1 = " +
                              std::to_string(size + 1) + " on each side");
    const py::ssize_t n = boxes.shape(0);
    py::array_t<int64_t> starts({n, py::ssize_t{2}});
    py::array_t<int64_t> corners({n, py::ssize_t{2}});
    const int64_t* b = boxes.data();
    int64_t* s = starts.mutable_data();
    int64_t* c = corners.mutable_data();
    for (py::ssize_t i = 0; i < n; ++i) {
        d::place_1d(b[4 * i + 1], b[4 * i + 3], size, h, s + 2 * i, c + 2 * i);
        d::place_1d(b[4 * i], b[4 * i + 2], size, w, s + 2 * i + 1, c + 2 * i + 1);
    }
    return {std::move(starts), std::move(corners)};
}

template <typename T>
void gather(const py::array& image_in, const int64_t* corners, py::ssize_t n, py::array& out_in,
            const std::string& kind) {
    const auto image = input<T>(image_in, "image", 3, kind + " (h, w, c)");
    const py::ssize_t h = image.shape(0), w = image.shape(1), c = image.shape(2);
    const py::ssize_t size = out_in.ndim() == 4 ? out_in.shape(1) : 0;
    T* out = output<T>(out_in, "out", {n, size, size, c}, kind + " (n, size, size, c)");
    for (py::ssize_t i = 0; i < n; ++i) {
        const int64_t y0 = corners[2 * i], x0 = corners[2 * i + 1];
        if (y0 < 0 || x0 < 0 || y0 + size > h || x0 + size > w)
            throw py::value_error("patch " + std::to_string(i) + " at (" + std::to_string(y0) +
                                  ", " + std::to_string(x0) + ") does not fit in the image");
    }
    const T* src = image.data();
    // Serial: a copy of ~0.1 ms gains nothing from threads.
    for (py::ssize_t i = 0; i < n; ++i) {
        for (py::ssize_t y = 0; y < size; ++y) {
            const T* row = src + ((corners[2 * i] + y) * w + corners[2 * i + 1]) * c;
            T* dst = out + ((i * size + y) * size) * c;
            for (py::ssize_t e = 0; e < size * c; ++e) dst[e] = row[e];
        }
    }
}

void gather_patches(const py::array& image, const py::array& corners_in, py::array& out) {
    const auto corners = input<int64_t>(corners_in, "corners", 2, "int64 (n, 2)");
    if (corners.shape(1) != 2)
        throw py::value_error("corners must be int64 (n, 2), got " + shape_of(corners));
    if (holds<uint8_t>(image))
        gather<uint8_t>(image, corners.data(), corners.shape(0), out, "uint8");
    else
        gather<double>(image, corners.data(), corners.shape(0), out, "float64");
}

double pairwise_sum(const py::array& a_in) {
    const auto a = input<double>(a_in, "a", 1, "float64 (n,)");
    return d::pairwise_sum(a.data(), a.shape(0));
}

void patch_descriptors(const py::array& grey_in, const py::array& rgb_in, const py::array& lab_in,
                       const py::array& colour_of_in, const py::array& edges_in,
                       int64_t orientations, int64_t cell, int norm, py::array& out_in) {
    const auto grey = input<double>(grey_in, "grey", 3, "float64 (n, size, size)");
    const py::ssize_t n = grey.shape(0), size = grey.shape(1);
    if (grey.shape(2) != size)
        throw py::value_error("grey patches must be square, got " + shape_of(grey));
    const auto rgb = input<uint8_t>(rgb_in, "rgb", 4, "uint8 (n, size, size, 3)");
    if (rgb.shape(0) != n || rgb.shape(1) != size || rgb.shape(2) != size || rgb.shape(3) != 3)
        throw py::value_error("rgb must be uint8 (n, size, size, 3) for grey " + shape_of(grey) +
                              ", got " + shape_of(rgb));
    const auto lab = input<double>(lab_in, "lab", 2, "float64 (k, 3)");
    if (lab.shape(1) != 3) throw py::value_error("lab must be float64 (k, 3), got " + shape_of(lab));
    const auto colour_of = input<int32_t>(colour_of_in, "colour_of", 3, "int32 (n, size, size)");
    if (colour_of.shape(0) != n || colour_of.shape(1) != size || colour_of.shape(2) != size)
        throw py::value_error("colour_of must be int32 " + shape_of(grey) + ", got " +
                              shape_of(colour_of));
    const int32_t* index = colour_of.data();
    for (py::ssize_t e = 0; e < colour_of.size(); ++e) {
        if (index[e] < 0 || index[e] >= lab.shape(0))
            throw py::value_error("colour_of must lie in [0, " + std::to_string(lab.shape(0)) +
                                  "), found " + std::to_string(index[e]));
    }
    const auto edges = input<double>(edges_in, "edges", 2, "float64 (6, bins + 1)");
    const int64_t bins = check_edges(edges);
    if (orientations < 1 || cell < 1 || cell > size)
        throw py::value_error("need orientations >= 1 and 1 <= cell <= patch size " +
                              std::to_string(size) + ", got " + std::to_string(orientations) +
                              " and " + std::to_string(cell));
    if (norm < d::kL1 || norm > d::kL2Hys)
        throw py::value_error("norm must be a BLOCK_NORMS code (0-3), got " + std::to_string(norm));
    const int64_t n_cells = size / cell;
    const int64_t used = orientations * n_cells * n_cells + 6 * bins;
    if (out_in.ndim() != 2 || out_in.shape(0) != n || out_in.shape(1) < used)
        throw py::value_error("out must be float64 (" + std::to_string(n) + ", >= " +
                              std::to_string(used) + "), got " + shape_of(out_in));
    double* out = output<double>(out_in, "out", {n, out_in.shape(1)}, "float64 (n, m)");
    {
        py::gil_scoped_release release;
        d::patch_descriptors(grey.data(), rgb.data(), lab.data(), index, n, size, edges.data(),
                             bins, orientations, cell, norm, out, out_in.shape(1));
    }
}

}  // namespace

void register_descriptors(py::module_& m) {
    py::module_ s = m.def_submodule(
        "descriptors", "Superpixel descriptors and colour histograms (csrc/descriptors).");
    s.def("region_boxes", &region_boxes, py::arg("labels"), py::arg("n_labels"),
          R"doc(Bounding boxes of the labels of one frame.

labels: int32 (h, w), each in [0, n_labels).
Returns int64 (n_labels, 4) rows (xmin, ymin, xmax, ymax), inclusive, in pixels; a label
with no pixel keeps xmin > xmax: (w, h, -1, -1). Raises ValueError for a bad argument.)doc");
    s.def("place_patches", &place_patches, py::arg("boxes"), py::arg("size"), py::arg("h"),
          py::arg("w"),
          R"doc(Patch starts for boxes in an h x w frame (pixels).

boxes: int64 (n, 4) rows (xmin, ymin, xmax, ymax), inclusive; size: the patch side;
h, w >= size + 1.
Returns (starts, corners), int64 (n, 2) each, (y, x): starts are the reference's
int((lo + hi - size) / 2) (truncated toward zero, before the shift inside the frame, may
be negative: the location descriptor); corners are the top-left of the size x size patch
actually read, shifted inside the frame, never including its last row or column.)doc");
    s.def("gather_patches", &gather_patches, py::arg("image"), py::arg("corners"),
          py::arg("out"),
          R"doc(Copy the size x size patches of image at corners into out.

image: uint8 or float64 (h, w, c); corners: int64 (n, 2) top-left (y, x), each patch
inside the image; out: (n, size, size, c) of image's dtype, C-contiguous, written.)doc");
    s.def("pairwise_sum", &pairwise_sum, py::arg("a"),
          R"doc(np.sum of a float64 (n,) array in NumPy's pairwise order, to the last bit.)doc");
    s.def("patch_descriptors", &patch_descriptors, py::arg("grey"), py::arg("rgb"),
          py::arg("lab"), py::arg("colour_of"), py::arg("edges"), py::arg("orientations"),
          py::arg("cell"), py::arg("norm"), py::arg("out"),
          R"doc(HOG and colour histograms of n square patches, in parallel over patches.

grey: float64 (n, s, s) in [0, 1], skimage.color.rgb2gray of the patches.
rgb: uint8 (n, s, s, 3), the patches.
lab: float64 (k, 3), skimage.color.rgb2lab of k colours; colour_of: int32 (n, s, s), in
[0, k), the colour of each patch pixel (lab[colour_of] is the patches' CIELAB).
edges: float64 (6, bins + 1) from channel_edges.
orientations, cell: the HOG's orientation bins and cell side (pixels), 1 <= cell <= s;
norm: a BLOCK_NORMS code.
out: float64 (n, m), C-contiguous, m >= orientations * (s // cell)**2 + 6 * bins. Gets the
HOG of each patch with one block of all cells (order cell row, cell column, orientation;
skimage.feature.hog to the last bit) in its first columns, then the six L1-normalised
R, G, B, L, a, b histograms (np.histogram's binning; a row with nothing in range stays
0); the other columns are left untouched. The GIL is released.)doc");
}

}  // namespace fastunlc
