// Batches of images: rows of bytes gathered by index and scaled to floats.
#include "CSupport.h"
#include <math.h>

static void scale_row(const unsigned char *row, long length, float divisor, float shift, float *out) {
    for (long i = 0; i < length; i++) out[i] = (float)row[i] / divisor + shift;
}

#if defined(__x86_64__)
// x / divisor with a multiplication: q₀ = x · RN(1/divisor), its remainder x − q₀ · divisor
// (exact with a fused multiply-add), then q₀ + remainder · RN(1/divisor) rounded once, which is
// RN(x / divisor) by Markstein's theorem (as in Adam's kernel); the dataset tests compare every
// byte with the division. Division was the loop's bottleneck: with AVX-512, and without it 0.7 %
// of the mlp step's main-thread samples (SSE division, four lanes at a time).
static inline __attribute__((always_inline)) void scale_row_reciprocal(const unsigned char *row, long length, float divisor,
                                                                        float shift, float *out) {
    const float inverse = 1.0f / divisor;
    for (long i = 0; i < length; i++) {
        float x = (float)row[i], q = x * inverse;
        q = __builtin_fmaf(__builtin_fmaf(-q, divisor, x), inverse, q);
        out[i] = q + shift;
    }
}

__attribute__((target("avx512f,fma")))
static void scale_row_avx512(const unsigned char *row, long length, float divisor, float shift, float *out) {
    scale_row_reciprocal(row, length, divisor, shift, out);
}

__attribute__((target("avx2,fma")))
static void scale_row_avx2(const unsigned char *row, long length, float divisor, float shift, float *out) {
    scale_row_reciprocal(row, length, divisor, shift, out);
}
#endif

// The rows of a batch sit at random places in a dataset of tens of megabytes. Converted one after
// another, each row's dozen cache lines missed one at a time (~1 µs a row, 5 % of an mlp step);
// asked for all at once first, their fetches overlap.
void gan_gather_scaled_bytes(const unsigned char *base, const long *rows, long count, long length, float divisor, float shift,
                             float *out) {
    for (long b = 0; b < count; b++) {
        const unsigned char *row = base + rows[b] * length;
        for (long i = 0; i < length; i += 64) __builtin_prefetch(row + i, 0, 1);
        if (length > 0) __builtin_prefetch(row + length - 1, 0, 1);
    }
    void (*scale)(const unsigned char *, long, float, float, float *) = scale_row;
#if defined(__x86_64__)
    if (gan_cpu_has_avx512f()) scale = scale_row_avx512;
    else if (gan_cpu_has_avx2()) scale = scale_row_avx2;
#endif
    for (long b = 0; b < count; b++) scale(base + rows[b] * length, length, divisor, shift, out + b * length);
}
