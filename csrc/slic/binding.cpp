// Bindings of the SLIC kernels (csrc/slic/slic.cpp) as the submodule fastunlc._C.slic,
// with the names and in-place out-array contracts of fastunlc/_kernels/cpu/slic.py.
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bindings.h"
#include "slic/slic.h"

namespace fastunlc {

namespace {

namespace sl = fastunlc::slic;
using Shape = std::vector<py::ssize_t>;
constexpr py::ssize_t kAny = -1;  // a dimension of any length

template <typename T>
std::string name_of() {
    return py::str(py::dtype::of<T>()).cast<std::string>();
}

std::string shape_text(const Shape& shape) {
    std::string s = "(";
    for (std::size_t d = 0; d < shape.size(); ++d)
        s += (d ? ", " : "") + (shape[d] == kAny ? std::string("*") : std::to_string(shape[d]));
    return s + (shape.size() == 1 ? ",)" : ")");
}

template <typename T>
void check(const py::array& a, const std::string& name, const Shape& shape) {
    if (!a.dtype().is(py::dtype::of<T>()))
        throw py::value_error(name + " must be " + name_of<T>() + ", got " + dtype_of(a));
    bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
    for (std::size_t d = 0; ok && d < shape.size(); ++d)
        ok = shape[d] == kAny || a.shape(d) == shape[d];
    if (!ok)
        throw py::value_error(name + " must have shape " + shape_text(shape) + ", got " +
                              shape_of(a));
}

// An input array, C-contiguous (a copy when it is not).
template <typename T>
py::array_t<T, py::array::c_style> input(const py::array& a, const std::string& name,
                                         const Shape& shape) {
    check<T>(a, name, shape);
    return py::array_t<T, py::array::c_style>::ensure(a);
}

// An array written in place: C-contiguous and writeable, or refused.
template <typename T>
T* output(py::array& a, const std::string& name, const Shape& shape) {
    check<T>(a, name, shape);
    if (!(a.flags() & py::array::c_style))
        throw py::value_error(name + " must be C-contiguous (it is written in place)");
    if (!a.writeable()) throw py::value_error(name + " must be writeable");
    return static_cast<T*>(a.mutable_data());
}

// Frame size as int, both at least 1.
sl::Tiling tiling_of(int64_t h, int64_t w) {
    if (h < 1 || w < 1 || h > INT32_MAX / 2 || w > INT32_MAX / 2)
        throw py::value_error("frame size must be at least 1 x 1 and fit in int32, got " +
                              std::to_string(h) + " x " + std::to_string(w));
    return sl::Tiling(static_cast<int>(h), static_cast<int>(w));
}

void check_rows(int64_t r0, int64_t r1, int h) {
    if (r0 < 0 || r1 < r0 || r1 > h)
        throw py::value_error("rows [" + std::to_string(r0) + ", " + std::to_string(r1) +
                              ") are not within [0, " + std::to_string(h) + ")");
}

// Every value of `a` in [lo, hi).
template <typename T>
void check_range(const py::array_t<T, py::array::c_style>& a, const std::string& name, int64_t lo,
                 int64_t hi) {
    const T* data = a.data();
    for (py::ssize_t i = 0; i < a.size(); ++i) {
        if (data[i] < lo || data[i] >= hi)
            throw py::value_error(name + " must be in [" + std::to_string(lo) + ", " +
                                  std::to_string(hi) + "), found " + std::to_string(data[i]) +
                                  " at flat index " + std::to_string(i));
    }
}

// Radius of a (2 r + 1,) kernel.
int radius_of(const py::array_t<float, py::array::c_style>& weights) {
    if (weights.shape(0) % 2 == 0)
        throw py::value_error("weights must have an odd length 2 r + 1, got " + shape_of(weights));
    return static_cast<int>(weights.shape(0) / 2);
}

Shape tiled(const sl::Tiling& t, Shape tail) {
    Shape s = {t.n_bands, t.n_tiles};
    s.insert(s.end(), tail.begin(), tail.end());
    return s;
}

void lab_rows(const py::array& frame_in, const py::array& lut_in, py::array& lab_in, int64_t r0,
              int64_t r1) {
    check<uint8_t>(frame_in, "frame", {kAny, kAny, 3});
    const sl::Tiling t = tiling_of(frame_in.shape(0), frame_in.shape(1));
    const auto frame = input<uint8_t>(frame_in, "frame", {kAny, kAny, 3});
    const auto lut = input<float>(lut_in, "lut", {256});
    float* lab = output<float>(lab_in, "lab", {3, t.height, t.width});
    check_rows(r0, r1, t.height);
    py::gil_scoped_release release;
    sl::lab_rows(frame.data(), t.height, t.width, lut.data(), lab, static_cast<int>(r0),
                 static_cast<int>(r1));
}

py::array_t<int64_t> reflect_table(int64_t n, int64_t r) {
    if (n < 1 || r < 0) throw py::value_error("reflect_table needs n >= 1 and r >= 0");
    const std::vector<int64_t> table = sl::reflect_table(n, r);
    py::array_t<int64_t> out(static_cast<py::ssize_t>(table.size()));
    std::copy(table.begin(), table.end(), out.mutable_data());
    return out;
}

void smooth_rows(const py::array& lab_in, const py::array& weights_in, float scale,
                 const py::array& row_source_in, const py::array& column_source_in,
                 py::array& image_in, int64_t r0, int64_t r1) {
    check<float>(lab_in, "lab", {3, kAny, kAny});
    const sl::Tiling t = tiling_of(lab_in.shape(1), lab_in.shape(2));
    const auto lab = input<float>(lab_in, "lab", {3, kAny, kAny});
    const auto weights = input<float>(weights_in, "weights", {kAny});
    const int r = radius_of(weights);
    const auto rows = input<int64_t>(row_source_in, "row_source", {t.height + 2 * r});
    const auto columns = input<int64_t>(column_source_in, "column_source", {t.width + 2 * r});
    check_range(rows, "row_source", 0, t.height);
    check_range(columns, "column_source", 0, t.width);
    float* image = output<float>(image_in, "image", tiled(t, {3, sl::kTileSize}));
    check_rows(r0, r1, t.height);
    py::gil_scoped_release release;
    sl::smooth_rows(lab.data(), t, weights.data(), r, scale, rows.data(), columns.data(), image,
                    static_cast<int>(r0), static_cast<int>(r1));
}

void colour_boxes(const py::array& image_in, int64_t h, int64_t w, py::array& boxes_in) {
    const sl::Tiling t = tiling_of(h, w);
    const auto image = input<float>(image_in, "image", tiled(t, {3, sl::kTileSize}));
    float* boxes = output<float>(boxes_in, "boxes", tiled(t, {6}));
    py::gil_scoped_release release;
    sl::colour_boxes(image.data(), t, boxes);
}

void centre_windows(const py::array& centres_in, const py::array& alive_in,
                    const py::array& half_in, int64_t h, int64_t w, py::array& windows_in) {
    const sl::Tiling t = tiling_of(h, w);
    const auto centres = input<float>(centres_in, "centres", {kAny, 5});
    const py::ssize_t k = centres.shape(0);
    const auto alive = input<bool>(alive_in, "alive", {k});
    const auto half = input<int64_t>(half_in, "half", {2});
    int64_t* windows = output<int64_t>(windows_in, "windows", {k, 4});
    py::gil_scoped_release release;
    sl::centre_windows(centres.data(), alive.data(), k, half.data()[0], half.data()[1], t.height,
                       t.width, windows);
}

void kmeans_step(const py::array& image_in, const py::array& boxes_in,
                 const py::array& centres_in, const py::array& windows_in, float spatial_weight,
                 int64_t h, int64_t w, const py::array& guess_in, bool uniform,
                 py::array& distance_in, py::array& labels_in, py::array& sums_in) {
    const sl::Tiling t = tiling_of(h, w);
    const auto image = input<float>(image_in, "image", tiled(t, {3, sl::kTileSize}));
    const auto boxes = input<float>(boxes_in, "boxes", tiled(t, {6}));
    const auto centres = input<float>(centres_in, "centres", {kAny, 5});
    const py::ssize_t k = centres.shape(0);
    if (k < 1 || k > INT32_MAX) throw py::value_error("centres must have 1 to 2**31 - 1 rows");
    // The bounds convert centre positions to int32 (floor_of, nearest_square).
    for (py::ssize_t e = 0; e < 5 * k; ++e) {
        const float v = centres.data()[e];
        if (!(std::fabs(v) < (e % 5 < 2 ? 0x1p30f : INFINITY)))
            throw py::value_error("centres must be finite, positions below 2**30, found " +
                                  std::to_string(v) + " at flat index " + std::to_string(e));
    }
    const auto windows = input<int64_t>(windows_in, "windows", {k, 4});
    const auto guess = input<int32_t>(guess_in, "guess", {t.n_bands, t.n_tiles});
    check_range(guess, "guess", 0, k);
    float* distance = output<float>(distance_in, "distance", tiled(t, {sl::kTileSize}));
    int32_t* labels = output<int32_t>(labels_in, "labels", tiled(t, {sl::kTileSize}));
    check_range(py::array_t<int32_t, py::array::c_style>::ensure(labels_in), "labels", -1, k);
    int64_t* sums = output<int64_t>(sums_in, "sums", {k, 6});
    py::gil_scoped_release release;
    sl::kmeans_step(image.data(), boxes.data(), centres.data(), k, windows.data(), spatial_weight,
                    t, guess.data(), uniform, distance, labels, sums);
}

void update_centres(const py::array& sums_in, py::array& centres_in, py::array& alive_in) {
    const auto sums = input<int64_t>(sums_in, "sums", {kAny, 6});
    const py::ssize_t k = sums.shape(0);
    float* centres = output<float>(centres_in, "centres", {k, 5});
    bool* alive = output<bool>(alive_in, "alive", {k});
    py::gil_scoped_release release;
    sl::update_centres(sums.data(), centres, alive, k);
}

int64_t enforce_connectivity(const py::array& labels_in, int64_t min_size, int64_t max_size,
                             py::array& out_in) {
    check<int32_t>(labels_in, "labels", {kAny, kAny});
    const sl::Tiling t = tiling_of(labels_in.shape(0), labels_in.shape(1));
    const auto labels = input<int32_t>(labels_in, "labels", {kAny, kAny});
    int32_t* out = output<int32_t>(out_in, "out", {t.height, t.width});
    if (max_size < 1) throw py::value_error("max_size must be >= 1, got " + std::to_string(max_size));
    py::gil_scoped_release release;
    return sl::enforce_connectivity(labels.data(), t.height, t.width, min_size, max_size, out);
}

void slic_frames(const py::array& frames_in, const py::array& luts_in,
                 const py::array& weights_in, float scale, const py::array& initial_in,
                 const py::array& half_in, float spatial_weight, const py::array& guess_in,
                 int64_t n_iter, int64_t min_size, int64_t max_size, py::array& lab_in,
                 py::array& image_in, py::array& distance_in, py::array& labels_in,
                 py::array& raster_in, py::array& boxes_in, py::array& out_in,
                 py::array& counts_in) {
    check<uint8_t>(frames_in, "frames", {kAny, kAny, kAny, 3});
    const py::ssize_t n = frames_in.shape(0);
    const sl::Tiling t = tiling_of(frames_in.shape(1), frames_in.shape(2));
    const auto frames = input<uint8_t>(frames_in, "frames", {n, t.height, t.width, 3});
    const auto luts = input<float>(luts_in, "luts", {n, 256});
    const auto weights = input<float>(weights_in, "weights", {kAny});
    const auto initial = input<float>(initial_in, "initial", {kAny, 5});
    const py::ssize_t k = initial.shape(0);
    if (k < 1 || k > INT32_MAX) throw py::value_error("initial must have 1 to 2**31 - 1 rows");
    const auto half = input<int64_t>(half_in, "half", {2});
    const auto guess = input<int32_t>(guess_in, "guess", {t.n_bands, t.n_tiles});
    check_range(guess, "guess", 0, k);
    if (n_iter < 0 || n_iter > INT32_MAX)
        throw py::value_error("n_iter must be >= 0, got " + std::to_string(n_iter));
    if (max_size < 1) throw py::value_error("max_size must be >= 1, got " + std::to_string(max_size));
    check<float>(lab_in, "lab", {kAny, 3, t.height, t.width});
    const py::ssize_t workers = lab_in.shape(0);
    if (workers < 1 || workers > INT32_MAX) throw py::value_error("the workspace has no worker");
    sl::Grid grid;
    grid.weights = weights.data();
    grid.radius = radius_of(weights);
    grid.scale = scale;
    grid.initial = initial.data();
    grid.n_centres = k;
    grid.half_y = half.data()[0];
    grid.half_x = half.data()[1];
    grid.spatial_weight = spatial_weight;
    grid.guess = guess.data();
    grid.n_iter = static_cast<int>(n_iter);
    grid.min_size = min_size;
    grid.max_size = max_size;
    float* lab = output<float>(lab_in, "lab", {workers, 3, t.height, t.width});
    float* image = output<float>(image_in, "image", {workers, t.n_bands, t.n_tiles, 3, sl::kTileSize});
    float* distance =
        output<float>(distance_in, "distance", {workers, t.n_bands, t.n_tiles, sl::kTileSize});
    int32_t* labels =
        output<int32_t>(labels_in, "labels", {workers, t.n_bands, t.n_tiles, sl::kTileSize});
    int32_t* raster = output<int32_t>(raster_in, "raster", {workers, t.height, t.width});
    float* boxes = output<float>(boxes_in, "boxes", {workers, t.n_bands, t.n_tiles, 6});
    int32_t* out = output<int32_t>(out_in, "out", {n, t.height, t.width});
    int64_t* counts = output<int64_t>(counts_in, "counts", {n});
    const int64_t pixels = static_cast<int64_t>(t.height) * t.width;
    const int64_t tile_pixels = static_cast<int64_t>(t.n_bands) * t.n_tiles * sl::kTileSize;
    std::vector<sl::Workspace> workspaces(workers);
    for (py::ssize_t j = 0; j < workers; ++j) {
        workspaces[j] = {lab + j * 3 * pixels,         image + j * 3 * tile_pixels,
                         distance + j * tile_pixels,   labels + j * tile_pixels,
                         raster + j * pixels,          boxes + j * t.n_bands * t.n_tiles * 6};
    }
    py::gil_scoped_release release;
    sl::slic_frames(frames.data(), n, t, luts.data(), grid, workspaces.data(),
                    static_cast<int>(workers), out, counts);
}

}  // namespace

void register_slic(py::module_& m) {
    py::module_ s = m.def_submodule(
        "slic", "SLIC kernels: scikit-image 0.26's slic in float32 (see fastunlc._kernels.cpu.slic).");
    s.attr("BAND") = sl::kBand;
    s.attr("TILE") = sl::kTile;
    s.def("lab_rows", &lab_rows, py::arg("frame"), py::arg("lut"), py::arg("lab"), py::arg("r0"),
          py::arg("r1"),
          R"doc(CIELAB (D65, 2 degrees) of rows [r0, r1) of frame into lab.

frame: uint8 (h, w, 3) RGB. lut: float32 (256,), the rescaled, linearised sRGB value of
each uint8 level. lab: float32 (3, h, w), C-contiguous, written in place (L, a, b).)doc");
    s.def("reflect_table", &reflect_table, py::arg("n"), py::arg("r"),
          R"doc(Source index of positions -r .. n + r - 1 of a line of n samples extended as
scipy.ndimage's 'reflect' mode does (dcba|abcd|dcba, repeated for short lines): int64
(n + 2 r,), entry i for position i - r.)doc");
    s.def("smooth_rows", &smooth_rows, py::arg("lab"), py::arg("weights"), py::arg("scale"),
          py::arg("row_source"), py::arg("column_source"), py::arg("image"), py::arg("r0"),
          py::arg("r1"),
          R"doc(Gaussian smoothing of rows [r0, r1) into the tiled image.

lab: float32 (3, h, w), correlated with the symmetric kernel weights (float32 (2 r + 1,))
along y, then x (scipy.ndimage.gaussian_filter's order, pair terms farthest first),
multiplied by scale (float32) and written to image: float32 (bands, tiles, 3, BAND * TILE),
bands = ceil(h / BAND), tiles = ceil(w / TILE), in place (pixels outside the frame are
not written). row_source, column_source: int64, reflect_table(h, r) and reflect_table(w, r).)doc");
    s.def("colour_boxes", &colour_boxes, py::arg("image"), py::arg("h"), py::arg("w"),
          py::arg("boxes"),
          R"doc(Per-channel minimum and maximum of each tile's pixels inside the h x w frame.

image: float32 (bands, tiles, 3, BAND * TILE). boxes: float32 (bands, tiles, 6), in place,
as min L, a, b, max L, a, b.)doc");
    s.def("centre_windows", &centre_windows, py::arg("centres"), py::arg("alive"),
          py::arg("half"), py::arg("h"), py::arg("w"), py::arg("windows"),
          R"doc(Search windows of the centres as scikit-image computes them (in float64).

centres: float32 (k, 5) as y, x, L, a, b (pixels, colours). alive: bool (k,). half:
int64 (2,), window half-sizes along y and x (pixels). windows: int64 (k, 4), in place, as
y0, y1, x0, x1 with y0 = int(max(cy - half_y, 0)), y1 = int(min(cy + half_y + 1, h)) and
likewise x; all 0 for dead centres.)doc");
    s.def("kmeans_step", &kmeans_step, py::arg("image"), py::arg("boxes"), py::arg("centres"),
          py::arg("windows"), py::arg("spatial_weight"), py::arg("h"), py::arg("w"),
          py::arg("guess"), py::arg("uniform"), py::arg("distance"), py::arg("labels"),
          py::arg("sums"),
          R"doc(One k-means assignment step and the change it makes to the centre sums.

Every pixel goes to the first centre, in centre order, at the smallest float32 distance
((cy - y)**2 + (cx - x)**2) * spatial_weight + |colour - centre colour|**2 among the
centres whose window holds it; it keeps its label if none does. Centres that provably
cannot take a pixel of a tile are skipped: the result is the exhaustive search's.

image: float32 (bands, tiles, 3, BAND * TILE), smoothed CIELAB / compactness, tiled.
boxes: float32 (bands, tiles, 6), from colour_boxes. centres: float32 (k, 5). windows:
int64 (k, 4), from centre_windows. spatial_weight: float32, 1 / step**2. h, w: frame size.
guess: int32 (bands, tiles) in [0, k), a centre tried first in each tile when its middle
pixel has no label. uniform: all centres have the same colour (the first step).
distance: float32 (bands, tiles, BAND * TILE), scratch. labels: int32 (bands, tiles,
BAND * TILE) in [-1, k), updated in place. sums: int64 (k, 6), receives in place the change
of every centre's pixel count and sums of y, x and the colours (in units of 2**-32).)doc");
    s.def("update_centres", &update_centres, py::arg("sums"), py::arg("centres"), py::arg("alive"),
          R"doc(Every centre to the mean of its pixels; a centre without pixels dies.

sums: int64 (k, 6) as kmeans_step's. centres: float32 (k, 5) and alive: bool (k,), in place.)doc");
    s.def("enforce_connectivity", &enforce_connectivity, py::arg("labels"), py::arg("min_size"),
          py::arg("max_size"), py::arg("out"),
          R"doc(scikit-image's _enforce_label_connectivity_cython on a 2-D label image.

labels: int32 (h, w). min_size, max_size: component size bounds in pixels (max_size >= 1).
out: int32 (h, w), C-contiguous, written in place with labels in [0, n). Returns n.)doc");
    s.def("slic_frames", &slic_frames, py::arg("frames"), py::arg("luts"), py::arg("weights"),
          py::arg("scale"), py::arg("initial"), py::arg("half"), py::arg("spatial_weight"),
          py::arg("guess"), py::arg("n_iter"), py::arg("min_size"), py::arg("max_size"),
          py::arg("lab"), py::arg("image"), py::arg("distance"), py::arg("labels"),
          py::arg("raster"), py::arg("boxes"), py::arg("out"), py::arg("counts"),
          R"doc(SLIC labels of every frame, frames in parallel (one OpenMP thread per worker).

frames: uint8 (n, h, w, 3) RGB. luts: float32 (n, 256), each frame's lut (see lab_rows).
weights: float32 (2 r + 1,) Gaussian kernel. scale: float32, 1 / compactness. initial:
float32 (k, 5) seeds (y, x, colours 0). half: int64 (2,) window half-sizes (pixels).
spatial_weight: float32, 1 / step**2. guess: int32 (bands, tiles) in [0, k). n_iter:
k-means iterations (all run). min_size, max_size: connectivity bounds (pixels,
max_size >= 1). lab, image, distance, labels, raster, boxes: the workspace (leading
dimension: workers, at most that many threads). out: int32 (n, h, w), in place, labels
0-based and contiguous. counts: int64 (n,), in place, labels per frame. The GIL is
released while the frames run.)doc");
}

}  // namespace fastunlc
