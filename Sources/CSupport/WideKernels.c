// Hot elementwise kernels in AVX-512 for CPUs that have it, and in AVX2 for those that have only
// AVX2 + FMA. The Swift build targets baseline x86-64 (SSE), so its SIMD16 code runs
// as four 128-bit operations; these run as one 512-bit (or two 256-bit) operation, chosen at run
// time. Written with intrinsics (never contracted into fused
// multiply-adds), in the same order of operations as the Swift kernels, so the results are the
// same bit for bit. (Adam's division by its bias correction is the one exception: an exact
// remainder with fused multiply-adds that rounds as the division does.)
#include "CSupport.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f")))
static int adam512(float *p, const float *g, float *m, float *v, long n, float b1, float b2, float eps, float wd,
                   float s, float c) {
    const __m512 vb1 = _mm512_set1_ps(b1), vb2 = _mm512_set1_ps(b2), ob1 = _mm512_set1_ps(1 - b1), ob2 = _mm512_set1_ps(1 - b2);
    const __m512 ve = _mm512_set1_ps(eps), vwd = _mm512_set1_ps(wd), vs = _mm512_set1_ps(s), vc = _mm512_set1_ps(c);
    // √v / c without a division (division and square root are most of the cost): q₀ = √v · RN(1/c),
    // its remainder √v − q₀·c (exact with a fused multiply-add), then q₀ + remainder · RN(1/c)
    // rounded once, which is RN(√v / c) by Markstein's theorem (q₀ is within an ulp, RN(1/c)
    // within half an ulp). scripts/adam_division_check.c compares it with the division for every
    // mantissa of √v and 12,256 values of c: no difference. √v = ∞ (the remainder would be
    // ∞ − ∞) keeps q₀ = ∞, as the division gives.
    const __m512 vr = _mm512_set1_ps(1.0f / c), vinf = _mm512_set1_ps(__builtin_inff());
    __mmask16 bad = 0;
    for (long k = 0; k < n; k += 16) {
        // Whole vectors, and the tail under a mask: the same operations on the lanes that exist.
        __mmask16 t = n - k >= 16 ? 0xFFFF : (__mmask16)((1u << (n - k)) - 1);
        __m512 pv = _mm512_maskz_loadu_ps(t, p + k), gv = _mm512_maskz_loadu_ps(t, g + k);
        if (wd != 0) gv = _mm512_add_ps(gv, _mm512_mul_ps(vwd, pv));
        __m512 mv = _mm512_add_ps(_mm512_mul_ps(vb1, _mm512_maskz_loadu_ps(t, m + k)), _mm512_mul_ps(ob1, gv));
        __m512 vv = _mm512_add_ps(_mm512_mul_ps(vb2, _mm512_maskz_loadu_ps(t, v + k)), _mm512_mul_ps(_mm512_mul_ps(ob2, gv), gv));
        _mm512_mask_storeu_ps(m + k, t, mv);
        _mm512_mask_storeu_ps(v + k, t, vv);
        __m512 root = _mm512_sqrt_ps(vv), q0 = _mm512_mul_ps(root, vr);
        __m512 q = _mm512_fmadd_ps(_mm512_fnmadd_ps(q0, vc, root), vr, q0);
        q = _mm512_mask_mov_ps(q, _mm512_cmp_ps_mask(root, vinf, _CMP_EQ_OQ), q0);
        __m512 d = _mm512_add_ps(q, ve);
        __m512 np = _mm512_sub_ps(pv, _mm512_div_ps(_mm512_mul_ps(vs, mv), d));
        _mm512_mask_storeu_ps(p + k, t, np);
        // x − x is 0 exactly when x is finite.
        bad |= (__mmask16)(t & ~_mm512_cmp_ps_mask(_mm512_sub_ps(np, np), _mm512_setzero_ps(), _CMP_EQ_OQ));
    }
    return bad == 0;
}

