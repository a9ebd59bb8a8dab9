// The Winograd forward, input gradient or weight gradient (Sources/DNNLConvolution/winograd.c) of a 5×5,
// stride-2 channels-last convolution (padded 2 before and 1 after; PAD=1: 1 and 2, Keras's "same")
// against the same pass on oneDNN (BASE=0) or on the
// implicit-GEMM kernels (BASE=2, the default), through the engine's entry point
// gan_dnnl_convolution on the same buffers, call by call in one process (the host's speed drifts
// within seconds): median times, the median of the per-pair speed ratios, and the largest
// difference between the two outputs beside the largest output. The same weights every pair (the
// forward's and input gradient's transformed kernel is then reused); CHANGE=1 changes one weight
// before each pair, so that it is made again. The figures of docs/performance-log.md, sessions 36 and 37
// (GAN_WINOGRAD_TILE=2|4 forces a tile side). Not part of the build; an AVX-512 CPU and Debian's
// libdnnl-dev. Run (N C H O PAIRS KIND, KIND 0 forward, 1 input gradient, 2 weight gradient):
//   D=Sources/DNNLConvolution; I="-I $D/include -I $D -I Sources/CSupport/include"
//   clang -O2 $I scripts/winograd_bench.c $D/*.c Sources/CSupport/*.c -o /tmp/winograd_bench -ldnnl -lgomp -lm &&
//   OMP_NUM_THREADS=2 /tmp/winograd_bench 64 64 28 128 20 0 && BASE=0 OMP_NUM_THREADS=2 /tmp/winograd_bench 64 64 28 128 20 1
#include "implicit_gemm.h"
#include "winograd.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <xmmintrin.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

static float *filled(long n) {
    float *p = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) p[i] = (rand() % 1000) / 1000.f - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    if (argc < 7) { fprintf(stderr, "usage: N C H O PAIRS KIND\n"); return 2; }
    _mm_setcsr(_mm_getcsr() | 0x8040);
    int n = atoi(argv[1]), c = atoi(argv[2]), h = atoi(argv[3]), o = atoi(argv[4]), pairs = atoi(argv[5]);
    gan_dnnl_kind kind = atoi(argv[6]) == 2 ? GAN_DNNL_BACKWARD_WEIGHTS : atoi(argv[6]) == 1 ? GAN_DNNL_BACKWARD_DATA : GAN_DNNL_FORWARD;
    int base = getenv("BASE") ? atoi(getenv("BASE")) : 2;
    int change = getenv("CHANGE") ? atoi(getenv("CHANGE")) : 0;
    const char *env = getenv("OMP_NUM_THREADS");
    int threads = env ? atoi(env) : 2;
    if (pairs < 1 || pairs > 200) { fprintf(stderr, "PAIRS: 1 to 200\n"); return 2; }
    gan_implicit_gemm_set_enabled(base);
    int s = h / 2;
    int pad = getenv("PAD") ? atoi(getenv("PAD")) : 2;  // PAD=1: Keras's "same" (1 before, 2 after)
    gan_dnnl_shape sh = {.n = n, .c = c, .h = h, .w = h, .o = o, .oh = s, .ow = s, .kh = 5, .kw = 5, .sh = 2, .sw = 2,
                         .pt = pad, .pl = pad, .pb = 3 - pad, .pr = 3 - pad, .dh = 1, .dw = 1, .cl = 1};
    gan_winograd_set_enabled(2);
    if (!gan_winograd_fits(kind, &sh)) { fprintf(stderr, "the Winograd path does not take this shape\n"); return 2; }
    long xn = (long)n * h * h * c, yn = (long)n * s * s * o, wn = (long)o * c * 25;
    // a: x (dy for the input gradient); b: the weight (dy for the weight gradient)
    float *x = filled(kind == GAN_DNNL_BACKWARD_DATA ? yn : xn), *w = filled(kind == GAN_DNNL_BACKWARD_WEIGHTS ? yn : wn);
    long outn = kind == GAN_DNNL_FORWARD ? yn : kind == GAN_DNNL_BACKWARD_DATA ? xn : wn;
    float *y_gemm = malloc(sizeof(float) * (size_t)outn), *y_wino = malloc(sizeof(float) * (size_t)outn);
    double ratio[200], t_wino[200], t_gemm[200];
    for (int q = 0; q <= pairs; q++) {  // pair 0 warms up
        gan_winograd_set_enabled(0);
        if (change && kind != GAN_DNNL_BACKWARD_WEIGHTS) w[q % wn] += 1e-3f;  // CHANGE=1: new weights every pair
        double t0 = now();
        int e1 = gan_dnnl_convolution(kind, &sh, x, w, y_gemm, threads);
        double t1 = now();
        gan_winograd_set_enabled(2);
        long before = gan_winograd_calls();
        int e2 = gan_dnnl_convolution(kind, &sh, x, w, y_wino, threads);
        double t2 = now();
        if (e1 || e2 || gan_winograd_calls() != before + 1) { printf("refused: base %d, Winograd %d\n", e1, e2); return 1; }
        if (q) { t_gemm[q - 1] = t1 - t0; t_wino[q - 1] = t2 - t1; ratio[q - 1] = (t1 - t0) / (t2 - t1); }
    }
    double diff = 0, largest = 0;
    for (long i = 0; i < outn; i++) {
        double d = y_gemm[i] - y_wino[i], m = y_gemm[i];
        if (d < 0) d = -d;
        if (m < 0) m = -m;
        if (d > diff) diff = d;
        if (m > largest) largest = m;
    }
    qsort(ratio, pairs, sizeof(double), cmp); qsort(t_wino, pairs, sizeof(double), cmp); qsort(t_gemm, pairs, sizeof(double), cmp);
    double flops = 2.0 * n * s * s * o * c * 25;
    printf("%s %d→%d, %d×%d → %d×%d: %s %.2f ms (%.0f GFLOP/s), Winograd %.2f ms (%.0f GFLOP/s of the direct "
           "convolution's work); Winograd / base speed median %.3f (quartiles %.3f–%.3f); max diff %.2g, max |y| %.2g\n",
           kind == GAN_DNNL_FORWARD ? "forward" : kind == GAN_DNNL_BACKWARD_DATA ? "input gradient" : "weight gradient", c, o, h, h, s, s, base ? "implicit GEMM" : "oneDNN", t_gemm[pairs / 2] * 1e3, flops / t_gemm[pairs / 2] * 1e-9, t_wino[pairs / 2] * 1e3,
           flops / t_wino[pairs / 2] * 1e-9, ratio[pairs / 2], ratio[pairs / 4], ratio[3 * pairs / 4], diff, largest);
    return 0;
}
