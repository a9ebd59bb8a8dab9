// The engine's implicit-GEMM convolution against another version of itself (an older commit's
// implicit_gemm.c), call by call on the same buffers in one process: the median of the per-pair
// speed ratios (new / old) and the largest output difference. The A/B figures of
// docs/performance-log.md, session 21. Not part of the build. Run (N C H O K S OH PAD PAIRS KIND,
// KIND 0 forward, 1 input gradient, 2 weight gradient):
//   git show HEAD~1:Sources/DNNLConvolution/implicit_gemm.c > /tmp/old_igemm.c
//   I="-I Sources/DNNLConvolution/include -I Sources/DNNLConvolution -I Sources/CSupport/include"
//   clang -O2 $I -Dgan_implicit_gemm_convolution=old_conv -Dgan_implicit_gemm_fits=old_fits \
//     -Dgan_implicit_gemm_enabled=old_enabled -Dgan_implicit_gemm_set_enabled=old_set \
//     -Dgan_implicit_gemm_calls=old_calls -c /tmp/old_igemm.c -o /tmp/old_igemm.o &&
//   clang -O2 $I scripts/implicit_gemm_ab.c /tmp/old_igemm.o Sources/DNNLConvolution/implicit_gemm.c \
//     Sources/DNNLConvolution/grown_buffer.c -o /tmp/igemm_ab -lgomp &&
//   OMP_NUM_THREADS=2 /tmp/igemm_ab 64 128 28 128 5 2 14 2 25 2
#include "implicit_gemm.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <xmmintrin.h>

// The kernels need only these from the engine's CSupport.
int gan_cpu_has_avx2(void) { return 1; }
// IGEMM_AVX512=1: both versions' AVX-512 tiles (on a CPU that has AVX-512), else the AVX2 ones.
int gan_cpu_has_avx512f(void) { return getenv("IGEMM_AVX512") && __builtin_cpu_supports("avx512f"); }
int old_conv(gan_dnnl_kind, const gan_dnnl_shape *, const float *, const float *, float *, int);
void old_set(int);

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

static float *filled(long n) {
    float *p = malloc(sizeof(float) * (size_t)n);
    for (long i = 0; i < n; i++) p[i] = (rand() % 1000) / 1000.f - 0.5f;
    return p;
}

int main(int argc, char **argv) {
    if (argc < 11) { fprintf(stderr, "usage: N C H O K S OH PAD PAIRS KIND\n"); return 2; }
    _mm_setcsr(_mm_getcsr() | 0x8040);
    int n = atoi(argv[1]), c = atoi(argv[2]), h = atoi(argv[3]), o = atoi(argv[4]), k = atoi(argv[5]), st = atoi(argv[6]);
    int oh = atoi(argv[7]), pad = atoi(argv[8]), pairs = atoi(argv[9]), kind = atoi(argv[10]);
    if (pairs < 1 || pairs > 200) { fprintf(stderr, "PAIRS: 1 to 200\n"); return 2; }
    gan_implicit_gemm_set_enabled(2);  // on AVX-512 CPUs too, where the default leaves them to oneDNN
    old_set(2);
    int pb = (oh - 1) * st + k - h - pad;  // what the far side pads so that the sizes agree
    gan_dnnl_shape s = {.n = n, .c = c, .h = h, .w = h, .o = o, .oh = oh, .ow = oh, .kh = k, .kw = k, .sh = st, .sw = st,
                        .pt = pad, .pl = pad, .pb = pb, .pr = pb, .dh = 1, .dw = 1, .cl = 1};
    long xn = (long)n * h * h * c, yn = (long)n * oh * oh * o, wn = (long)o * c * k * k;
    float *x = filled(xn), *dy = filled(yn), *w = filled(wn);
    long outn = kind == 0 ? yn : kind == 1 ? xn : wn;
    float *out_old = malloc(sizeof(float) * (size_t)outn), *out_new = malloc(sizeof(float) * (size_t)outn);
    const float *a = kind == 1 ? dy : x, *b = kind == 2 ? dy : w;
    double ratio[200], t_new[200], t_old[200];
    for (int q = 0; q <= pairs; q++) {  // pair 0 warms up
        double t0 = now();
        int e1 = old_conv(kind, &s, a, b, out_old, 2);
        double t1 = now();
        int e2 = gan_implicit_gemm_convolution(kind, &s, a, b, out_new, 2);
        double t2 = now();
        if (e1 || e2) { printf("refused: old %d, new %d\n", e1, e2); return 1; }
        if (q) { t_old[q - 1] = t1 - t0; t_new[q - 1] = t2 - t1; ratio[q - 1] = (t1 - t0) / (t2 - t1); }
    }
    double diff = 0;
    for (long i = 0; i < outn; i++) { double d = out_old[i] - out_new[i]; if (d < 0) d = -d; if (d > diff) diff = d; }
    qsort(ratio, pairs, sizeof(double), cmp); qsort(t_new, pairs, sizeof(double), cmp); qsort(t_old, pairs, sizeof(double), cmp);
    printf("kind %d: old %.2f ms new %.2f ms, new/old speed median %.3f (quartiles %.3f–%.3f), max diff %.2g\n", kind,
           t_old[pairs / 2] * 1e3, t_new[pairs / 2] * 1e3, ratio[pairs / 2], ratio[pairs / 4], ratio[3 * pairs / 4], diff);
    return 0;
}
