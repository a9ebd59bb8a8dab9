// The engine's implicit-GEMM convolution (Sources/DNNLConvolution/implicit_gemm.c) against
// oneDNN's primitives on the same channels-last buffers, in one process: forward, input gradient
// and weight gradient, each pass alternating the two call by call (the host's speed drifts within
// seconds), median times and the median of the per-pair speed ratios; the largest difference
// between their outputs as a check. oneDNN's times include the weight's reorder to its blocked
// layout and back (for the weight gradient), as the engine's calls pay it; the kernels' include
// their packing of the weight. The figures of docs/performance-log.md, session 20. Not part of
// the build; AVX2 + FMA and Debian's libdnnl-dev (oneDNN 2.x). Run (N C H O K S OH PAD PAIRS):
//   clang -O2 -I Sources/DNNLConvolution/include -I Sources/DNNLConvolution -I Sources/CSupport/include
//     scripts/implicit_gemm_bench.c -o /tmp/igemm_bench -ldnnl -lgomp &&
//   OMP_NUM_THREADS=2 /tmp/igemm_bench 64 64 28 128 5 2 14 2 15
// (session 32, on the AVX-512 host: `IGEMM_AVX512=1 OMP_NUM_THREADS=2 /tmp/igemm_bench …` for the
// AVX-512 tiles; the figures in docs/performance-log.md, sessions 32–33). Both sides run on
// OMP_NUM_THREADS threads (2 if unset); IGEMM_PASS=0, 1 or 2 runs that pass alone.
#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <xmmintrin.h>

// The kernels need only these from the engine's CSupport. IGEMM_AVX512=1 runs their AVX-512
// tiles (on a CPU that has AVX-512), else the AVX2 ones.
int gan_cpu_has_avx2(void) { return 1; }
int gan_cpu_has_avx512f(void) { return getenv("IGEMM_AVX512") && __builtin_cpu_supports("avx512f"); }
#include "../Sources/DNNLConvolution/grown_buffer.c"
#include "../Sources/DNNLConvolution/implicit_gemm.c"

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static dnnl_engine_t eng;
static dnnl_stream_t st;

static void fill(float *p, long n, unsigned seed) {
    srand(seed);
    for (long i = 0; i < n; i++) p[i] = (rand() % 1000) / 1000.f - 0.5f;
}

// A user memory over `data` with the primitive's descriptor for `q`.
static dnnl_memory_t wrap(dnnl_primitive_desc_t pd, dnnl_query_t q, void *data) {
    dnnl_memory_t m;
    dnnl_memory_create(&m, dnnl_primitive_desc_query_md(pd, q, 0), eng, data);
    return m;
}

// The weight's role: the primitive's (blocked) memory, and the reorder between it and plain OIHW
// `data` (to it for the forward and input gradient, from it for the weight gradient).
typedef struct { dnnl_memory_t blocked; dnnl_primitive_t reorder; dnnl_exec_arg_t args[2]; } weight_role;

static void weight_role_init(weight_role *r, dnnl_primitive_desc_t pd, dnnl_query_t q, const dnnl_memory_desc_t *plain_md,
                             void *data, int to_plain) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, q, 0);
    dnnl_memory_create(&r->blocked, md, eng, DNNL_MEMORY_ALLOCATE);
    dnnl_memory_t plain;
    dnnl_memory_create(&plain, plain_md, eng, data);
    dnnl_primitive_desc_t rpd;
    dnnl_reorder_primitive_desc_create(&rpd, to_plain ? md : plain_md, eng, to_plain ? plain_md : md, eng, NULL);
    dnnl_primitive_create(&r->reorder, rpd);
    r->args[0] = (dnnl_exec_arg_t){DNNL_ARG_FROM, to_plain ? r->blocked : plain};
    r->args[1] = (dnnl_exec_arg_t){DNNL_ARG_TO, to_plain ? plain : r->blocked};
}