// adam512 in eight lanes, for CPUs with AVX2 and FMA but not AVX-512 (the portable Swift kernel
// runs four): the same operations in the same order. Whole vectors use plain loads and stores,
// only the tail a lane mask: AMD's Zen cores microcode masked stores (vmaskmovps), which made a
// loop of them no faster than the Swift kernel.
__attribute__((target("avx2,fma")))
static inline __m256 adam8(float *p, const float *g, float *m, float *v, __m256i t, int whole, __m256 vb1, __m256 vb2,
                           __m256 ob1, __m256 ob2, __m256 ve, __m256 vwd, int decay, __m256 vs, __m256 vc, __m256 vr) {
    __m256 pv = whole ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, t);
    __m256 gv = whole ? _mm256_loadu_ps(g) : _mm256_maskload_ps(g, t);
    __m256 m0 = whole ? _mm256_loadu_ps(m) : _mm256_maskload_ps(m, t);
    __m256 v0 = whole ? _mm256_loadu_ps(v) : _mm256_maskload_ps(v, t);
    if (decay) gv = _mm256_add_ps(gv, _mm256_mul_ps(vwd, pv));
    __m256 mv = _mm256_add_ps(_mm256_mul_ps(vb1, m0), _mm256_mul_ps(ob1, gv));
    __m256 vv = _mm256_add_ps(_mm256_mul_ps(vb2, v0), _mm256_mul_ps(_mm256_mul_ps(ob2, gv), gv));
    __m256 root = _mm256_sqrt_ps(vv), q0 = _mm256_mul_ps(root, vr);
    __m256 q = _mm256_fmadd_ps(_mm256_fnmadd_ps(q0, vc, root), vr, q0);
    q = _mm256_blendv_ps(q, q0, _mm256_cmp_ps(root, _mm256_set1_ps(__builtin_inff()), _CMP_EQ_OQ));
    __m256 np = _mm256_sub_ps(pv, _mm256_div_ps(_mm256_mul_ps(vs, mv), _mm256_add_ps(q, ve)));
    if (whole) {
        _mm256_storeu_ps(m, mv);
        _mm256_storeu_ps(v, vv);
        _mm256_storeu_ps(p, np);
    } else {
        _mm256_maskstore_ps(m, t, mv);
        _mm256_maskstore_ps(v, t, vv);
        _mm256_maskstore_ps(p, t, np);
    }
    // Lanes where np − np is not 0 (np not finite); masked-off lanes computed on zeros stay finite.
    return _mm256_cmp_ps(_mm256_sub_ps(np, np), _mm256_setzero_ps(), _CMP_NEQ_UQ);
}

__attribute__((target("avx2,fma")))
static int adam256(float *p, const float *g, float *m, float *v, long n, float b1, float b2, float eps, float wd,
                   float s, float c) {
    const __m256 vb1 = _mm256_set1_ps(b1), vb2 = _mm256_set1_ps(b2), ob1 = _mm256_set1_ps(1 - b1), ob2 = _mm256_set1_ps(1 - b2);
    const __m256 ve = _mm256_set1_ps(eps), vwd = _mm256_set1_ps(wd), vs = _mm256_set1_ps(s), vc = _mm256_set1_ps(c);
    const __m256 vr = _mm256_set1_ps(1.0f / c);
    const __m256i all = _mm256_set1_epi32(-1);
    int decay = wd != 0;
    __m256 bad = _mm256_setzero_ps();
    long k = 0;
    for (; k + 8 <= n; k += 8)
        bad = _mm256_or_ps(bad, adam8(p + k, g + k, m + k, v + k, all, 1, vb1, vb2, ob1, ob2, ve, vwd, decay, vs, vc, vr));
    if (k < n) {
        __m256i t = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        bad = _mm256_or_ps(bad, adam8(p + k, g + k, m + k, v + k, t, 0, vb1, vb2, ob1, ob2, ve, vwd, decay, vs, vc, vr));
    }
    return _mm256_movemask_ps(bad) == 0;
}

// Philox4x32-10 (RandomGenerator.philox) of sixteen consecutive counters, one per lane.
__attribute__((target("avx512f")))
static inline void mulhilo16(__m512i a, __m512i m, __m512i *hi, __m512i *lo) {
    __m512i even = _mm512_mul_epu32(a, m), odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
}

