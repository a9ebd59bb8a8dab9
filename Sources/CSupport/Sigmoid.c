// The logistic sigmoid without libm: libm's expf is a call per value that the compiler cannot
// vectorize, and it was 5-6 % of an mlp training step (the generator's 64×784 output).
// The loop is compiled three times (AVX-512, AVX2 + FMA and baseline x86-64, chosen when the
// program loads; SameBitsClones.h), all giving the same bits.
#include "CSupport.h"
#include "ExpNonpositive.h"

static GAN_SAME_BITS_INLINE void gan_sigmoid_loop(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) {
        // e^(−|x|) never overflows: 1/(1+e) for x ≥ 0, e/(1+e) below.
        float v = x[i];
        float e = exp_nonpositive(v < 0 ? v : -v);
        float s = 1.0f / (1.0f + e);
        y[i] = v >= 0 ? s : e * s;
    }
}

GAN_SAME_BITS_VARIANTS(gan_sigmoid, (const float *x, float *y, long n), (x, y, n))
