// Windowed exact k-NN over frames' superpixel descriptors (see knn.h).
//
// Frames are taken in order. When frame e enters (radius + 1 frames ahead), its rows are
// offered its own block (e, e); at step f, each block (f, b) for b = f + 1 .. f + radius is
// computed once and offered both ways: row i of f takes the block's row i, row j of b its
// column j. A block is 6 x 16 tiles of dot products (12 AVX2 accumulators, one fused
// multiply-add per component). After step f, frame f's rows have seen their whole window
// and are written out; only radius + 2 frames' rows are held at a time.
// Threads split a step's blocks; the column offers (rows of b, one block each, from the
// block transposed) run inside the block's thread, the row offers (all blocks share
// frame f's rows) after a barrier, split by rows.
#include "graph/knn.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace fastunlc::graph {

namespace {

constexpr int64_t kTileRows = 6;
constexpr int64_t kTileCols = 16;
constexpr float kInf = std::numeric_limits<float>::infinity();

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// A candidate as one integer key: the distance's bits above the index. Distances are >= 0,
// where IEEE bits order as the values do, so keys order as (distance, index) and compare
// in one instruction.
using Candidate = uint64_t;

inline Candidate candidate(float dist, int64_t index) {
    uint32_t bits;
    std::memcpy(&bits, &dist, sizeof bits);
    return (static_cast<uint64_t>(bits) << 32) | static_cast<uint32_t>(index);
}

inline float dist_of(Candidate c) {
    const auto bits = static_cast<uint32_t>(c >> 32);
    float dist;
    std::memcpy(&dist, &bits, sizeof dist);
    return dist;
}

inline int64_t index_of(Candidate c) { return static_cast<int64_t>(c & 0xffffffffu); }

// The m smallest candidates offered to each active row. A row appends every candidate not
// beyond its current worst to a buffer of kBuffer * m; a full buffer is cut back to its m
// smallest (nth_element), which sets the new worst. Appending costs a compare and a store,
// where a heap's sift costs several unpredictable branches (on a reference shot of
// vtest.avi a row is cut about three times). Rows are local: frame f's rows at
// (f % slots) * largest + i.
constexpr int64_t kBuffer = 4;

struct Nearest {
    int64_t m;
    int64_t capacity;
    std::vector<Candidate> kept;  // rows x capacity
    std::vector<int64_t> size;    // rows
    std::vector<float> worst;     // rows: the m-th smallest distance of the last cut, else inf

    Nearest(int64_t rows, int64_t m_) : m(m_), capacity(kBuffer * m_), kept(rows * capacity),
                                        size(rows, 0), worst(rows, kInf) {}

    void clear(int64_t row0, int64_t n) {
        std::fill(size.begin() + row0, size.begin() + row0 + n, 0);
        std::fill(worst.begin() + row0, worst.begin() + row0 + n, kInf);
    }

