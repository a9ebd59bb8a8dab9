#ifdef __linux__
// Convolutions with few outputs per pixel (o · kh · kw ≤ 64), such as the generator's 128→1 7×7
// output layer, one image at a time: Z = A · X, with A the weight as [o·kh·kw, c] and X the image
// as [c, h·w], then each output pixel sums its kh·kw shifted entries of Z. oneDNN pads the one
// output channel to sixteen, and the unfold + sgemm path packs a 400 KB image for every GEMM;
// here the image is made plain (with the previous layer's bias and activation) in a scratch
// buffer that stays in L2, and an AVX-512 or AVX2 kernel multiplies straight from it.
#include "small_output_convolution.h"
#include "CSupport.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);

#define ROWS 6      // rows of A per register tile
#define PIXELS 64   // pixels per register tile: four vectors of sixteen

// Z[k, p] = Σ_c A[k, c] · X[c, p] for k < kpad (a multiple of ROWS, A zero-padded), p < P.
__attribute__((target("avx512f")))
static void multiply(const float *A, long kpad, long C, const float *X, long P, float *Z) {
    for (long p0 = 0; p0 < P; p0 += PIXELS) {
        __mmask16 m[4];
        for (int q = 0; q < 4; q++) {
            long lanes = P - p0 - 16 * q;
            m[q] = lanes >= 16 ? 0xFFFF : lanes <= 0 ? 0 : (__mmask16)((1u << lanes) - 1);
        }
        for (long k0 = 0; k0 < kpad; k0 += ROWS) {
            __m512 acc[ROWS][4];
            for (int r = 0; r < ROWS; r++)
                for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
            const float *a = A + k0 * C;
            for (long c = 0; c < C; c++) {
                const float *x = X + c * P + p0;
                __m512 x0 = _mm512_maskz_loadu_ps(m[0], x), x1 = _mm512_maskz_loadu_ps(m[1], x + 16);
                __m512 x2 = _mm512_maskz_loadu_ps(m[2], x + 32), x3 = _mm512_maskz_loadu_ps(m[3], x + 48);
                for (int r = 0; r < ROWS; r++) {
                    __m512 w = _mm512_set1_ps(a[r * C + c]);
                    acc[r][0] = _mm512_fmadd_ps(w, x0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(w, x1, acc[r][1]);
                    acc[r][2] = _mm512_fmadd_ps(w, x2, acc[r][2]);
                    acc[r][3] = _mm512_fmadd_ps(w, x3, acc[r][3]);
                }
            }
            for (int r = 0; r < ROWS; r++)
                for (int q = 0; q < 4; q++) _mm512_mask_storeu_ps(Z + (k0 + r) * P + p0 + 16 * q, m[q], acc[r][q]);
        }
    }
}

// `multiply` on eight lanes. A tile of ROWS rows × 16 pixels is 12 accumulators, which with the
// two image vectors and the broadcast weight fills AVX2's 16 registers exactly: anything more
// live in the loop (a first version kept the tail's masks) spills an accumulator to the stack on
// every step, and the kernel ran at a third of the FMA peak. So the tile has no masks: a last
// partial tile is multiplied from a zero-padded copy and written back through a bounce buffer.
__attribute__((target("avx2,fma")))
static inline void tile256(const float *a, long C, const float *x, long xstride, float *z, long zstride) {
    __m256 acc[ROWS][2];
    for (int r = 0; r < ROWS; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (long c = 0; c < C; c++) {
        __m256 x0 = _mm256_loadu_ps(x + c * xstride), x1 = _mm256_loadu_ps(x + c * xstride + 8);
        for (int r = 0; r < ROWS; r++) {
            __m256 w = _mm256_broadcast_ss(a + r * C + c);
            acc[r][0] = _mm256_fmadd_ps(w, x0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(w, x1, acc[r][1]);
        }
    }
    for (int r = 0; r < ROWS; r++) {
        _mm256_storeu_ps(z + r * zstride, acc[r][0]);
        _mm256_storeu_ps(z + r * zstride + 8, acc[r][1]);
    }
}

// Z as `multiply` computes it; `pad` holds C × 16 floats for a last partial tile.
__attribute__((target("avx2,fma")))
static void multiply256(const float *A, long kpad, long C, const float *X, long P, float *Z, float *pad) {
    long whole = P / 16 * 16;
    for (long p0 = 0; p0 < whole; p0 += 16)
        for (long k0 = 0; k0 < kpad; k0 += ROWS) tile256(A + k0 * C, C, X + p0, P, Z + k0 * P + p0, P);
    long lanes = P - whole;
    if (lanes == 0) return;
    for (long c = 0; c < C; c++) {
        memcpy(pad + c * 16, X + c * P + whole, sizeof(float) * (size_t)lanes);
        memset(pad + c * 16 + lanes, 0, sizeof(float) * (size_t)(16 - lanes));
    }
    float bounce[ROWS * 16];
    for (long k0 = 0; k0 < kpad; k0 += ROWS) {
        tile256(A + k0 * C, C, pad, 16, bounce, 16);
        for (int r = 0; r < ROWS; r++) memcpy(Z + (k0 + r) * P + whole, bounce + r * 16, sizeof(float) * (size_t)lanes);
    }
}

// y[o, r, s] = Σ_{i,j} Z[(o·kh + i)·kw + j, (r·sh − pt + i)·W + s·sw − pl + j] (inside the image), + bias[o].
static void gather(const gan_small_conv *cv, const float *Z, long H, long W, float *y) {
    long P = H * W;
    for (long o = 0; o < cv->o; o++)
        for (long r = 0; r < cv->oh; r++) {
            float *row = y + (o * cv->oh + r) * cv->ow;
            memset(row, 0, sizeof(float) * cv->ow);
            for (long i = 0; i < cv->kh; i++) {
                long hr = r * cv->sh - cv->pt + i;
                if (hr < 0 || hr >= H) continue;
                for (long j = 0; j < cv->kw; j++) {
                    const float *z = Z + ((o * cv->kh + i) * cv->kw + j) * P + hr * W;
                    // Output columns s with 0 ≤ s·sw − pl + j < W.
                    long lo = cv->pl - j > 0 ? (cv->pl - j + cv->sw - 1) / cv->sw : 0;
                    long hi = (W - 1 + cv->pl - j) / cv->sw + 1;
                    if (W - 1 + cv->pl - j < 0) hi = 0;
                    if (hi > cv->ow) hi = cv->ow;
                    if (cv->sw == 1)
                        for (long s = lo; s < hi; s++) row[s] += z[s - cv->pl + j];
                    else
                        for (long s = lo; s < hi; s++) row[s] += z[s * cv->sw - cv->pl + j];
                }
            }
            if (cv->bias)
                for (long s = 0; s < cv->ow; s++) row[s] += cv->bias[o];
        }
}

typedef struct {
    const gan_layout *x;
    const gan_epilogue *pre;
    const gan_small_conv *cv;
    const float *A;
    long kpad;
    float *y;
    float *scratch;
    int threads;
    int wide;  // AVX-512's kernel, else AVX2's: asked once a call, not once an image
} job;

static long padded_rows(const gan_small_conv *cv) { return ((long)cv->o * cv->kh * cv->kw + ROWS - 1) / ROWS * ROWS; }

// The plain image is copied unless it is already plain and needs no bias or activation.
static int copies(const gan_layout *x, const gan_epilogue *pre) {
    return (pre && (pre->bias || pre->activate)) || x->block != 1 || x->stride_cb != x->h * x->w;
}

size_t gan_small_output_scratch_floats(const gan_layout *x, const gan_epilogue *pre, const gan_small_conv *cv) {
    long P = x->h * x->w;
    // The plain image, Z, and multiply256's padded last tile.
    return (size_t)((copies(x, pre) ? x->c * P : 0) + padded_rows(cv) * P + x->c * 16);
}

static void run(void *arg) {
    const job *jb = arg;
    const gan_layout *x = jb->x;
    long C = x->c, P = x->h * x->w, blocks = (C + x->block - 1) / x->block;
    int plain_copy = copies(x, jb->pre);
    long t = omp_get_thread_num(), parts = omp_get_num_threads();
    if (parts > jb->threads) return;  // never: the region was asked for `threads`
    float *image = jb->scratch + t * gan_small_output_scratch_floats(x, jb->pre, jb->cv);
    float *Z = image + (plain_copy ? C * P : 0);
    const gan_epilogue none = {NULL, 0, 0};
    for (long n = t * x->n / parts; n < (t + 1) * x->n / parts; n++) {
        const float *X = x->base + n * x->stride_n;
        if (plain_copy) {
            for (long cb = 0; cb < blocks; cb++) gan_epilogue_block_to_plain(x, jb->pre ? jb->pre : &none, n, cb, image);
            X = image;
        }
        if (jb->wide) multiply(jb->A, jb->kpad, C, X, P, Z);
        else multiply256(jb->A, jb->kpad, C, X, P, Z, Z + jb->kpad * P);
        gather(jb->cv, Z, x->h, x->w, jb->y + n * jb->cv->o * jb->cv->oh * jb->cv->ow);
    }
}

int gan_small_output_fits(int o, int kh, int kw) {
    return o > 0 && kh > 0 && kw > 0 && o * kh * kw <= GAN_SMALL_OUTPUT_MAX && (gan_cpu_has_avx512f() || gan_cpu_has_avx2());
}

int gan_small_output_convolution(const gan_layout *x, const gan_epilogue *pre, const gan_small_conv *cv, float *y,
                                 float *scratch, int threads) {
    if (!gan_small_output_fits(cv->o, cv->kh, cv->kw) || threads < 1) return 1;
    long C = x->c, kpad = padded_rows(cv);
    float *A = calloc((size_t)(kpad * C), sizeof(float));
    if (!A) return 1;
    // A[(o·kh + i)·kw + j, c] = w[o, c, i, j]
    for (long o = 0; o < cv->o; o++)
        for (long c = 0; c < C; c++)
            for (long ij = 0; ij < cv->kh * cv->kw; ij++)
                A[(o * cv->kh * cv->kw + ij) * C + c] = cv->weight[(o * C + c) * cv->kh * cv->kw + ij];
    job jb = {x, pre, cv, A, kpad, y, scratch, threads, gan_cpu_has_avx512f()};
    GOMP_parallel(run, &jb, (unsigned)threads, 0);
    free(A);
    return 0;
}
#endif
