// For loops compiled once per x86 level (AVX-512, AVX2 + FMA, baseline; the copy is chosen when
// the program loads) that must give the same bits on every CPU. Contraction into fused
// multiply-adds is off for the rest of the file that includes this, since the compiler would
// contract differently in each copy; where a fused multiply-add is wanted the code calls fmaf,
// one instruction in the vector copies and libm's correctly rounded (slow, but the same bits) in
// the baseline one, which only CPUs older than 2013 run.
#ifndef GAN_SAME_BITS_CLONES_H
#define GAN_SAME_BITS_CLONES_H

#include <math.h>
#include "CSupport.h"

#pragma clang fp contract(off)

// The loop is written once, as `static GAN_SAME_BITS_INLINE void NAME_loop(…)` (its helpers
// GAN_SAME_BITS_INLINE too, or they stay calls compiled for the baseline only), and
// GAN_SAME_BITS_VARIANTS(NAME, (params), (args)) defines NAME (declared in CSupport.h) with one
// copy per level, the best one this CPU runs chosen on the first call (gan_cpu_has_*). Written
// out rather than with target_clones, whose copies can each ask for one feature only: the middle
// copy needs AVX2 and FMA both (with FMA alone the integer steps ran in 128-bit halves and
// Box–Muller got slower). NAME_at_level(level) hands out one copy (0 baseline, 1 AVX2 + FMA,
// 2 AVX-512; NULL when this CPU lacks it) so the tests can hold the copies to the same bits.
#define GAN_SAME_BITS_INLINE inline __attribute__((always_inline))
#if defined(__x86_64__) && defined(__clang__)
#define GAN_SAME_BITS_VARIANTS(name, params, args) \
    __attribute__((target("avx512f"))) static void name##_avx512 params { name##_loop args; } \
    __attribute__((target("avx2,fma"))) static void name##_avx2_fma params { name##_loop args; } \
    static void name##_baseline params { name##_loop args; } \
    __typeof__(name) *name##_at_level(int level) { \
        switch (level) { \
        case 0: return name##_baseline; \
        case 1: return gan_cpu_has_avx2() ? name##_avx2_fma : 0; \
        case 2: return gan_cpu_has_avx512f() ? name##_avx512 : 0; \
        default: return 0; \
        } \
    } \
    void name params { \
        static __typeof__(name) *chosen; \
        __typeof__(name) *copy = __atomic_load_n(&chosen, __ATOMIC_RELAXED); \
        if (!copy) { \
            for (int level = 2; !copy; level--) copy = name##_at_level(level); \
            __atomic_store_n(&chosen, copy, __ATOMIC_RELAXED); \
        } \
        copy args; \
    }
#else
#define GAN_SAME_BITS_VARIANTS(name, params, args) \
    void name params { name##_loop args; } \
    __typeof__(name) *name##_at_level(int level) { return level == 0 ? name : 0; }
#endif

#endif