    void offer(int64_t row, float d, int64_t c) {
        if (d > worst[row]) return;
        Candidate* buffer = kept.data() + row * capacity;
        buffer[size[row]++] = candidate(d, c);
        if (size[row] == capacity) {
            std::nth_element(buffer, buffer + m - 1, buffer + capacity);
            size[row] = m;
            worst[row] = dist_of(buffer[m - 1]);
        }
    }
};

// Rows of one frame zero-padded to a multiple of kTileRows (row-major, d per row), and
// the same rows as column panels of kTileCols: panel p holds component c of row
// p * kTileCols + j at [p][c][j], zero beyond the frame.
struct Packed {
    std::vector<float> rows;
    std::vector<float> panels;
};

Packed pack(const float* x, int64_t n, int64_t d) {
    Packed p;
    p.rows.assign(round_up(n, kTileRows) * d, 0.0f);
    std::copy(x, x + n * d, p.rows.begin());
    const int64_t n_panels = round_up(n, kTileCols) / kTileCols;
    p.panels.assign(n_panels * d * kTileCols, 0.0f);
    for (int64_t r = 0; r < n; ++r) {
        float* panel = p.panels.data() + (r / kTileCols) * d * kTileCols + r % kTileCols;
        for (int64_t c = 0; c < d; ++c) panel[c * kTileCols] = x[r * d + c];
    }
    return p;
}

// out[i][j] = sum_c a[i][c] * b[c][j] for a tile of kTileRows rows (stride d) and one
// panel, each sum one fused multiply-add per component in component order from 0.
inline void dot_tile(const float* a, const float* panel, int64_t d, float* out) {
#if defined(__AVX2__) && defined(__FMA__)
    __m256 acc[kTileRows][2];
    for (auto& row : acc) row[0] = row[1] = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; ++c) {
        const __m256 b0 = _mm256_loadu_ps(panel + c * kTileCols);
        const __m256 b1 = _mm256_loadu_ps(panel + c * kTileCols + 8);
        for (int64_t i = 0; i < kTileRows; ++i) {
            const __m256 ai = _mm256_broadcast_ss(a + i * d + c);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    for (int64_t i = 0; i < kTileRows; ++i) {
        _mm256_storeu_ps(out + i * kTileCols, acc[i][0]);
        _mm256_storeu_ps(out + i * kTileCols + 8, acc[i][1]);
    }
#else
    float acc[kTileRows][kTileCols] = {};
    for (int64_t c = 0; c < d; ++c)
        for (int64_t i = 0; i < kTileRows; ++i)
            for (int64_t j = 0; j < kTileCols; ++j)
                acc[i][j] = std::fma(a[i * d + c], panel[c * kTileCols + j], acc[i][j]);
    std::copy(&acc[0][0], &acc[0][0] + kTileRows * kTileCols, out);
#endif
}

// Squared distances of frame a's rows (na) to frame b's (nb) into block (na x nb,
// row-major): (|x_i|^2 + |x_j|^2) - 2 x_i . x_j, clamped at 0; also into transposed
// (nb x na) unless it is null.
void distance_block(const Packed& a, int64_t na, const float* norms_a, const Packed& b,
                    int64_t nb, const float* norms_b, int64_t d, float* block,
                    float* transposed) {
    float tile[kTileRows * kTileCols];
    for (int64_t j0 = 0; j0 < nb; j0 += kTileCols) {
        const float* panel = b.panels.data() + (j0 / kTileCols) * d * kTileCols;
        const int64_t cols = std::min(kTileCols, nb - j0);
        for (int64_t i0 = 0; i0 < na; i0 += kTileRows) {
            dot_tile(a.rows.data() + i0 * d, panel, d, tile);
            const int64_t rows = std::min(kTileRows, na - i0);
            for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j) {
                    const float sq = (norms_a[i0 + i] + norms_b[j0 + j]) -
                                     2.0f * tile[i * kTileCols + j];
                    block[(i0 + i) * nb + j0 + j] = sq > 0.0f ? sq : 0.0f;
                }
            if (transposed)
                for (int64_t j = 0; j < cols; ++j)
                    for (int64_t i = 0; i < rows; ++i)
                        transposed[(j0 + j) * na + i0 + i] = block[(i0 + i) * nb + j0 + j];
        }
    }
}

// Offers v[j] as candidate c0 + j to row `row`, for j < n. Eight distances at a time are
// compared with the row's current worst; only those not beyond it are offered one by one
// (the worst only falls, so a stale one lets through a superset).
void offer_to_row(Nearest& nearest, int64_t row, const float* v, int64_t n, int64_t c0) {
    int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
    for (; j + 8 <= n; j += 8) {
        const __m256 worst = _mm256_set1_ps(nearest.worst[row]);
        unsigned mask = static_cast<unsigned>(
            _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(v + j), worst, _CMP_LE_OQ)));
        while (mask) {
            const int bit = __builtin_ctz(mask);
            nearest.offer(row, v[j + bit], c0 + j + bit);
            mask &= mask - 1;
        }
    }
#endif
    for (; j < n; ++j) nearest.offer(row, v[j], c0 + j);
}

// Local row `row` (global index r) into out rows, nearest first; the row itself replaces
// the farthest kept candidate if more than m exact duplicates pushed it out.
void finish_row(Nearest& nearest, int64_t row, int64_t r, int64_t* indices,
                float* sq_distances) {
    const int64_t m = nearest.m;
    Candidate* buffer = nearest.kept.data() + row * nearest.capacity;
    const int64_t size = nearest.size[row];
    const int64_t n = std::min(m, size);
    if (size > n) std::nth_element(buffer, buffer + n - 1, buffer + size);
    std::sort(buffer, buffer + n);
    const bool has_self = std::any_of(buffer, buffer + n,
                                      [r](Candidate e) { return index_of(e) == r; });
    if (!has_self && n > 0) buffer[n - 1] = candidate(0.0f, r);
    for (int64_t q = 0; q < m; ++q) {
        indices[r * m + q] = q < n ? index_of(buffer[q]) : -1;
        sq_distances[r * m + q] = q < n ? dist_of(buffer[q]) : kInf;
    }
}

}  // namespace

