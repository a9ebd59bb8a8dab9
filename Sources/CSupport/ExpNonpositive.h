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

#endif
