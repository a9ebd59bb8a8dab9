// The logistic sigmoid without libm: libm's expf is a call per value that the compiler cannot
// vectorize, and it was 5-6 % of an mlp training step (the generator's 64×784 output).
// The loop is compiled three times (AVX-512, AVX2 and baseline x86-64, chosen when the program
// loads) with contraction into fused multiply-adds off, so all give the same bits.
#include "CSupport.h"
#include <stdint.h>
#include <string.h>

#pragma clang fp contract(off)

// eˣ for x ≤ 0: n = round(x·log₂e), r = x − n·ln 2 (ln 2 in two parts, so r is exact), Cephes'
// degree-6 polynomial for eʳ, times 2ⁿ built in the exponent bits. Within 2 ulp of expf down to
// −87.3, 0 below it (where expf is denormal, and flush-to-zero makes that 0 anyway).
static inline float exp_nonpositive(float x) {
    float c = x < -87.3f ? -87.3f : x;
    // Adding 1.5·2²³ rounds to an integer and leaves it in the low mantissa bits.
    const float shifter = 12582912.0f;
    float t = c * 1.44269504f + shifter;
    float n = t - shifter;
    float r = c - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, 4);
    bits = (bits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return x < -87.3f ? 0.0f : p * scale;
}

#if defined(__x86_64__) && defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void gan_sigmoid(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) {
        // e^(−|x|) never overflows: 1/(1+e) for x ≥ 0, e/(1+e) below.
        float v = x[i];
        float e = exp_nonpositive(v < 0 ? v : -v);
        float s = 1.0f / (1.0f + e);
        y[i] = v >= 0 ? s : e * s;
    }
}
