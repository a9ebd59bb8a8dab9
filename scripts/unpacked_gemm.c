// An attempt dropped in session 28: matrix products of the mlp's shapes on AVX2 + FMA register
// tiles that read the operands where they lie, with no packing, against oneDNN's matmul (the
// engine's backend for these shapes, gemm:jit on AVX2) and OpenBLAS, one thread each, on the
// same 64-byte-aligned buffers. The idea: OpenBLAS and oneDNN copy both operands into their own
// layouts on every call, and a 64-row product might not repay that copy. It does: over two runs the tiles
// reached 46-76 GFLOP/s where oneDNN reached 57-91, slower on every shape (docs/performance-log.md,
// session 28). Not part of the build.
//   clang -O2 -mavx2 -mfma scripts/unpacked_gemm.c -o /tmp/unpacked_gemm -ldnnl -lopenblas -lm &&
//   OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 /tmp/unpacked_gemm
// Each line: M N K, the form (NT: C = A·Bᵀ, a layer's forward; NN: C = A·B, its input gradient;
// TN: C = Aᵀ·B, its weight gradient), the median of 201 calls of each, and the tiles' largest
// difference from a double-precision product.
//
// The tiles: for NT a 3 × 4 block of C as twelve 8-lane dot products along k (the three rows of A
// in registers, B's four rows streamed); for NN and TN a 6 × 16 block of C, six broadcast
// elements of A times two 8-wide vectors of B's row at each k. Sixteen ymm registers each: a tile
// one register larger spilled an accumulator and ran at 30-44 GFLOP/s.
#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TILE static inline __attribute__((always_inline))

TILE __m256i lanes_below(long count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// C[r][q] = Σ_p A[r][p]·B[q][p], r < rows ≤ 3, q < cols ≤ 4; k's last k % 8 under a mask.
TILE void dot_tile(int rows, int cols, long k, const float *a, long lda, const float *b, long ldb, float *c, long ldc,
                   __m256i tail) {
    __m256 acc[3][4];
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 4; q++) acc[r][q] = _mm256_setzero_ps();
    long p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 av[3];
        for (int r = 0; r < rows; r++) av[r] = _mm256_loadu_ps(a + r * lda + p);
        for (int q = 0; q < cols; q++) {
            __m256 bv = _mm256_loadu_ps(b + q * ldb + p);
            for (int r = 0; r < rows; r++) acc[r][q] = _mm256_fmadd_ps(av[r], bv, acc[r][q]);
        }
    }
    if (p < k) {
        __m256 av[3];
        for (int r = 0; r < rows; r++) av[r] = _mm256_maskload_ps(a + r * lda + p, tail);
        for (int q = 0; q < cols; q++) {
            __m256 bv = _mm256_maskload_ps(b + q * ldb + p, tail);
            for (int r = 0; r < rows; r++) acc[r][q] = _mm256_fmadd_ps(av[r], bv, acc[r][q]);
        }
    }
    for (int r = 0; r < rows; r++) {
        __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(acc[r][0], acc[r][1]), _mm256_hadd_ps(acc[r][2], acc[r][3]));
        float out[4];
        _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
        for (int q = 0; q < cols; q++) c[r * ldc + q] = out[q];
    }
}

static void dot_tile_full(long k, const float *a, long lda, const float *b, long ldb, float *c, long ldc, __m256i tail) {
    dot_tile(3, 4, k, a, lda, b, ldb, c, ldc, tail);
}
// The edge tiles with their sizes as constants too: with sizes known only at run time the compiler
// keeps the accumulators in memory.
static void dot_tile_edge(int rows, int cols, long k, const float *a, long lda, const float *b, long ldb, float *c,
                          long ldc, __m256i tail) {
#define DOT(R, C) case R * 8 + C: dot_tile(R, C, k, a, lda, b, ldb, c, ldc, tail); break;
    switch (rows * 8 + cols) {
        DOT(1, 1) DOT(1, 2) DOT(1, 3) DOT(1, 4) DOT(2, 1) DOT(2, 2) DOT(2, 3) DOT(2, 4) DOT(3, 1) DOT(3, 2) DOT(3, 3) DOT(3, 4)
    }
#undef DOT
}