// The 64 uniforms of group g (counters start + 16g … start + 16g + 15) in memory order:
// u[k] holds out[16k … 16k + 15] of uniform512.
__attribute__((target("avx512f")))
static inline void uniform64(__m512 u[4], long g, unsigned long long start, unsigned long long key, __m512 vs, __m512 vo) {
    const __m512i m0 = _mm512_set1_epi32((int)0xD2511F53), m1 = _mm512_set1_epi32((int)0xCD9E8D57);
    const __m512i lanes_lo = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0), lanes_hi = _mm512_set_epi64(15, 14, 13, 12, 11, 10, 9, 8);
    {
        __m512i base = _mm512_set1_epi64((long long)(start + (unsigned long long)g * 16));
        __m512i c0 = _mm512_add_epi64(base, lanes_lo), c1 = _mm512_add_epi64(base, lanes_hi);
        __m512i x0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(c0)), _mm512_cvtepi64_epi32(c1), 1);
        __m512i x1 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(c0, 32))),
                                        _mm512_cvtepi64_epi32(_mm512_srli_epi64(c1, 32)), 1);
        __m512i x2 = _mm512_setzero_si512(), x3 = _mm512_setzero_si512();
        unsigned k0 = (unsigned)key, k1 = (unsigned)(key >> 32);
        for (int r = 0; r < 10; r++) {
            __m512i hi0, lo0, hi1, lo1;
            mulhilo16(x0, m0, &hi0, &lo0);
            mulhilo16(x2, m1, &hi1, &lo1);
            x0 = _mm512_xor_si512(_mm512_xor_si512(hi1, x1), _mm512_set1_epi32((int)k0));
            x1 = lo1;
            x2 = _mm512_xor_si512(_mm512_xor_si512(hi0, x3), _mm512_set1_epi32((int)k1));
            x3 = lo0;
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        // u = (x >> 8) · scale + offset, then word j of block i goes to out[4i + j].
        __m512 f0 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(x0, 8)), vs), vo);
        __m512 f1 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(x1, 8)), vs), vo);
        __m512 f2 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(x2, 8)), vs), vo);
        __m512 f3 = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(x3, 8)), vs), vo);
        __m512 t0 = _mm512_unpacklo_ps(f0, f1), t1 = _mm512_unpackhi_ps(f0, f1);
        __m512 t2 = _mm512_unpacklo_ps(f2, f3), t3 = _mm512_unpackhi_ps(f2, f3);
        // In each 128-bit lane L: u0 holds block 4L, u1 block 4L+1, u2 block 4L+2, u3 block 4L+3.
        __m512 u0 = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
        __m512 u1 = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t0), _mm512_castps_pd(t2)));
        __m512 u2 = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
        __m512 u3 = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t1), _mm512_castps_pd(t3)));
        // Blocks 0–3 are lane 0 of u0…u3: gather lanes so that each store is four whole blocks.
        const __m512i sel01 = _mm512_set_epi32(23, 22, 21, 20, 7, 6, 5, 4, 19, 18, 17, 16, 3, 2, 1, 0);
        const __m512i sel23 = _mm512_set_epi32(31, 30, 29, 28, 15, 14, 13, 12, 27, 26, 25, 24, 11, 10, 9, 8);
        __m512 a01 = _mm512_permutex2var_ps(u0, sel01, u1);  // blocks 0, 1, 4, 5
        __m512 a23 = _mm512_permutex2var_ps(u2, sel01, u3);  // blocks 2, 3, 6, 7
        __m512 b01 = _mm512_permutex2var_ps(u0, sel23, u1);  // blocks 8, 9, 12, 13
        __m512 b23 = _mm512_permutex2var_ps(u2, sel23, u3);  // blocks 10, 11, 14, 15
        const __m512i lo256 = _mm512_set_epi32(23, 22, 21, 20, 19, 18, 17, 16, 7, 6, 5, 4, 3, 2, 1, 0);
        const __m512i hi256 = _mm512_set_epi32(31, 30, 29, 28, 27, 26, 25, 24, 15, 14, 13, 12, 11, 10, 9, 8);
        u[0] = _mm512_permutex2var_ps(a01, lo256, a23);  // blocks 0–3
        u[1] = _mm512_permutex2var_ps(a01, hi256, a23);  // blocks 4–7
        u[2] = _mm512_permutex2var_ps(b01, lo256, b23);  // blocks 8–11
        u[3] = _mm512_permutex2var_ps(b01, hi256, b23);  // blocks 12–15
    }
}

