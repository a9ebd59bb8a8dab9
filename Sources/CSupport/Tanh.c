// tanh without libm: tanhf is a call per value that the compiler cannot vectorize, and it ran on
// one thread (the generator's 64×784 output in mlp-deep, cgan and dcgan-bn): this made their
// steps 1.03–1.06× faster (`gan bench train --alternate`, a temporary switch). Compiled for
// AVX-512, AVX2 + FMA and baseline x86-64 like the sigmoid, giving the same bits on each.
#include "CSupport.h"
#include "ExpNonpositive.h"

static GAN_SAME_BITS_INLINE void gan_tanh_loop(const float *x, float *y, long n) {
    for (long i = 0; i < n; i++) {
        float v = x[i];
        float a = __builtin_fabsf(v);
        // Near 0, (1 − e)/(1 + e) would lose the digits of a small result to cancellation; an odd
        // polynomial a + a·z·P(z), z = a², fitted here for relative error on [0, 0.625] and
        // evaluated in Estrin's order (see ExpNonpositive.h), is within 1 ulp. Beyond,
        // e = e^(−2a) ≤ 0.29 and the quotient loses nothing.
        float z = a * a;
        float z2 = z * z;
        float p = fmaf(fmaf(-5.717408e-3f, z2, fmaf(2.0650901e-2f, z, -5.374359e-2f)), z2,
                       fmaf(1.3331492e-1f, z, -3.3333284e-1f));
        float small = fmaf(a, z * p, a);
        float e = exp_nonpositive(-2.0f * a);
        float large = (1.0f - e) / (1.0f + e);
        // a is NaN: both sides are NaN; copysign keeps tanh(−0) = −0.
        y[i] = __builtin_copysignf(a < 0.625f ? small : large, v);
    }
}

GAN_SAME_BITS_VARIANTS(gan_tanh, (const float *x, float *y, long n), (x, y, n))