static void product_nt(long m, long n, long k, const float *a, long lda, const float *b, long ldb, float *c, long ldc) {
    __m256i tail = lanes_below(k % 8);
    for (long j = 0; j < n; j += 4) {  // four rows of B stay in L1 while every row of A passes them
        long cols = n - j < 4 ? n - j : 4, i = 0;
        if (cols == 4)
            for (; i + 3 <= m; i += 3) dot_tile_full(k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, tail);
        for (; i < m; i += 3)
            dot_tile_edge(m - i < 3 ? m - i : 3, cols, k, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, tail);
    }
}

// C[r][v·8 + l] = Σ_p A(r, p)·B[p][v·8 + l], r < rows ≤ 6, v < vecs ≤ 2, A(r, p) at a[r·rs + p·cs].
TILE void outer_tile(int rows, int vecs, int whole, long k, const float *a, long rs, long cs, const float *b, long ldb,
                     float *c, long ldc, __m256i last) {
    __m256 acc[6][2];
    for (int r = 0; r < 6; r++)
        for (int v = 0; v < 2; v++) acc[r][v] = _mm256_setzero_ps();
    for (long p = 0; p < k; p++) {
        __m256 bv[2];
        for (int v = 0; v < vecs; v++)
            bv[v] = v < vecs - 1 || whole ? _mm256_loadu_ps(b + p * ldb + 8 * v) : _mm256_maskload_ps(b + p * ldb + 8 * v, last);
        for (int r = 0; r < rows; r++) {
            __m256 av = _mm256_broadcast_ss(a + r * rs + p * cs);
            for (int v = 0; v < vecs; v++) acc[r][v] = _mm256_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < vecs; v++) {
            if (v < vecs - 1 || whole) _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
            else _mm256_maskstore_ps(c + r * ldc + 8 * v, last, acc[r][v]);
        }
}

static void outer_tile_full(long k, const float *a, long rs, long cs, const float *b,
                                                                  long ldb, float *c, long ldc, __m256i last) {
    outer_tile(6, 2, 1, k, a, rs, cs, b, ldb, c, ldc, last);
}
static void outer_tile_edge(int rows, int vecs, int whole, long k, const float *a, long rs, long cs, const float *b,
                            long ldb, float *c, long ldc, __m256i last) {
#define OUTER(R, V) case R * 8 + V: outer_tile(R, V, whole, k, a, rs, cs, b, ldb, c, ldc, last); break;
    switch (rows * 8 + vecs) {
        OUTER(1, 1) OUTER(1, 2) OUTER(2, 1) OUTER(2, 2) OUTER(3, 1) OUTER(3, 2)
        OUTER(4, 1) OUTER(4, 2) OUTER(5, 1) OUTER(5, 2) OUTER(6, 1) OUTER(6, 2)
    }
#undef OUTER
}

static void product_outer(long m, long n, long k, const float *a, long rs, long cs, const float *b, long ldb, float *c,
                          long ldc) {
    for (long j = 0; j < n; j += 16) {  // a 16-column strip of B is read by every row tile in turn
        long width = n - j < 16 ? n - j : 16, vecs = (width + 7) / 8, i = 0;
        int whole = width % 8 == 0;
        __m256i last = lanes_below(whole ? 8 : width % 8);
        if (vecs == 2 && whole)
            for (; i + 6 <= m; i += 6) outer_tile_full(k, a + i * rs, rs, cs, b + j, ldb, c + i * ldc + j, ldc, last);
        for (; i < m; i += 6)
            outer_tile_edge(m - i < 6 ? m - i : 6, vecs, whole, k, a + i * rs, rs, cs, b + j, ldb, c + i * ldc + j, ldc, last);
    }
}

static void unpacked(int ta, int tb, long m, long n, long k, const float *a, long lda, const float *b, long ldb, float *c,
                     long ldc) {
    if (tb) product_nt(m, n, k, a, lda, b, ldb, c, ldc);
    else product_outer(m, n, k, a, ta ? 1 : lda, ta ? lda : 1, b, ldb, c, ldc);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static int by_value(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

int main(void) {
    _mm_setcsr(_mm_getcsr() | 0x8040);
    // The mlp's products as the engine runs them (split halves and whole ones): M N K form.
    static const int shapes[][4] = {{64, 392, 256, 1}, {64, 784, 256, 1}, {128, 64, 784, 1}, {128, 64, 64, 1},
                                    {64, 256, 100, 1}, {64, 256, 784, 0}, {64, 784, 64, 0},  {64, 100, 256, 0},
                                    {392, 256, 64, 2}, {784, 256, 64, 2}, {256, 100, 64, 2}};
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    if (dnnl_engine_create(&engine, dnnl_cpu, 0) || dnnl_stream_create(&stream, engine, dnnl_stream_default_flags)) return 1;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], form = shapes[s][3], ta = form == 2, tb = form == 1;
        float *a = aligned_alloc(64, 4L * m * k + 64), *b = aligned_alloc(64, 4L * k * n + 64);
        float *c = aligned_alloc(64, 4L * m * n + 64), *c2 = aligned_alloc(64, 4L * m * n + 64);
        for (long i = 0; i < (long)m * k; i++) a[i] = rand() / (float)RAND_MAX - 0.5f;
        for (long i = 0; i < (long)k * n; i++) b[i] = rand() / (float)RAND_MAX - 0.5f;
        long lda = ta ? m : k, ldb = tb ? k : n;
        // oneDNN: src [m, k], weights [k, n], dst [m, n], the transposed operands through strides.
        dnnl_memory_desc_t am, bm, cm;
        dnnl_dims_t ad = {m, k}, bd = {k, n}, cd = {m, n}, as = {ta ? 1 : k, ta ? m : 1}, bs = {tb ? 1 : n, tb ? k : 1};
        dnnl_dims_t cs = {n, 1};
        dnnl_memory_desc_init_by_strides(&am, 2, ad, dnnl_f32, as);
        dnnl_memory_desc_init_by_strides(&bm, 2, bd, dnnl_f32, bs);
        dnnl_memory_desc_init_by_strides(&cm, 2, cd, dnnl_f32, cs);
        dnnl_matmul_desc_t md;
        dnnl_primitive_desc_t pd;
        dnnl_primitive_t prim;
        if (dnnl_matmul_desc_init(&md, &am, &bm, NULL, &cm) || dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL) ||
            dnnl_primitive_create(&prim, pd))
            return 1;
        dnnl_memory_t mem[3];
        dnnl_memory_create(&mem[0], &am, engine, a);
        dnnl_memory_create(&mem[1], &bm, engine, b);
        dnnl_memory_create(&mem[2], &cm, engine, c2);
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]}};
        unpacked(ta, tb, m, n, k, a, lda, b, ldb, c, n);
        double worst = 0;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double r = 0;
                for (int p = 0; p < k; p++) r += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                worst = fmax(worst, fabs(r - c[i * n + j]));
            }
        double t[3][201];
        for (int it = 0; it < 201; it++) {
            double t0 = now();
            unpacked(ta, tb, m, n, k, a, lda, b, ldb, c, n);
            double t1 = now();
            dnnl_primitive_execute(prim, stream, 3, args);
            dnnl_stream_wait(stream);
            double t2 = now();
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1, a, lda, b,
                        ldb, 0, c2, n);
            double t3 = now();
            t[0][it] = t1 - t0, t[1][it] = t2 - t1, t[2][it] = t3 - t2;
        }
        for (int w = 0; w < 3; w++) qsort(t[w], 201, sizeof(double), by_value);
        double flop = 2.0 * m * n * k;
        printf("%4d %4d %4d %s  unpacked %5.1f GFLOP/s  oneDNN %5.1f  OpenBLAS %5.1f  largest difference %.1e\n", m, n, k,
               form == 0 ? "NN" : form == 1 ? "NT" : "TN", flop / t[0][100] / 1e9, flop / t[1][100] / 1e9,
               flop / t[2][100] / 1e9, worst);
        for (int i = 0; i < 3; i++) dnnl_memory_destroy(mem[i]);
        dnnl_primitive_destroy(prim);
        dnnl_primitive_desc_destroy(pd);
        free(a), free(b), free(c), free(c2);
    }
    return 0;
}