__attribute__((target("avx512f")))
static void uniform512(float *out, long groups, unsigned long long start, unsigned long long key, float scale, float offset) {
    const __m512 vs = _mm512_set1_ps(scale), vo = _mm512_set1_ps(offset);
    for (long g = 0; g < groups; g++) {
        __m512 u[4];
        uniform64(u, g, start, key, vs, vo);
        for (int k = 0; k < 4; k++) _mm512_storeu_ps(out + g * 64 + 16 * k, u[k]);
    }
}

// Inverted dropout from the uniforms in [0, 1) that uniform512 would store: the mask
// (u >= p ? keep : 0, DropoutMaskK) and x · mask (MulK), without the uniforms' round trip.
__attribute__((target("avx512f")))
static void dropout512(const float *x, float *y, float *mask, long groups, unsigned long long start, unsigned long long key,
                       float p, float keep) {
    const __m512 vs = _mm512_set1_ps(0x1p-24f), vo = _mm512_setzero_ps(), vp = _mm512_set1_ps(p), vk = _mm512_set1_ps(keep);
    for (long g = 0; g < groups; g++) {
        __m512 u[4];
        uniform64(u, g, start, key, vs, vo);
        for (int k = 0; k < 4; k++) {
            long i = g * 64 + 16 * k;
            __m512 m = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(u[k], vp, _CMP_GE_OQ), vk);
            _mm512_storeu_ps(mask + i, m);
            _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), m));
        }
    }
}

// uniform64 for eight counters (start + 8h … + 7) in AVX2: the same rounds and float operations,
// the 32 uniforms in memory order in u[0…3].
__attribute__((target("avx2")))
static inline __m256i mulhi8(__m256i a, __m256i m, __m256i *lo) {
    __m256i even = _mm256_mul_epu32(a, m), odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

__attribute__((target("avx2")))
static inline void uniform32(__m256 u[4], unsigned long long first, unsigned long long key, __m256 vs, __m256 vo) {
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53), m1 = _mm256_set1_epi32((int)0xCD9E8D57);
    unsigned lo[8], hi[8];
    for (int j = 0; j < 8; j++) {
        unsigned long long c = first + (unsigned long long)j;
        lo[j] = (unsigned)c;
        hi[j] = (unsigned)(c >> 32);
    }
    __m256i x0 = _mm256_loadu_si256((const __m256i *)lo), x1 = _mm256_loadu_si256((const __m256i *)hi);
    __m256i x2 = _mm256_setzero_si256(), x3 = _mm256_setzero_si256();
    unsigned k0 = (unsigned)key, k1 = (unsigned)(key >> 32);
    for (int r = 0; r < 10; r++) {
        __m256i lo0, lo1;
        __m256i hi0 = mulhi8(x0, m0, &lo0), hi1 = mulhi8(x2, m1, &lo1);
        x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32((int)k0));
        x1 = lo1;
        x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32((int)k1));
        x3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    __m256 f0 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(x0, 8)), vs), vo);
    __m256 f1 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(x1, 8)), vs), vo);
    __m256 f2 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(x2, 8)), vs), vo);
    __m256 f3 = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(x3, 8)), vs), vo);
    // Word w of block j goes to out[4j + w]: a 4 × 8 transpose.
    __m256 t0 = _mm256_unpacklo_ps(f0, f1), t1 = _mm256_unpackhi_ps(f0, f1);
    __m256 t2 = _mm256_unpacklo_ps(f2, f3), t3 = _mm256_unpackhi_ps(f2, f3);
    __m256 b04 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));  // blocks 0 | 4
    __m256 b15 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t0), _mm256_castps_pd(t2)));  // blocks 1 | 5
    __m256 b26 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));  // blocks 2 | 6
    __m256 b37 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(t1), _mm256_castps_pd(t3)));  // blocks 3 | 7
    u[0] = _mm256_permute2f128_ps(b04, b15, 0x20);
    u[1] = _mm256_permute2f128_ps(b26, b37, 0x20);
    u[2] = _mm256_permute2f128_ps(b04, b15, 0x31);
    u[3] = _mm256_permute2f128_ps(b26, b37, 0x31);
}

