// Bindings of the motion-saliency and voting kernels (csrc/regions/saliency.cpp, voting.cpp).
// Inputs are converted to C-contiguous arrays of the kernel's dtype (a copy only where
// the caller's differs); outputs are written in place, so they must already be
// C-contiguous, writable and of the exact dtype.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bindings.h"
#include "regions/saliency.h"
#include "regions/voting.h"

namespace fastunlc {

namespace {

template <typename T>
using In = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_string(const std::vector<py::ssize_t>& shape) {
    std::string s = "(";
    for (std::size_t d = 0; d < shape.size(); ++d)
        s += (d ? ", " : "") + std::to_string(shape[d]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

void require_shape(const py::array& a, const std::string& name,
                   const std::vector<py::ssize_t>& shape) {
    bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t d = 0; same && d < shape.size(); ++d) same = a.shape(d) == shape[d];
    if (!same)
        throw py::value_error(name + " must have shape " + shape_string(shape) + ", got " +
                              shape_of(a));
}

// The data of an output array, which the kernel fills in place.
template <typename T>
T* output(py::array a, const std::string& name, const std::vector<py::ssize_t>& shape) {
    if (!py::array_t<T, py::array::c_style>::check_(a) || !a.writeable())
        throw py::value_error(name + " must be a writable C-contiguous " +
                              py::str(py::dtype::of<T>()).cast<std::string>() +
                              " array, got " + dtype_of(a));
    require_shape(a, name, shape);
    return static_cast<T*>(a.mutable_data());
}

// (n, h, w) labels: their n, h and w.
std::vector<py::ssize_t> frames_shape(const py::array& labels, const std::string& name) {
    if (labels.ndim() != 3)
        throw py::value_error(name + " must have shape (n, h, w), got " + shape_of(labels));
    return {labels.shape(0), labels.shape(1), labels.shape(2)};
}

// offsets (n + 1) rising from >= 0 to at most k, so that every frame's superpixels lie
// inside a (k,) array.
void check_offsets(const In<int64_t>& offsets, py::ssize_t n, py::ssize_t k) {
    require_shape(offsets, "offsets", {n + 1});
    const int64_t* o = offsets.data();
    for (py::ssize_t f = 0; f < n; ++f) {
        if (o[f] < 0 || o[f + 1] < o[f])
            throw py::value_error("offsets must rise from 0, got offsets[" + std::to_string(f) +
                                  ":" + std::to_string(f + 2) + "] = " + std::to_string(o[f]) +
                                  ", " + std::to_string(o[f + 1]));
    }
    if (o[n] > k)
        throw py::value_error("offsets[-1] = " + std::to_string(o[n]) + " exceeds the " +
                              std::to_string(k) + " superpixels");
}

void pair_deviations(const In<float>& flows, double static_magnitude, double dominant_direction,
                     const In<double>& edges, const py::array& deviation, const py::array& kind) {
    if (flows.ndim() != 4 || flows.shape(3) != 2)
        throw py::value_error("flows must have shape (P, h, w, 2), got " + shape_of(flows));
    if (edges.ndim() != 1 || edges.shape(0) < 2)
        throw py::value_error("direction_edges must have shape (bins + 1,) with bins >= 1, got " +
                              shape_of(edges));
    const py::ssize_t p = flows.shape(0), h = flows.shape(1), w = flows.shape(2);
    double* dev = output<double>(deviation, "deviation", {p, h, w});
    int8_t* k = output<int8_t>(kind, "kind", {p});
    py::gil_scoped_release release;
    regions::pair_deviations(flows.data(), p, h, w, static_magnitude, dominant_direction,
                             edges.data(), edges.shape(0) - 1, dev, k);
}

void superpixel_sums(const In<double>& saliency, const In<int32_t>& labels,
                     const In<int64_t>& offsets, const In<double>& rows,
                     const In<double>& columns, int64_t border, const py::array& sums,
                     const py::array& counts, const py::array& peaks, const py::array& bad) {
    const auto shape = frames_shape(labels, "labels");
    const py::ssize_t n = shape[0], h = shape[1], w = shape[2];
    if (saliency.ndim() != 3 || saliency.shape(0) != n || saliency.shape(1) < 1 ||
        saliency.shape(2) < 1)
        throw py::value_error("saliency must have shape (" + std::to_string(n) +
                              ", s_h, s_w) with s_h, s_w >= 1, got " + shape_of(saliency));
    require_shape(rows, "rows", {h});
    require_shape(columns, "columns", {w});
    const py::ssize_t k = sums.ndim() == 1 ? sums.shape(0) : -1;
    check_offsets(offsets, n, k);
    double* s = output<double>(sums, "sums", {k});
    int64_t* c = output<int64_t>(counts, "counts", {k});
    double* pk = output<double>(peaks, "peaks", {n});
    bool* b = output<bool>(bad, "bad", {n});
    py::gil_scoped_release release;
    regions::superpixel_sums(saliency.data(), saliency.shape(1), saliency.shape(2), labels.data(),
                             n, h, w, offsets.data(), rows.data(), columns.data(), border, s, c,
                             pk, b);
}

void pixel_counts(const In<int32_t>& labels, const In<int64_t>& offsets, const py::array& counts) {
    const auto shape = frames_shape(labels, "labels");
    const py::ssize_t k = counts.ndim() == 1 ? counts.shape(0) : -1;
    check_offsets(offsets, shape[0], k);
    int64_t* c = output<int64_t>(counts, "counts", {k});
    py::gil_scoped_release release;
    regions::pixel_counts(labels.data(), shape[0], shape[1], shape[2], offsets.data(), c);
}

void paint_masks(const In<double>& votes, const In<int32_t>& labels, const In<int64_t>& offsets,
                 const In<int32_t>& components, const In<int64_t>& n_components,
                 double relative_size, double value, const py::array& out) {
    const auto shape = frames_shape(labels, "labels");
    check_offsets(offsets, shape[0], votes.size());
    require_shape(n_components, "n_components", {shape[0]});
    const int64_t* nc = n_components.data();
    bool labelled = false;
    for (py::ssize_t f = 0; f < shape[0]; ++f) labelled = labelled || nc[f] > 1;
    if (labelled) require_shape(components, "components", shape);
    float* o = output<float>(out, "out", shape);
    py::gil_scoped_release release;
    regions::paint_masks(votes.data(), labels.data(), shape[0], shape[1], shape[2],
                         offsets.data(), labelled ? components.data() : nullptr, nc,
                         relative_size, value, o);
}

void foreground(const In<double>& votes, const In<int32_t>& labels, const In<int64_t>& offsets,
                double threshold, const py::array& out) {
    const auto shape = frames_shape(labels, "labels");
    check_offsets(offsets, shape[0], votes.size());
    uint8_t* o = output<uint8_t>(out, "out", shape);
    py::gil_scoped_release release;
    regions::foreground(votes.data(), labels.data(), shape[0], shape[1], shape[2],
                        offsets.data(), threshold, o);
}

void low_energy_means(const In<double>& votes, const In<int32_t>& labels,
                      const In<int64_t>& offsets, const In<int64_t>& counts,
                      const In<int32_t>& components,
                      const In<int64_t>& n_components, double energy_fraction, double value,
                      const py::array& out) {
    const auto shape = frames_shape(labels, "labels");
    check_offsets(offsets, shape[0], votes.size());
    require_shape(counts, "counts", {votes.size()});
    require_shape(n_components, "n_components", {shape[0]});
    const int64_t* nc = n_components.data();
    bool labelled = false;
    for (py::ssize_t f = 0; f < shape[0]; ++f) labelled = labelled || nc[f] > 1;
    // The callers skip labelling (and pass an empty array) when no blob can be low-energy.
    if (labelled) require_shape(components, "components", shape);
    double* o = output<double>(out, "out", {votes.size()});
    py::gil_scoped_release release;
    regions::low_energy_means(votes.data(), labels.data(), shape[0], shape[1], shape[2],
                              offsets.data(), counts.data(),
                              labelled ? components.data() : nullptr, nc, energy_fraction, value,
                              o);
}

py::tuple label_ranges(const In<int32_t>& labels) {
    const auto shape = frames_shape(labels, "labels");
    if (shape[0] > 0 && shape[1] * shape[2] == 0)
        throw py::value_error("labels must have pixels, got shape " + shape_of(labels));
    py::array_t<int64_t> lo(shape[0]), hi(shape[0]);
    int64_t* a = lo.mutable_data();
    int64_t* b = hi.mutable_data();
    {
        py::gil_scoped_release release;
        regions::label_ranges(labels.data(), shape[0], shape[1], shape[2], a, b);
    }
    return py::make_tuple(lo, hi);
}

template <typename Index>
py::array propagate_as(const In<double>& votes, const py::array& indptr_in,
                       const py::array& indices_in, const In<double>& weights,
                       const In<int64_t>& offsets, int64_t iterations) {
    const py::ssize_t k = votes.size();
    const auto indptr = py::array_t<Index, py::array::c_style>::ensure(indptr_in);
    const auto indices = py::array_t<Index, py::array::c_style>::ensure(indices_in);
    require_shape(indptr, "indptr", {k + 1});
    const Index* p = indptr.data();
    const py::ssize_t nnz = static_cast<py::ssize_t>(p[k]);
    require_shape(indices, "indices", {nnz});
    require_shape(weights, "weights", {nnz});
    for (py::ssize_t i = 0; i < k; ++i)
        if (p[i] < 0 || p[i + 1] < p[i])
            throw py::value_error("indptr must rise from 0, got indptr[" + std::to_string(i) +
                                  "] = " + std::to_string(p[i]));
    const Index* c = indices.data();
    for (py::ssize_t j = 0; j < nnz; ++j)
        if (c[j] < 0 || c[j] >= k)
            throw py::value_error("indices[" + std::to_string(j) + "] = " + std::to_string(c[j]) +
                                  " is out of range for " + std::to_string(k) + " superpixels");
    const py::ssize_t n = offsets.size() - 1;
    check_offsets(offsets, n, k);
    if (n >= 0 && offsets.data()[n] != k)
        throw py::value_error("offsets[-1] must be the " + std::to_string(k) +
                              " superpixels, got " + std::to_string(offsets.data()[n]));
    py::array_t<double> out(k);
    double* v = out.mutable_data();
    std::copy(votes.data(), votes.data() + k, v);
    py::gil_scoped_release release;
    regions::propagate(p, c, weights.data(), k, offsets.data(), n, iterations, v);
    return py::array(std::move(out));
}

py::array propagate(const In<double>& votes, const py::array& indptr, const py::array& indices,
                    const In<double>& weights, const In<int64_t>& offsets, int64_t iterations) {
    const bool is32 = indptr.dtype().is(py::dtype::of<int32_t>()) &&
                      indices.dtype().is(py::dtype::of<int32_t>());
    const bool is64 = indptr.dtype().is(py::dtype::of<int64_t>()) &&
                      indices.dtype().is(py::dtype::of<int64_t>());
    if (!is32 && !is64)
        throw py::value_error("indptr and indices must be both int32 or both int64, got " +
                              dtype_of(indptr) + " and " + dtype_of(indices));
    if (votes.ndim() != 1)
        throw py::value_error("votes must have shape (k,), got " + shape_of(votes));
    if (offsets.ndim() != 1 || offsets.size() < 1)
        throw py::value_error("offsets must have shape (n + 1,), got " + shape_of(offsets));
    return is32 ? propagate_as<int32_t>(votes, indptr, indices, weights, offsets, iterations)
                : propagate_as<int64_t>(votes, indptr, indices, weights, offsets, iterations);
}

}  // namespace

void register_regions(py::module_& parent) {
    py::module_ m = parent.def_submodule(
        "regions",
        "Motion-saliency and voting kernels (see fastunlc._kernels.cpu.saliency and .voting).");
    m.def("pair_deviations", &pair_deviations, py::arg("flows"), py::arg("static_magnitude"),
          py::arg("dominant_direction"), py::arg("direction_edges"), py::arg("deviation"),
          py::arg("kind"),
          R"doc(Classify each flow field by its dominant motion and write its (unsmoothed)
deviation map (spec section 2).

flows: float32 (P, h, w, 2), flow (u, v) in pixels.
static_magnitude: median magnitude (px) below which a pair is static.
dominant_direction: share of the magnitude-weighted direction histogram above which a
pair is translating.
direction_edges: float64 (bins + 1,), np.linspace(-pi, pi, bins + 1).
deviation: float64 (P, h, w), output: m**2 (px**2) for static pairs, the squared wrapped
angle (rad**2) to the dominant bin's centre for translating pairs, untouched otherwise.
kind: int8 (P,), output: STATIC (1), TRANSLATING (2) or NOT_DOMINANT (0).
The median is NumPy's, the histogram np.histogram's binning. Pairs run in parallel.)doc");
    m.def("superpixel_sums", &superpixel_sums, py::arg("saliency"), py::arg("labels"),
          py::arg("offsets"), py::arg("rows"), py::arg("columns"), py::arg("border"),
          py::arg("sums"), py::arg("counts"), py::arg("peaks"), py::arg("bad"),
          R"doc(Bilinear upsampling of each frame's saliency, border zeroed, summed per
superpixel; the upsampled frame is never stored.

saliency: float64 (n, s_h, s_w) at flow resolution.
labels: int32 (n, h, w), frame f's in [0, offsets[f + 1] - offsets[f]).
offsets: int64 (n + 1,).
rows, columns: float64 (h,) and (w,), source coordinates of the output pixels
(scipy.ndimage.zoom with order=1: index times (s - 1) / (out - 1)).
border: pixels within border of an edge are 0.
sums, counts: float64 and int64 (k,), zero on entry; receive each superpixel's sum and
pixel count. peaks: float64 (n,), receives each frame's largest upsampled value.
bad: bool (n,), set for a frame holding a label out of range or an empty superpixel.
Frames run in parallel.)doc");
    m.def("pixel_counts", &pixel_counts, py::arg("labels"), py::arg("offsets"), py::arg("counts"),
          R"doc(Add each superpixel's pixel count into counts: int64 (k,), zero on entry.

labels: int32 (n, h, w) in [0, n_f) (not checked); offsets: int64 (n + 1,).)doc");
    m.def("paint_masks", &paint_masks, py::arg("votes"), py::arg("labels"), py::arg("offsets"),
          py::arg("components"), py::arg("n_components"), py::arg("relative_size"),
          py::arg("value"), py::arg("out"),
          R"doc(The final soft masks: the painted votes, small blobs set to value.

out[f, y, x] = float32(votes[offsets[f] + labels[f, y, x]]), except that every
component of frame f (components int32 (n, h, w), numbered 1 .. n_components[f] - 1,
not checked; 0 is background and never changed) with fewer pixels than relative_size x
the frame's largest component's gets float32(value). components[f] is not read when
n_components[f] (int64 (n,)) is <= 1; components may be empty when no frame has more.
votes: float64 (k,); labels: int32 (n, h, w) in [0, n_f) (not checked); offsets: int64
(n + 1,); out: float32 (n, h, w). Serial (the caller paints one frame at a time).)doc");
    m.def("foreground", &foreground, py::arg("votes"), py::arg("labels"), py::arg("offsets"),
          py::arg("threshold"), py::arg("out"),
          R"doc(out[f, y, x] = votes[offsets[f] + labels[f, y, x]] > threshold as uint8 0/1:
the binarised painted mask, without painting it.

votes: float64 (k,); labels: int32 (n, h, w) in [0, n_f) (not checked); offsets: int64
(n + 1,); out: uint8 (n, h, w).)doc");
    m.def("low_energy_means", &low_energy_means, py::arg("votes"), py::arg("labels"),
          py::arg("offsets"), py::arg("counts"), py::arg("components"),
          py::arg("n_components"), py::arg("energy_fraction"), py::arg("value"), py::arg("out"),
          R"doc(Superpixel means of the painted votes after low-energy blob removal, in one go.

Equals painting votes (float64 (k,)), setting each component of frame f (components
int32 (n, h, w), numbered 1 .. n_components[f] - 1, background 0) whose summed mask is
below energy_fraction x its size to value, and averaging per superpixel of labels (int32
(n, h, w) in [0, n_f), not checked), with the same sums in the same order, so bit for
bit. counts: int64 (k,), each superpixel's pixel count (pixel_counts), all >= 1 (not
checked). components[f] is not read when n_components[f] (int64 (n,)) is <= 1;
components may be empty when no frame has more. Writes out: float64 (k,). A frame
without a low-energy component is not walked (its sums need only the counts).)doc");
    m.def("label_ranges", &label_ranges, py::arg("labels"),
          R"doc(Smallest and largest label of each frame of labels (int32 (n, h, w), h * w >= 1),
as two int64 (n,) arrays.)doc");
    m.def("propagate", &propagate, py::arg("votes"), py::arg("indptr"), py::arg("indices"),
          py::arg("weights"), py::arg("offsets"), py::arg("iterations"),
          R"doc(Consensus-voting iterations: iterations times v <- T v, then each frame's
votes divided by their maximum when that is > 0.

votes: float64 (k,), the votes before the first iteration (not changed).
indptr, indices, weights: T (k, k) in CSR form, int32 or int64 (k + 1,) and (nnz,), and
float64 (nnz,) (scipy.sparse.csr_matrix's indptr, indices and data).
offsets: int64 (n + 1,), frame f owns votes offsets[f] .. offsets[f + 1] - 1;
offsets[-1] = k.
Returns the float64 (k,) votes after the iterations: bit for bit scipy's T @ v (each
row's products summed in storage order) and the division by np.maximum.reduceat's
per-frame peak. Frames run in parallel.)doc");
    m.attr("STATIC") = static_cast<int>(regions::kStatic);
    m.attr("TRANSLATING") = static_cast<int>(regions::kTranslating);
    m.attr("NOT_DOMINANT") = static_cast<int>(regions::kNotDominant);
}

}  // namespace fastunlc
