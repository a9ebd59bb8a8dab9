// What Adam's update costs a value (the engine's kernel, gan_adam_wide in
// Sources/CSupport/WideKernels.c), in cache and out of it, next to what its one square root and
// one division cost alone: the 8-lane square root's and division's throughput on this CPU. Adam is
// 10-16 % of an mlp step's main thread; this says how much of that is the divide unit, which
// PyTorch's bit-exact update needs (docs/performance-log.md, session 28). Not part of the build. Run:
//   clang -O2 -I Sources/CSupport/include scripts/adam_throughput.c Sources/CSupport/WideKernels.c \
//     Sources/CSupport/CSupport.c -o /tmp/adam_throughput -lm && /tmp/adam_throughput
#include "CSupport.h"
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

#define ROUNDS 20000000L

// ns per 8-lane operation: eight independent chains of square roots, of divisions, and of both
// (the asm barrier keeps each result live, so neither the loop nor the chains fold away).
__attribute__((target("avx2"))) static void divide_unit(double *sqrt_ns, double *div_ns, double *both_ns) {
    __m256 x[8], d = _mm256_set1_ps(1.0000001f);
    for (int i = 0; i < 8; i++) x[i] = _mm256_set1_ps(1.0f + 0.1f * i);
    double t = now();
    for (long r = 0; r < ROUNDS; r++)
        for (int i = 0; i < 8; i++) {
            x[i] = _mm256_sqrt_ps(x[i]);
            __asm__("" : "+x"(x[i]));
        }
    *sqrt_ns = (now() - t) / (8.0 * ROUNDS) * 1e9;
    t = now();
    for (long r = 0; r < ROUNDS; r++)
        for (int i = 0; i < 8; i++) {
            x[i] = _mm256_div_ps(x[i], d);
            __asm__("" : "+x"(x[i]));
        }
    *div_ns = (now() - t) / (8.0 * ROUNDS) * 1e9;
    t = now();
    for (long r = 0; r < ROUNDS; r++)
        for (int i = 0; i < 4; i++) {
            x[i] = _mm256_div_ps(x[i], d);
            x[i + 4] = _mm256_sqrt_ps(x[i + 4]);
            __asm__("" : "+x"(x[i]), "+x"(x[i + 4]));
        }
    *both_ns = (now() - t) / (8.0 * ROUNDS) * 1e9;
    float sum = 0;
    for (int i = 0; i < 8; i++) sum += x[i][0];
    if (sum != sum) printf("(not a number)\n");
}

int main(void) {
    gan_set_flush_denormals(1);
    if (!gan_cpu_has_avx2()) {
        printf("needs AVX2 and FMA\n");
        return 1;
    }
    double sq, dv, both;
    divide_unit(&sq, &dv, &both);
    printf("8-lane square root %.2f ns, division %.2f ns, the two interleaved %.2f ns each: %.3f ns a value for one of each\n",
           sq, dv, both, 2 * both / 8);
    // 4 Ki values stay in L1/L2; the mlp's discriminator (55 k) and generator (293 k, 146 k a thread) do not.
    static const long sizes[] = {4096, 16384, 55000, 146568, 293136, 1000000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        long n = sizes[s];
        float *p = aligned_alloc(64, 4 * n + 64), *g = aligned_alloc(64, 4 * n + 64);
        float *m = aligned_alloc(64, 4 * n + 64), *v = aligned_alloc(64, 4 * n + 64);
        for (long i = 0; i < n; i++) p[i] = rand() / (float)RAND_MAX, g[i] = rand() / (float)RAND_MAX - 0.5f, m[i] = v[i] = 0;
        double t[101];
        int finite = 0;
        for (int it = 0; it < 101; it++) {
            double t0 = now();
            gan_adam_wide(p, g, m, v, n, 0.5f, 0.999f, 1e-8f, 0, 2e-4f, 0.03f, &finite);
            t[it] = now() - t0;
        }
        qsort(t, 101, sizeof(double), by_value);
        printf("Adam on %7ld values: %7.1f µs, %.3f ns a value, %.1f GB/s of its 28 bytes a value%s\n", n, t[50] * 1e6,
               t[50] * 1e9 / n, 28.0 * n / t[50] / 1e9, finite ? "" : " (not finite)");
        free(p), free(g), free(m), free(v);
    }
    return 0;
}
