// The Winograd forward (Sources/DNNLConvolution/winograd.c) against the implicit-GEMM forward
// (implicit_gemm.c) of a 5×5, stride-2, pad-2 channels-last convolution on the same buffers,
// call by call in one process (the host's speed drifts within seconds): median times, the median
// of the per-pair speed ratios, and the largest difference between the two outputs beside the
// largest output. The figures of docs/performance.md, session 36. Not part of the build; an
// AVX-512 CPU. Run (N C H O PAIRS):
//   I="-I Sources/DNNLConvolution/include -I Sources/DNNLConvolution -I Sources/CSupport/include"
//   clang -O2 $I scripts/winograd_bench.c Sources/DNNLConvolution/winograd.c Sources/DNNLConvolution/implicit_gemm.c \
//     Sources/DNNLConvolution/grown_buffer.c -o /tmp/winograd_bench -lgomp &&
//   OMP_NUM_THREADS=2 /tmp/winograd_bench 64 64 28 128 20 && OMP_NUM_THREADS=2 /tmp/winograd_bench 64 128 14 256 20
#include "implicit_gemm.h"
#include "winograd.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <xmmintrin.h>

// The kernels need only these from the engine's CSupport.
int gan_cpu_has_avx2(void) { return 1; }
int gan_cpu_has_avx512f(void) { return __builtin_cpu_supports("avx512f"); }

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

static float *filled(long n) {
    float *p = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) p[i] = (rand() % 1000) / 1000.f - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    if (argc < 6) { fprintf(stderr, "usage: N C H O PAIRS\n"); return 2; }
    _mm_setcsr(_mm_getcsr() | 0x8040);
    int n = atoi(argv[1]), c = atoi(argv[2]), h = atoi(argv[3]), o = atoi(argv[4]), pairs = atoi(argv[5]);
    const char *env = getenv("OMP_NUM_THREADS");
    int threads = env ? atoi(env) : 2;
    if (pairs < 1 || pairs > 200) { fprintf(stderr, "PAIRS: 1 to 200\n"); return 2; }
    gan_implicit_gemm_set_enabled(2);
    gan_winograd_set_enabled(2);
    int s = h / 2;
    gan_dnnl_shape sh = {.n = n, .c = c, .h = h, .w = h, .o = o, .oh = s, .ow = s, .kh = 5, .kw = 5, .sh = 2, .sw = 2,
                         .pt = 2, .pl = 2, .pb = 1, .pr = 1, .dh = 1, .dw = 1, .cl = 1};
    if (!gan_winograd_fits(GAN_DNNL_FORWARD, &sh)) { fprintf(stderr, "the Winograd forward does not take this shape\n"); return 2; }
    long xn = (long)n * h * h * c, yn = (long)n * s * s * o, wn = (long)o * c * 25;
    float *x = filled(xn), *w = filled(wn);
    float *y_gemm = malloc(sizeof(float) * (size_t)yn), *y_wino = malloc(sizeof(float) * (size_t)yn);
    double ratio[200], t_wino[200], t_gemm[200];
    for (int q = 0; q <= pairs; q++) {  // pair 0 warms up
        double t0 = now();
        int e1 = gan_implicit_gemm_convolution(GAN_DNNL_FORWARD, &sh, x, w, y_gemm, threads);
        double t1 = now();
        int e2 = gan_winograd_convolution(GAN_DNNL_FORWARD, &sh, x, w, y_wino, threads);
        double t2 = now();
        if (e1 || e2) { printf("refused: implicit GEMM %d, Winograd %d\n", e1, e2); return 1; }
        if (q) { t_gemm[q - 1] = t1 - t0; t_wino[q - 1] = t2 - t1; ratio[q - 1] = (t1 - t0) / (t2 - t1); }
    }
    double diff = 0, largest = 0;
    for (long i = 0; i < yn; i++) {
        double d = y_gemm[i] - y_wino[i], m = y_gemm[i];
        if (d < 0) d = -d;
        if (m < 0) m = -m;
        if (d > diff) diff = d;
        if (m > largest) largest = m;
    }
    qsort(ratio, pairs, sizeof(double), cmp); qsort(t_wino, pairs, sizeof(double), cmp); qsort(t_gemm, pairs, sizeof(double), cmp);
    double flops = 2.0 * n * s * s * o * c * 25;
    printf("%d→%d, %d×%d → %d×%d: implicit GEMM %.2f ms (%.0f GFLOP/s), Winograd %.2f ms (%.0f GFLOP/s of the direct "
           "convolution's work); Winograd / implicit GEMM speed median %.3f (quartiles %.3f–%.3f); max diff %.2g, max |y| %.2g\n",
           c, o, h, h, s, s, t_gemm[pairs / 2] * 1e3, flops / t_gemm[pairs / 2] * 1e-9, t_wino[pairs / 2] * 1e3,
           flops / t_wino[pairs / 2] * 1e-9, ratio[pairs / 2], ratio[pairs / 4], ratio[3 * pairs / 4], diff, largest);
    return 0;
}
