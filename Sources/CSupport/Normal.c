// Box–Muller normals without libm: logf, sinf and cosf are a call per value that the compiler
// cannot vectorize, ~12 ns a normal, 5 % of an mlp training step (its 64×100 latent batch).
// Like Sigmoid.c, the loop is compiled three times (AVX-512, AVX2 + FMA and baseline x86-64,
// chosen when the program loads; SameBitsClones.h), all giving the same bits.
#include "CSupport.h"
#include <stdint.h>
#include <string.h>
#include "SameBitsClones.h"

// ln x for x in [2⁻²⁴, 1]: x = m·2ᵉ with m in [√½, √2), f = m − 1 (exact), Cephes' degree-8
// polynomial for ln(1 + f) − f + f²/2, and e·ln 2 in two parts (Cephes' logf).
static GAN_SAME_BITS_INLINE float log_unit(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    float e = (float)((int32_t)(bits >> 23) - 127);
    uint32_t mbits = (bits & 0x7FFFFFu) | 0x3F800000u;
    float m;
    memcpy(&m, &mbits, 4);
    int big = m > 1.41421354f;
    m = big ? m * 0.5f : m;
    e = big ? e + 1.0f : e;
    float f = m - 1.0f;
    float z = f * f;
    // The degree-8 polynomial in Estrin's order (four dependent steps instead of nine; see
    // ExpNonpositive.h for why the chain's length is what counts).
    float z2 = z * z;
    float p01 = fmaf(-2.4999993993e-1f, f, 3.3333331174e-1f);
    float p23 = fmaf(-1.6668057665e-1f, f, 2.0000714765e-1f);
    float p45 = fmaf(-1.2420140846e-1f, f, 1.4249322787e-1f);
    float p67 = fmaf(-1.1514610310e-1f, f, 1.1676998740e-1f);
    float p = fmaf(7.0376836292e-2f, z2 * z2, fmaf(fmaf(p67, z, p45), z2, fmaf(p23, z, p01)));
    float y = f * (z * p);
    y = fmaf(e, -2.12194440e-4f, y);
    y = fmaf(z, -0.5f, y);
    return fmaf(e, 0.693359375f, f + y);
}

// One pair of normals from two uniforms: radius √(−2 ln u₀) and angle 2π·u₁. The sine and cosine
// of 2π·v for v = k·2⁻²⁴ in [0, 1): the quadrant q = round(4v) and the remainder k − q·2²² come
// from k exactly, so r = 2π(v − q/4) in [−π/4, π/4] has one rounding; then Cephes' polynomials
// for sin r and cos r, and the quadrant's swap and signs. One function, not a sincos helper with
// two out-pointers: those stayed stack slots until after the vectorizer had given up on the loop.
static GAN_SAME_BITS_INLINE void pair(const float *u, float *out, float mean, float std) {
    float radius = __builtin_elementwise_sqrt(-2.0f * log_unit(u[0] + 0x1p-24f));
    int32_t k = (int32_t)(u[1] * 16777216.0f);
    int32_t q = (k + (1 << 21)) >> 22;
    float r = (float)(k - q * (1 << 22)) * 3.745070387e-7f;
    float z = r * r;
    float sp = fmaf(fmaf(-1.9515295891e-4f, z, 8.3321608736e-3f), z, -1.6666654611e-1f);
    float sr = fmaf(sp * z, r, r);
    float cp = fmaf(fmaf(2.443315711809948e-5f, z, -1.388731625493765e-3f), z, 4.166664568298827e-2f);
    float cr = fmaf(cp * z, z, fmaf(-0.5f, z, 1.0f));
    float sv = (q & 1) ? cr : sr, cv = (q & 1) ? sr : cr;
    float s = (q & 2) ? -sv : sv;
    float c = ((q + 1) & 2) ? -cv : cv;
    out[0] = fmaf(std, radius * c, mean);
    out[1] = fmaf(std, radius * s, mean);
}

static GAN_SAME_BITS_INLINE void gan_box_muller_loop(const float *u, float *out, long n, float mean, float std) {
    long pairs = n / 2;
    for (long j = 0; j < pairs; j++) pair(u + 2 * j, out + 2 * j, mean, std);
    if (n % 2) {
        float last[2];
        pair(u + n - 1, last, mean, std);
        out[n - 1] = last[0];
    }
}

GAN_SAME_BITS_VARIANTS(gan_box_muller, (const float *u, float *out, long n, float mean, float std), (u, out, n, mean, std))