__attribute__((target("avx2")))
static void uniform256(float *out, long groups, unsigned long long start, unsigned long long key, float scale, float offset) {
    const __m256 vs = _mm256_set1_ps(scale), vo = _mm256_set1_ps(offset);
    for (long h = 0; h < 2 * groups; h++) {
        __m256 u[4];
        uniform32(u, start + (unsigned long long)h * 8, key, vs, vo);
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(out + h * 32 + 8 * k, u[k]);
    }
}

__attribute__((target("avx2")))
static void dropout256(const float *x, float *y, float *mask, long groups, unsigned long long start, unsigned long long key,
                       float p, float keep) {
    const __m256 vs = _mm256_set1_ps(0x1p-24f), vo = _mm256_setzero_ps(), vp = _mm256_set1_ps(p), vk = _mm256_set1_ps(keep);
    for (long h = 0; h < 2 * groups; h++) {
        __m256 u[4];
        uniform32(u, start + (unsigned long long)h * 8, key, vs, vo);
        for (int k = 0; k < 4; k++) {
            long i = h * 32 + 8 * k;
            __m256 m = _mm256_and_ps(_mm256_cmp_ps(u[k], vp, _CMP_GE_OQ), vk);
            _mm256_storeu_ps(mask + i, m);
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), m));
        }
    }
}

static int has_avx2_fma(void) {
    static int has = -1;
    if (has < 0) has = gan_cpu_has_avx2();
    return has;
}

static int has_avx512(void) {
    static int has = -1;
    if (has < 0) has = gan_cpu_has_avx512f();
    return has;
}

int gan_uniform_wide(float *out, long groups, unsigned long long start, unsigned long long key, float scale, float offset) {
    if (has_avx512()) uniform512(out, groups, start, key, scale, offset);
    else if (has_avx2_fma()) uniform256(out, groups, start, key, scale, offset);
    else return 0;
    return 1;
}

int gan_dropout_wide(const float *x, float *y, float *mask, long groups, unsigned long long start, unsigned long long key,
                     float p, float keep) {
    if (has_avx512()) dropout512(x, y, mask, groups, start, key, p, keep);
    else if (has_avx2_fma()) dropout256(x, y, mask, groups, start, key, p, keep);
    else return 0;
    return 1;
}

int gan_adam_wide(float *p, const float *g, float *m, float *v, long n, float b1, float b2, float eps, float wd,
                  float s, float c, int *finite) {
    if (has_avx512()) *finite = adam512(p, g, m, v, n, b1, b2, eps, wd, s, c);
    else if (has_avx2_fma()) *finite = adam256(p, g, m, v, n, b1, b2, eps, wd, s, c);
    else return 0;
    return 1;
}
#else
int gan_uniform_wide(float *out, long groups, unsigned long long start, unsigned long long key, float scale, float offset) {
    (void)out; (void)groups; (void)start; (void)key; (void)scale; (void)offset;
    return 0;
}
int gan_dropout_wide(const float *x, float *y, float *mask, long groups, unsigned long long start, unsigned long long key,
                     float p, float keep) {
    (void)x; (void)y; (void)mask; (void)groups; (void)start; (void)key; (void)p; (void)keep;
    return 0;
}
int gan_adam_wide(float *p, const float *g, float *m, float *v, long n, float b1, float b2, float eps, float wd,
                  float s, float c, int *finite) {
    (void)p; (void)g; (void)m; (void)v; (void)n; (void)b1; (void)b2; (void)eps; (void)wd; (void)s; (void)c; (void)finite;
    return 0;
}
#endif
