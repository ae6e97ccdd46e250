// Packs: the same scalar arithmetic on several independent problems at once.
//
// A Pack holds one double per problem (its lane), a Pack32 one float. Arithmetic on
// packs is element-wise and IEEE-exact per lane, so a solver written once for an element
// type T gives, for T = Pack (Pack32), in every lane exactly what T = double (float) gives
// for that lane's problem, as long as the compiler fuses no multiply-adds (its choices
// differ between scalar and vector code; coarse2fine.cpp switches fusing off). GCC and
// Clang vector extensions map a pack to one vector register of the target: AVX-512, AVX,
// SSE2 or NEON. A Pack32 has twice the lanes of a Pack in the same register.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

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
constexpr int kPack32Width = 2 * kPackWidth;
typedef double Pack __attribute__((vector_size(8 * kPackWidth)));
typedef std::int64_t PackMask __attribute__((vector_size(8 * kPackWidth)));
typedef float Pack32 __attribute__((vector_size(4 * kPack32Width)));
typedef std::int32_t Pack32Mask __attribute__((vector_size(4 * kPack32Width)));

// The scalar of an element type: double for double and Pack, float for float and Pack32.
template <class T>
struct element {
    using type = T;
};
template <>
struct element<Pack> {
    using type = double;
};
template <>
struct element<Pack32> {
    using type = float;
};
template <class T>
using element_t = typename element<T>::type;

// Lanes of an element type: 1 for double and float, kPackWidth for Pack, kPack32Width for
// Pack32.
template <class T>
constexpr int lanes_of = static_cast<int>(sizeof(T) / sizeof(element_t<T>));

// Lane l's value (exact as a double); set_lane rounds x to the element type.
template <class T>
inline double lane(const T& a, int l) {
    if constexpr (std::is_arithmetic_v<T>) {
        return a;
    } else {
        return a[l];
    }
}
template <class T>
inline void set_lane(T& a, int l, double x) {
    if constexpr (std::is_arithmetic_v<T>) {
        a = static_cast<T>(x);
    } else {
        a[l] = static_cast<element_t<T>>(x);
    }
}

// Element-wise sqrt and |.|: the loops compile to one vector instruction each (with
// -fno-math-errno), and each lane gets std::sqrt / std::fabs of its value (in its own
// precision).
template <class T>
inline T sqrt_lanes(T a) {
    if constexpr (std::is_arithmetic_v<T>) {
        return std::sqrt(a);
    } else {
        T r;
        for (int l = 0; l < lanes_of<T>; ++l) r[l] = std::sqrt(a[l]);
        return r;
    }
}
template <class T>
inline T abs_lanes(T a) {
    if constexpr (std::is_arithmetic_v<T>) {
        return std::fabs(a);
    } else {
        T r;
        for (int l = 0; l < lanes_of<T>; ++l) r[l] = std::fabs(a[l]);
        return r;
    }
}

// m ? a : b per lane; m is what a comparison of T values gives (bool, PackMask or
// Pack32Mask).
inline double select(bool m, double a, double b) { return m ? a : b; }
inline float select(bool m, float a, float b) { return m ? a : b; }
inline Pack select(PackMask m, Pack a, Pack b) { return m ? a : b; }
inline Pack32 select(Pack32Mask m, Pack32 a, Pack32 b) { return m ? a : b; }

// x in every lane (rounded to the element type).
template <class T>
inline T splat(double x) {
    T r{};
    for (int l = 0; l < lanes_of<T>; ++l) set_lane(r, l, x);
    return r;
}

}  // namespace fastunlc::flow
