// Packs: the same scalar arithmetic on several independent problems at once.
//
// A Pack holds one double per problem (its lane). Arithmetic on Packs is element-wise
// and IEEE-exact per lane, so a solver written once for an element type T gives, for
// T = Pack, in every lane exactly what T = double gives for that lane's problem, as long
// as the compiler fuses no multiply-adds (its choices differ between scalar and vector
// code; coarse2fine.cpp switches fusing off). GCC and Clang vector extensions map a Pack
// to one vector register of the target: AVX-512, AVX, SSE2 or NEON.
#pragma once

#include <cmath>
#include <cstdint>

namespace fastunlc::flow {

// Lanes of a Pack: the doubles in one vector register of the target. (A Pack wider than
// the registers would still be exact, but GCC's code for it is slower than scalar code.)
#if defined(__AVX512F__)
#define FASTUNLC_PACK_WIDTH 8
#elif defined(__AVX__)
#define FASTUNLC_PACK_WIDTH 4
#else  // SSE2, NEON
#define FASTUNLC_PACK_WIDTH 2
#endif
constexpr int kPackWidth = FASTUNLC_PACK_WIDTH;
typedef double Pack __attribute__((vector_size(8 * kPackWidth)));
typedef std::int64_t PackMask __attribute__((vector_size(8 * kPackWidth)));

// Lanes of an element type: 1 for double, kPackWidth for Pack.
template <class T>
constexpr int lanes_of = static_cast<int>(sizeof(T) / sizeof(double));

inline double lane(double a, int) { return a; }
inline double lane(const Pack& a, int l) { return a[l]; }
inline void set_lane(double& a, int, double x) { a = x; }
inline void set_lane(Pack& a, int l, double x) { a[l] = x; }

// Element-wise sqrt and |.|: the loops compile to one vector instruction each (with
// -fno-math-errno), and each lane gets std::sqrt / std::fabs of its value.
inline double sqrt_lanes(double a) { return std::sqrt(a); }
inline Pack sqrt_lanes(Pack a) {
    Pack r;
    for (int l = 0; l < kPackWidth; ++l) r[l] = std::sqrt(a[l]);
    return r;
}
inline double abs_lanes(double a) { return std::fabs(a); }
inline Pack abs_lanes(Pack a) {
    Pack r;
    for (int l = 0; l < kPackWidth; ++l) r[l] = std::fabs(a[l]);
    return r;
}

// m ? a : b per lane; m is what a comparison of T values gives (bool or PackMask).
inline double select(bool m, double a, double b) { return m ? a : b; }
inline Pack select(PackMask m, Pack a, Pack b) { return m ? a : b; }

// x in every lane.
template <class T>
inline T splat(double x) {
    T r{};
    for (int l = 0; l < lanes_of<T>; ++l) set_lane(r, l, x);
    return r;
}

}  // namespace fastunlc::flow