int main(int argc, char **argv) {
    if (argc < 10) { fprintf(stderr, "usage: N C H O K S OH PAD PAIRS\n"); return 2; }
    _mm_setcsr(_mm_getcsr() | 0x8040);
    int N = atoi(argv[1]), C = atoi(argv[2]), H = atoi(argv[3]), O = atoi(argv[4]), K = atoi(argv[5]), S = atoi(argv[6]);
    int OH = atoi(argv[7]), PAD = atoi(argv[8]), pairs = atoi(argv[9]);
    if (pairs > 64) pairs = 64;
    int threads = getenv("OMP_NUM_THREADS") ? atoi(getenv("OMP_NUM_THREADS")) : 2;
    int PR = (OH - 1) * S + K - H - PAD;  // oneDNN's exact padding after
    gan_dnnl_shape s = {N, C, H, H, O, OH, OH, K, K, S, S, PAD, PAD, PR, PR, 1, 1, 1};
    gan_implicit_gemm_set_enabled(2);
    if (!gan_implicit_gemm_fits(GAN_DNNL_FORWARD, &s)) { fprintf(stderr, "the kernels do not take this shape\n"); return 1; }
    dnnl_engine_create(&eng, dnnl_cpu, 0);
    dnnl_stream_create(&st, eng, dnnl_stream_default_flags);
    long xs = (long)N * H * H * C, ws = (long)O * C * K * K, ys = (long)N * OH * OH * O;
    float *x = malloc(xs * 4), *w = malloc(ws * 4), *dy = malloc(ys * 4);
    float *out[2][3] = {{malloc(ys * 4), malloc(xs * 4), malloc(ws * 4)}, {malloc(ys * 4), malloc(xs * 4), malloc(ws * 4)}};
    fill(x, xs, 1); fill(w, ws, 2); fill(dy, ys, 3);

    dnnl_dims_t xd = {N, C, H, H}, wd = {O, C, K, K}, yd = {N, O, OH, OH}, sd = {S, S}, dd = {0, 0}, pl = {PAD, PAD}, pr = {PR, PR};
    dnnl_memory_desc_t xm, wm, ym, wplain;
    dnnl_memory_desc_init_by_tag(&xm, 4, xd, dnnl_f32, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&wm, 4, wd, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wplain, 4, wd, dnnl_f32, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&ym, 4, yd, dnnl_f32, dnnl_nhwc);
    dnnl_convolution_desc_t fd, bd, gd;
    dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &xm, &wm, NULL, &ym, sd, dd, pl, pr);
    dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &xm, &wm, &ym, sd, dd, pl, pr);
    dnnl_dilated_convolution_backward_weights_desc_init(&gd, dnnl_convolution_direct, &xm, &wm, NULL, &ym, sd, dd, pl, pr);
    dnnl_primitive_desc_t pd[3];
    if (dnnl_primitive_desc_create(&pd[0], &fd, NULL, eng, NULL) || dnnl_primitive_desc_create(&pd[1], &bd, NULL, eng, pd[0]) ||
        dnnl_primitive_desc_create(&pd[2], &gd, NULL, eng, pd[0])) { fprintf(stderr, "oneDNN refuses the shape\n"); return 1; }
    weight_role wr[3];
    weight_role_init(&wr[0], pd[0], dnnl_query_weights_md, &wplain, w, 0);
    weight_role_init(&wr[1], pd[1], dnnl_query_weights_md, &wplain, w, 0);
    weight_role_init(&wr[2], pd[2], dnnl_query_diff_weights_md, &wplain, out[1][2], 1);
    dnnl_primitive_t prim[3];
    dnnl_exec_arg_t args[3][3] = {
        {{DNNL_ARG_SRC, wrap(pd[0], dnnl_query_src_md, x)}, {DNNL_ARG_WEIGHTS, wr[0].blocked},
         {DNNL_ARG_DST, wrap(pd[0], dnnl_query_dst_md, out[1][0])}},
        {{DNNL_ARG_DIFF_DST, wrap(pd[1], dnnl_query_diff_dst_md, dy)}, {DNNL_ARG_WEIGHTS, wr[1].blocked},
         {DNNL_ARG_DIFF_SRC, wrap(pd[1], dnnl_query_diff_src_md, out[1][1])}},
        {{DNNL_ARG_SRC, wrap(pd[2], dnnl_query_src_md, x)}, {DNNL_ARG_DIFF_DST, wrap(pd[2], dnnl_query_diff_dst_md, dy)},
         {DNNL_ARG_DIFF_WEIGHTS, wr[2].blocked}}};
    const char *impl[3];
    for (int k = 0; k < 3; k++) {
        dnnl_primitive_create(&prim[k], pd[k]);
        dnnl_primitive_desc_query(pd[k], dnnl_query_impl_info_str, 0, &impl[k]);
    }
    const float *a[3] = {x, dy, x}, *b[3] = {w, w, dy};
    long sizes[3] = {ys, xs, ws};
    const char *names[3] = {"forward", "input gradient", "weight gradient"};
    double gflop = 2.0 * N * OH * OH * O * C * K * K * 1e-9;
    printf("N%d C%d H%d O%d K%d S%d OH%d pad %d/%d: %.2f GFLOP a pass, %d pairs\n", N, C, H, O, K, S, OH, PAD, PR, gflop, pairs);
    for (int k = 0; k < 3; k++) {
        if (getenv("IGEMM_PASS") && atoi(getenv("IGEMM_PASS")) != k) continue;
        double t[2][64], ratio[64];
        for (int r = -2; r < pairs; r++) {  // two pairs of warm-up
            double t0 = now();
            gan_implicit_gemm_convolution((gan_dnnl_kind)k, &s, a[k], b[k], out[0][k], threads);
            double t1 = now();
            if (k < 2) dnnl_primitive_execute(wr[k].reorder, st, 2, wr[k].args);
            dnnl_primitive_execute(prim[k], st, 3, args[k]);
            if (k == 2) dnnl_primitive_execute(wr[k].reorder, st, 2, wr[k].args);
            dnnl_stream_wait(st);
            double t2 = now();
            if (r >= 0) { t[0][r] = t1 - t0; t[1][r] = t2 - t1; ratio[r] = (t2 - t1) / (t1 - t0); }
        }
        double diff = 0, scale = 0;
        for (long i = 0; i < sizes[k]; i++) {
            diff = fmax(diff, fabs(out[0][k][i] - out[1][k][i]));
            scale = fmax(scale, fabs(out[1][k][i]));
        }
        qsort(t[0], pairs, 8, cmp); qsort(t[1], pairs, 8, cmp); qsort(ratio, pairs, 8, cmp);
        printf("  %-15s implicit GEMM %7.2f ms (%5.1f GFLOP/s)  oneDNN %-12s %7.2f ms (%5.1f)  speed ratio %.3f (quartiles %.3f–%.3f)  max |diff| %.1e of %.1e\n",
               names[k], t[0][pairs / 2] * 1e3, gflop / t[0][pairs / 2], impl[k], t[1][pairs / 2] * 1e3, gflop / t[1][pairs / 2],
               ratio[pairs / 2], ratio[pairs / 4], ratio[3 * pairs / 4], diff, scale);
    }
    return 0;
}
