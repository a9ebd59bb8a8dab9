// The implicit-GEMM kernels' 6-row x 64-column AVX-512 tile (tile512x4 in
// Sources/DNNLConvolution/implicit_gemm.c: six row pointers, four weight loads and six broadcasts
// a k) against a 12-row x 32-column tile whose rows are consecutive pixels (one pointer at a
// constant displacement per row; two weight loads and twelve broadcasts a k, so half the weight
// traffic), on one thread, summing 9 taps x 128 channels into 64 columns as the 64 -> 128 layer's
// input gradient does in its largest phase. WEIGHTS_IN_L1=1 points every tap at the same 32 KB
// slice. The figures of docs/performance-log.md, session 35. Not part of the build. Run beside
// scripts/fma_peak.c (the one-thread FMA peak of the same minute):
//   clang -O2 scripts/tile_shapes.c -o /tmp/tile_shapes && /tmp/tile_shapes
//   clang -O2 -DWEIGHTS_IN_L1=1 scripts/tile_shapes.c -o /tmp/tile_shapes_l1 && /tmp/tile_shapes_l1
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define K 128
#define TAPS 9
#define W 14
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}

__attribute__((target("avx512f"),noinline))
static void tile6(const float *src, const long *origin, const long *off, const float *w, float *out, long ldo) {
    __m512 c[6][4];
    for (int r = 0; r < 6; r++) for (int q = 0; q < 4; q++) c[r][q] = _mm512_setzero_ps();
    for (int t = 0; t < TAPS; t++) {
        const float *a[6];
        for (int r = 0; r < 6; r++) a[r] = src + origin[r] + off[t];
#if WEIGHTS_IN_L1
        const float *b = w;
#else
        const float *b = w + (long)t * K * 64;
#endif
        for (long k = 0; k < K; k++) {
            __m512 b0 = _mm512_load_ps(b + k * 64), b1 = _mm512_load_ps(b + k * 64 + 16);
            __m512 b2 = _mm512_load_ps(b + k * 64 + 32), b3 = _mm512_load_ps(b + k * 64 + 48);
#pragma clang loop unroll(full)
            for (int r = 0; r < 6; r++) {
                __m512 v = _mm512_set1_ps(a[r][k]);
                c[r][0] = _mm512_fmadd_ps(v, b0, c[r][0]); c[r][1] = _mm512_fmadd_ps(v, b1, c[r][1]);
                c[r][2] = _mm512_fmadd_ps(v, b2, c[r][2]); c[r][3] = _mm512_fmadd_ps(v, b3, c[r][3]);
            }
        }
    }
    for (int r = 0; r < 6; r++) for (int q = 0; q < 4; q++) _mm512_storeu_ps(out + r * ldo + q * 16, c[r][q]);
}

// rows r = 0..11 at src0 + r*K (consecutive pixels); columns c0..c0+32 of the 64.
__attribute__((target("avx512f"),noinline))
static void tile12(const float *src0, const long *off, const float *w, int half, float *out, long ldo) {
    __m512 c[12][2];
    for (int r = 0; r < 12; r++) { c[r][0] = _mm512_setzero_ps(); c[r][1] = _mm512_setzero_ps(); }
    for (int t = 0; t < TAPS; t++) {
        const float *a = src0 + off[t];
#if WEIGHTS_IN_L1
        const float *b = w + half * 32;
#else
        const float *b = w + (long)t * K * 64 + half * 32;
#endif
        for (long k = 0; k < K; k++) {
            __m512 b0 = _mm512_load_ps(b + k * 64), b1 = _mm512_load_ps(b + k * 64 + 16);
#pragma clang loop unroll(full)
            for (int r = 0; r < 12; r++) {
                __m512 v = _mm512_set1_ps(a[r * K + k]);
                c[r][0] = _mm512_fmadd_ps(v, b0, c[r][0]); c[r][1] = _mm512_fmadd_ps(v, b1, c[r][1]);
            }
        }
    }
    for (int r = 0; r < 12; r++) { _mm512_storeu_ps(out + r * ldo + half * 32, c[r][0]); _mm512_storeu_ps(out + r * ldo + half * 32 + 16, c[r][1]); }
}

int main(void) {
    int images = 64;
    long pix = (long)images * W * W;
    float *src = aligned_alloc(64, sizeof(float) * (pix + 4 * W * W) * K);
    float *w = aligned_alloc(64, sizeof(float) * TAPS * K * 64);
    float *out = aligned_alloc(64, sizeof(float) * pix * 2 * 64 + 4096);
    for (long i = 0; i < (pix + 4 * W * W) * K; i++) src[i] = (float)(i % 97) * 0.01f;
    for (long i = 0; i < TAPS * K * 64; i++) w[i] = (float)(i % 89) * 0.01f;
    long off[TAPS];
    for (int t = 0; t < TAPS; t++) off[t] = (long)((t / 3) * W + (t % 3)) * K;  // taps below/right of the row's origin
    // In each image row, the points b = 0..11 (twelve consecutive, the phase's interior).
    for (int rep = 0; rep < 7; rep++) {
        double t0 = now();
        for (int img = 0; img < images; img++)
            for (int a = 0; a < W; a++) {
                long o = ((long)img * W * W + a * W) * K;
                long org[12];
                for (int r = 0; r < 12; r++) org[r] = o + r * K;
                float *dst = out + ((long)img * W * W + a * W) * 2 * 64;
                tile6(src, org, off, w, dst, 128);
                tile6(src, org + 6, off, w, dst + 6 * 128, 128);
            }
        double t1 = now();
        for (int img = 0; img < images; img++)
            for (int a = 0; a < W; a++) {
                long o = ((long)img * W * W + a * W) * K;
                float *dst = out + ((long)img * W * W + a * W) * 2 * 64;
                tile12(src + o, off, w, 0, dst, 128);
                tile12(src + o, off, w, 1, dst, 128);
            }
        double t2 = now();
        double flops = 2.0 * images * W * 12 * 64 * K * TAPS;
        printf("6x64: %.1f GFLOP/s   12x32: %.1f GFLOP/s   ratio %.3f\n", flops / (t1 - t0) / 1e9, flops / (t2 - t1) / 1e9, (t1 - t0) / (t2 - t1));
    }
    return 0;
}
