// Checks the division-free √v / c of Adam's AVX-512 kernel (Sources/CSupport/WideKernels.c):
// q₀ = x · RN(1/c), then q₀ + (x − q₀·c) · RN(1/c) with fused multiply-adds, against x / c, for
// every float mantissa of x (quotients scale with x's exponent, so one binade covers all normal
// x) and 12,256 divisors c: the bias corrections √(1 − β₂ᵗ) for β₂ 0.999, 0.99, 0.9 and t ≤ 3,000,
// 3,000 random c in [0.5, 1), and the 256 floats just below 1. Prints the mismatches (none).
//   clang -O2 -o /tmp/adam_division_check scripts/adam_division_check.c -lm && /tmp/adam_division_check
#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((target("avx512f"))) static long mismatches(float c) {
    const __m512 r = _mm512_set1_ps(1.0f / c), vc = _mm512_set1_ps(c);
    const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    long bad = 0;
    for (unsigned m = 0; m < (1u << 23); m += 16) {
        __m512 x = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_set1_epi32((int)(0x3f800000u | m)), lanes));
        __m512 q0 = _mm512_mul_ps(x, r), q = _mm512_fmadd_ps(_mm512_fnmadd_ps(q0, vc, x), r, q0);
        __m512 exact = _mm512_div_ps(x, vc);
        bad += __builtin_popcount(_mm512_cmp_epi32_mask(_mm512_castps_si512(q), _mm512_castps_si512(exact), _MM_CMPINT_NE));
    }
    return bad;
}

static long check(float c, long *divisors) {
    long bad = mismatches(c);
    ++*divisors;
    if (bad) printf("c = %a: %ld mismatches\n", c, bad);
    return bad;
}

int main(void) {
    if (!__builtin_cpu_supports("avx512f")) { fprintf(stderr, "needs AVX-512\n"); return 2; }
    long total = 0, divisors = 0;
    const double betas[] = {0.999, 0.99, 0.9};
    for (int t = 1; t <= 3000; t++)
        for (int k = 0; k < 3; k++) total += check((float)sqrt(1 - pow(betas[k], t)), &divisors);
    srand(1);
    for (int i = 0; i < 3000; i++) {
        unsigned u = 0x3f000000u | ((unsigned)rand() & 0x7fffffu);
        float c;
        memcpy(&c, &u, sizeof c);
        total += check(c, &divisors);
    }
    for (unsigned u = 0x3f7fff00u; u < 0x3f800000u; u++) {
        float c;
        memcpy(&c, &u, sizeof c);
        total += check(c, &divisors);
    }
    printf("%ld divisors × 2^23 mantissas: %ld mismatches\n", divisors, total);
    return total != 0;
}