void window_knn(const float* x, int64_t k, int64_t d, const int64_t* offsets,
                int64_t n_frames, int64_t radius, int64_t m, int64_t* indices,
                float* sq_distances) {
    std::vector<float> norms(k);
    std::vector<Packed> packed(n_frames);
#pragma omp parallel for schedule(dynamic)
    for (int64_t f = 0; f < n_frames; ++f) {
        const int64_t n = offsets[f + 1] - offsets[f];
        packed[f] = pack(x + offsets[f] * d, n, d);
        for (int64_t r = offsets[f]; r < offsets[f + 1]; ++r) {
            float s = 0.0f;  // the same fused sequence as dot_tile's, so d(r, r) == 0
            for (int64_t c = 0; c < d; ++c) s = std::fma(x[r * d + c], x[r * d + c], s);
            norms[r] = s;
        }
    }
    int64_t largest = 0;
    for (int64_t f = 0; f < n_frames; ++f)
        largest = std::max(largest, offsets[f + 1] - offsets[f]);
    radius = std::min(radius, n_frames - 1);

    // At step f frames f .. f + radius + 1 are active: f is finished at the end of the
    // step, f + radius + 1 enters (its rows take their own frame first).
    const int64_t slots = radius + 2;
    Nearest nearest(slots * largest, m);
    auto local = [&](int64_t f) { return (f % slots) * largest; };
    // One block per thread: a step's tasks (blocks (f, f + 1 .. f + radius) and the
    // entering frame's own) run in groups of `threads`, so the blocks stay in cache.
    const int64_t threads = std::max(1, omp_get_max_threads());
    std::vector<std::vector<float>> blocks(threads, std::vector<float>(largest * largest));
    std::vector<std::vector<float>> transposed(threads, std::vector<float>(largest * largest));

    // Frame e enters: its rows are offered their own frame (the diagonal block).
    auto enter = [&](int64_t e, float* block) {
        const int64_t fe = offsets[e];
        const int64_t ne = offsets[e + 1] - fe;
        nearest.clear(local(e), ne);
        distance_block(packed[e], ne, norms.data() + fe, packed[e], ne, norms.data() + fe, d,
                       block, nullptr);
        for (int64_t i = 0; i < ne; ++i)
            offer_to_row(nearest, local(e) + i, block + i * ne, ne, fe);
    };
#pragma omp parallel for schedule(static, 1)
    for (int64_t e = 0; e <= radius; ++e) enter(e, blocks[omp_get_thread_num()].data());

    for (int64_t f = 0; f < n_frames; ++f) {
        const int64_t fa = offsets[f];
        const int64_t na = offsets[f + 1] - fa;
        const int64_t last = std::min(f + radius, n_frames - 1);
        // Task t < last - f: block (f, f + 1 + t); task last - f: frame f + radius + 1 enters.
        const int64_t tasks = last - f + (f + radius + 1 < n_frames ? 1 : 0);
        for (int64_t t0 = 0; t0 < tasks; t0 += threads) {
            const int64_t group = std::min(threads, tasks - t0);
#pragma omp parallel
            {
#pragma omp for schedule(static, 1)
                for (int64_t g = 0; g < group; ++g) {
                    const int64_t b = f + 1 + t0 + g;
                    if (b > last) {
                        enter(f + radius + 1, blocks[g].data());
                        continue;
                    }
                    const int64_t fb = offsets[b];
                    const int64_t nb = offsets[b + 1] - fb;
                    float* columns = transposed[g].data();
                    distance_block(packed[f], na, norms.data() + fa, packed[b], nb,
                                   norms.data() + fb, d, blocks[g].data(), columns);
                    for (int64_t j = 0; j < nb; ++j)
                        offer_to_row(nearest, local(b) + j, columns + j * na, na, fa);
                }
#pragma omp for schedule(static)
                for (int64_t i = 0; i < na; ++i)
                    for (int64_t g = 0; g < group && f + 1 + t0 + g <= last; ++g) {
                        const int64_t fb = offsets[f + 1 + t0 + g];
                        const int64_t nb = offsets[f + 2 + t0 + g] - fb;
                        offer_to_row(nearest, local(f) + i, blocks[g].data() + i * nb, nb, fb);
                    }
            }
        }
        // Frame f's rows have now seen their whole window (the earlier frames offered their
        // columns when f was their block's second frame).
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < na; ++i)
            finish_row(nearest, local(f) + i, fa + i, indices, sq_distances);
    }
}

}  // namespace fastunlc::graph
