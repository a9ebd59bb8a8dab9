// Batches of images: rows of bytes gathered by index and scaled to floats.
#include "CSupport.h"
#include <math.h>

// x / divisor with a multiplication: q₀ = x · RN(1/divisor), its remainder x − q₀ · divisor
// (exact with a fused multiply-add), then q₀ + remainder · RN(1/divisor) rounded once, which is
// RN(x / divisor) by Markstein's theorem (as in Adam's kernel); the dataset tests compare every
// byte with the division. AVX-512's division was the loop's bottleneck.
#if defined(__x86_64__)
__attribute__((target("avx512f,fma")))
static void scale_rows_wide(const unsigned char *base, const long *rows, long count, long length, float divisor, float shift,
                            float *out) {
    const float inverse = 1.0f / divisor;
    for (long b = 0; b < count; b++) {
        const unsigned char *row = base + rows[b] * length;
        float *o = out + b * length;
        for (long i = 0; i < length; i++) {
            float x = (float)row[i], q = x * inverse;
            q = fmaf(fmaf(-q, divisor, x), inverse, q);
            o[i] = q + shift;
        }
    }
}
#endif

static void scale_rows(const unsigned char *base, const long *rows, long count, long length, float divisor, float shift, float *out) {
    for (long b = 0; b < count; b++) {
        const unsigned char *row = base + rows[b] * length;
        float *o = out + b * length;
        for (long i = 0; i < length; i++) o[i] = (float)row[i] / divisor + shift;
    }
}

static void prefetch_rows(const unsigned char *base, const long *rows, long count, long length) {
    for (long b = 0; b < count; b++) {
        const unsigned char *row = base + rows[b] * length;
        for (long i = 0; i < length; i += 64) __builtin_prefetch(row + i, 0, 1);
        if (length > 0) __builtin_prefetch(row + length - 1, 0, 1);
    }
}

// The rows of a batch sit at random places in a dataset of tens of megabytes. Converted one after
// another, each row's dozen cache lines missed one at a time (~1 µs a row, 5 % of an mlp step);
// asked for all at once first, their fetches overlap.
void gan_gather_scaled_bytes(const unsigned char *base, const long *rows, long count, long length, float divisor, float shift,
                             float *out) {
    prefetch_rows(base, rows, count, length);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx512f")) {
        scale_rows_wide(base, rows, count, length, divisor, shift, out);
        return;
    }
#endif
    scale_rows(base, rows, count, length, divisor, shift, out);
}
