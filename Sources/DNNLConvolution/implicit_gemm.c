#ifdef __linux__
// Channels-last convolutions as matrix products read straight from the activations ("implicit
// GEMM"): no unfolded copy, one AVX2 register tile of 6 pixels × 16 channels.
//
// Forward: each output pixel is a row, its kh·kw taps each contribute the c contiguous channels
// of one input pixel (or nothing, in the padding), times that tap's [c, o] slice of the weight.
// Input gradient: the same product run backwards per stride phase: input pixels ≡ (ry, rx)
// (mod stride) meet only the taps of one parity, so each phase is a stride-1 product over dy's
// o contiguous channels. Weight gradient: rows are (tap, input channel), columns the output
// channels, and the sum runs over every output pixel, split between the threads.
//
// Written for the WGAN-GP critic's 5×5 stride-2 layers on AVX2 CPUs, where oneDNN 2.6's
// jit:avx2 kernels reach ~60 % of the FMA peak (docs/performance-log.md, session 20).
#include "implicit_gemm.h"
#include "CSupport.h"
#include "grown_buffer.h"
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
extern void GOMP_barrier(void);
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);

#define ROWS 6         // pixels (or input channels) per register tile
#define LANES 16       // output columns per register tile: two AVX2 vectors
#define GROUP 32       // tiles whose accumulators stay in cache while every tap passes over them
#define CHUNK_ROWS 768 // rows (pixels) of the images a thread takes at a time, sorted by the taps they meet
#define PIXELS 128     // most output pixels per block of the weight gradient's sum (see pixels_per_block)
#define MAX_TAPS 64
#define MAX_PHASES 4
#define AVX512_MIN_WRITTEN 128

// A grid point and the taps that meet the source image there (bit t: tap t).
typedef struct { uint64_t taps; int point; } point_taps;

static int enabled = -1;
static long calls;
static gan_buffer packed_buffer, scratch_buffer;

int gan_implicit_gemm_start_mode(void) {
    const char *v = getenv("GAN_IGEMM");
    return v && strcmp(v, "0") == 0 ? 0 : v && strcmp(v, "2") == 0 ? 2 : 1;
}

int gan_implicit_gemm_enabled(void) {
    if (enabled < 0) enabled = gan_implicit_gemm_start_mode();
    return enabled;
}

// Which passes the kernels take (bit 0 forward, 1 input gradient, 2 weight gradient): all, or
// GAN_IGEMM_PASSES, to measure one against oneDNN's in a step (docs/performance-log.md, session 33).
static int passes(void) {
    static int mask = -1;
    if (mask < 0) {
        const char *v = getenv("GAN_IGEMM_PASSES");
        mask = v ? atoi(v) & 7 : 7;
    }
    return mask;
}

void gan_implicit_gemm_set_enabled(int mode) { enabled = mode < 0 ? 0 : mode > 2 ? 2 : mode; }

long gan_implicit_gemm_calls(void) { return calls; }

int gan_implicit_gemm_writes_channels(long channels) { return channels >= LANES && channels % LANES == 0; }

int gan_implicit_gemm_fits(gan_dnnl_kind kind, const gan_dnnl_shape *s) {
    int mode = gan_implicit_gemm_enabled();
    if (!mode || !s->cl || s->dh != 1 || s->dw != 1 || !gan_cpu_has_avx2()) return 0;
    if (s->kh * s->kw > MAX_TAPS || s->sh * s->sw > MAX_PHASES || s->c < LANES || s->o < LANES) return 0;
    if (!(passes() & (1 << kind))) return 0;
    long written = kind == GAN_DNNL_BACKWARD_DATA ? s->c : s->o;
    // On AVX-512 CPUs by default only where the side written is 128 channels or more: there the
    // kernels ran 1.00–1.10× oneDNN's AVX-512 ones, and the 64-channel input gradient 0.93–0.95×
    // (docs/performance-log.md, session 34).
    if (mode == 1 && gan_cpu_has_avx512f() && written < AVX512_MIN_WRITTEN) return 0;
    return (kind == GAN_DNNL_FORWARD || kind == GAN_DNNL_BACKWARD_DATA || kind == GAN_DNNL_BACKWARD_WEIGHTS) &&
           gan_implicit_gemm_writes_channels(written);
}

// acc[r, 0..16) += Σ_k a[r][k] · b[k, 0..16) for the six rows r; acc rows `ld` floats apart.
// Twelve accumulators, two b vectors and the broadcast fill AVX2's sixteen registers. This and
// `gathered_tile` are spelled out register by register: the same loops over an array of
// accumulators (with shared load / store helpers) ran 3–7 % slower in three of four passes.
__attribute__((target("avx2,fma")))
static inline void tile(const float *const *a, long K, const float *b, float *acc, long ld) {
    const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
    __m256 c00 = _mm256_loadu_ps(acc), c01 = _mm256_loadu_ps(acc + 8);
    __m256 c10 = _mm256_loadu_ps(acc + ld), c11 = _mm256_loadu_ps(acc + ld + 8);
    __m256 c20 = _mm256_loadu_ps(acc + 2 * ld), c21 = _mm256_loadu_ps(acc + 2 * ld + 8);
    __m256 c30 = _mm256_loadu_ps(acc + 3 * ld), c31 = _mm256_loadu_ps(acc + 3 * ld + 8);
    __m256 c40 = _mm256_loadu_ps(acc + 4 * ld), c41 = _mm256_loadu_ps(acc + 4 * ld + 8);
    __m256 c50 = _mm256_loadu_ps(acc + 5 * ld), c51 = _mm256_loadu_ps(acc + 5 * ld + 8);
    // Four k at a time: 1.09–1.14× on the input gradient, 1.00–1.11× on the forward (interleaved
    // A/B, scripts/implicit_gemm_ab.c); eight spill and ran at 0.56–0.60×; the weight gradient's
    // tile below, unrolled so, at 0.78×.
#pragma clang loop unroll_count(4)
    for (long k = 0; k < K; k++) {
        __m256 b0 = _mm256_loadu_ps(b + LANES * k), b1 = _mm256_loadu_ps(b + LANES * k + 8), v;
        v = _mm256_broadcast_ss(a0 + k); c00 = _mm256_fmadd_ps(v, b0, c00); c01 = _mm256_fmadd_ps(v, b1, c01);
        v = _mm256_broadcast_ss(a1 + k); c10 = _mm256_fmadd_ps(v, b0, c10); c11 = _mm256_fmadd_ps(v, b1, c11);
        v = _mm256_broadcast_ss(a2 + k); c20 = _mm256_fmadd_ps(v, b0, c20); c21 = _mm256_fmadd_ps(v, b1, c21);
        v = _mm256_broadcast_ss(a3 + k); c30 = _mm256_fmadd_ps(v, b0, c30); c31 = _mm256_fmadd_ps(v, b1, c31);
        v = _mm256_broadcast_ss(a4 + k); c40 = _mm256_fmadd_ps(v, b0, c40); c41 = _mm256_fmadd_ps(v, b1, c41);
        v = _mm256_broadcast_ss(a5 + k); c50 = _mm256_fmadd_ps(v, b0, c50); c51 = _mm256_fmadd_ps(v, b1, c51);
    }
    _mm256_storeu_ps(acc, c00); _mm256_storeu_ps(acc + 8, c01);
    _mm256_storeu_ps(acc + ld, c10); _mm256_storeu_ps(acc + ld + 8, c11);
    _mm256_storeu_ps(acc + 2 * ld, c20); _mm256_storeu_ps(acc + 2 * ld + 8, c21);
    _mm256_storeu_ps(acc + 3 * ld, c30); _mm256_storeu_ps(acc + 3 * ld + 8, c31);
    _mm256_storeu_ps(acc + 4 * ld, c40); _mm256_storeu_ps(acc + 4 * ld + 8, c41);
    _mm256_storeu_ps(acc + 5 * ld, c50); _mm256_storeu_ps(acc + 5 * ld + 8, c51);
}

// acc[r, 0..16) += Σ_i x[r][i · ldx] · dy[doff[i], 0..16): the weight gradient's tile, whose
// sum runs over a list of pixels (the ones a tap meets inside the image), their x rows packed.
__attribute__((target("avx2,fma")))
static inline void gathered_tile(const float *const *x, long ldx, const long *doff, long count, const float *dy,
                                 float *acc) {
    const float *x0 = x[0], *x1 = x[1], *x2 = x[2], *x3 = x[3], *x4 = x[4], *x5 = x[5];
    __m256 c00 = _mm256_loadu_ps(acc), c01 = _mm256_loadu_ps(acc + 8);
    __m256 c10 = _mm256_loadu_ps(acc + 16), c11 = _mm256_loadu_ps(acc + 24);
    __m256 c20 = _mm256_loadu_ps(acc + 32), c21 = _mm256_loadu_ps(acc + 40);
    __m256 c30 = _mm256_loadu_ps(acc + 48), c31 = _mm256_loadu_ps(acc + 56);
    __m256 c40 = _mm256_loadu_ps(acc + 64), c41 = _mm256_loadu_ps(acc + 72);
    __m256 c50 = _mm256_loadu_ps(acc + 80), c51 = _mm256_loadu_ps(acc + 88);
    for (long i = 0; i < count; i++) {
        const float *d = dy + doff[i];
        long o = i * ldx;
        __m256 b0 = _mm256_loadu_ps(d), b1 = _mm256_loadu_ps(d + 8), v;
        v = _mm256_broadcast_ss(x0 + o); c00 = _mm256_fmadd_ps(v, b0, c00); c01 = _mm256_fmadd_ps(v, b1, c01);
        v = _mm256_broadcast_ss(x1 + o); c10 = _mm256_fmadd_ps(v, b0, c10); c11 = _mm256_fmadd_ps(v, b1, c11);
        v = _mm256_broadcast_ss(x2 + o); c20 = _mm256_fmadd_ps(v, b0, c20); c21 = _mm256_fmadd_ps(v, b1, c21);
        v = _mm256_broadcast_ss(x3 + o); c30 = _mm256_fmadd_ps(v, b0, c30); c31 = _mm256_fmadd_ps(v, b1, c31);
        v = _mm256_broadcast_ss(x4 + o); c40 = _mm256_fmadd_ps(v, b0, c40); c41 = _mm256_fmadd_ps(v, b1, c41);
        v = _mm256_broadcast_ss(x5 + o); c50 = _mm256_fmadd_ps(v, b0, c50); c51 = _mm256_fmadd_ps(v, b1, c51);
    }
    _mm256_storeu_ps(acc, c00); _mm256_storeu_ps(acc + 8, c01);
    _mm256_storeu_ps(acc + 16, c10); _mm256_storeu_ps(acc + 24, c11);
    _mm256_storeu_ps(acc + 32, c20); _mm256_storeu_ps(acc + 40, c21);
    _mm256_storeu_ps(acc + 48, c30); _mm256_storeu_ps(acc + 56, c31);
    _mm256_storeu_ps(acc + 64, c40); _mm256_storeu_ps(acc + 72, c41);
    _mm256_storeu_ps(acc + 80, c50); _mm256_storeu_ps(acc + 88, c51);
}

// The same tiles with AVX-512: a row's 16 columns in one zmm register, several panels at once.
// Each value sums in k order as in the AVX2 tiles, so the results have their bits. Written as
// loops over an array of accumulators, which clang unrolls into registers (no spill; as fast as
// the spelled-out form, session 33).
//
// Forward and input gradient, where the side written is not a multiple of 64: six rows × two
// panels (b2: the second's [k][16] slices); a panel left over (an odd count) takes the AVX2 tile.
// Six rows because each needs its own pointer: twelve did not fit in the general registers beside
// the loop's own (the compiler reloaded them from the stack every k).
__attribute__((target("avx512f")))
static void tile512(const float *const *a, long K, const float *b, const float *b2, float *acc, long ld) {
    __m512 c[ROWS][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++)
#pragma clang loop unroll(full)
        for (int q = 0; q < 2; q++) c[r][q] = _mm512_loadu_ps(acc + r * ld + q * LANES);
    for (long k = 0; k < K; k++) {
        __m512 b0 = _mm512_loadu_ps(b + k * LANES), b1 = _mm512_loadu_ps(b2 + k * LANES);
#pragma clang loop unroll(full)
        for (int r = 0; r < ROWS; r++) {
            __m512 v = _mm512_set1_ps(a[r][k]);
            c[r][0] = _mm512_fmadd_ps(v, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(v, b1, c[r][1]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++)
#pragma clang loop unroll(full)
        for (int q = 0; q < 2; q++) _mm512_storeu_ps(acc + r * ld + q * LANES, c[r][q]);
}

// Six rows × 64 columns (four panels of the weight packed [taps][k][64]) summed over a list of
// taps in registers, then stored: per k, four loads and six broadcasts feed 24 FMAs, and the
// sums make no round trip through memory between taps (1.01–1.08× the same tile tap by tap,
// session 34). Row r of tap t reads src + origin[r] + off[t] (a tap's offset in the source is the
// same for every row). Each value sums tap by tap in k order, as the other tiles do.
__attribute__((target("avx512f")))
static void tile512x4(const float *src, const long *origin, const long *off, const int *list, int n, long K, const float *b,
                      float *const *out, int real) {
    __m512 c[ROWS][4];
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++)
#pragma clang loop unroll(full)
        for (int q = 0; q < 4; q++) c[r][q] = _mm512_setzero_ps();
    for (int i = 0; i < n; i++) {
        const float *a[ROWS], *bt = b + list[i] * K * 4 * LANES;
#pragma clang loop unroll(full)
        for (int r = 0; r < ROWS; r++) a[r] = src + origin[r] + off[list[i]];
        for (long k = 0; k < K; k++) {
            __m512 bq[4];
#pragma clang loop unroll(full)
            for (int q = 0; q < 4; q++) bq[q] = _mm512_loadu_ps(bt + k * 4 * LANES + q * LANES);
#pragma clang loop unroll(full)
            for (int r = 0; r < ROWS; r++) {
                __m512 v = _mm512_set1_ps(a[r][k]);
#pragma clang loop unroll(full)
                for (int q = 0; q < 4; q++) c[r][q] = _mm512_fmadd_ps(v, bq[q], c[r][q]);
            }
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++)
        if (r < real)
#pragma clang loop unroll(full)
            for (int q = 0; q < 4; q++) _mm512_storeu_ps(out[r] + q * LANES, c[r][q]);
}

// Weight gradient: `rows` consecutive input channels of x (channel r of pixel i at
// x[i·ldx + min(r, last)]: a last partial tile repeats its last channel into partial sums nobody
// reads) × two panels (dy2, acc2: the second's dy block and partial sums). One pointer reaches
// every row, so twelve fit here.
__attribute__((target("avx512f"), always_inline))
static inline void gathered_tile512_body(const float *x, int last, long ldx, const long *doff, long count, const float *dy,
                                         const float *dy2, float *acc, float *acc2, const int rows) {
    __m512 c[2 * ROWS][2];
    long off[2 * ROWS];
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        off[r] = r < last ? r : last;
        c[r][0] = _mm512_loadu_ps(acc + r * LANES);
        c[r][1] = _mm512_loadu_ps(acc2 + r * LANES);
    }
    for (long i = 0; i < count; i++) {
        const float *xi = x + i * ldx;
        __m512 b0 = _mm512_loadu_ps(dy + doff[i]), b1 = _mm512_loadu_ps(dy2 + doff[i]);
#pragma clang loop unroll(full)
        for (int r = 0; r < rows; r++) {
            __m512 v = _mm512_set1_ps(xi[off[r]]);
            c[r][0] = _mm512_fmadd_ps(v, b0, c[r][0]);
            c[r][1] = _mm512_fmadd_ps(v, b1, c[r][1]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < rows; r++) {
        _mm512_storeu_ps(acc + r * LANES, c[r][0]);
        _mm512_storeu_ps(acc2 + r * LANES, c[r][1]);
    }
}

// Six channels, the first `rows` of them real.
__attribute__((target("avx512f")))
static void gathered_tile512(const float *x, long rows, long ldx, const long *doff, long count, const float *dy, const float *dy2,
                             float *acc, float *acc2) {
    gathered_tile512_body(x, (int)rows - 1, ldx, doff, count, dy, dy2, acc, acc2, ROWS);
}

// Twelve channels, all real.
__attribute__((target("avx512f")))
static void gathered_tile512x12(const float *x, long ldx, const long *doff, long count, const float *dy, const float *dy2,
                                float *acc, float *acc2) {
    gathered_tile512_body(x, 2 * ROWS - 1, ldx, doff, count, dy, dy2, acc, acc2, 2 * ROWS);
}

// Which tiles run: the AVX-512 ones where the CPU has it, unless GAN_IGEMM_TILE=avx2.
static int wide_tiles = -1;

static int use_wide_tiles(void) {
    if (wide_tiles < 0) {
        const char *v = getenv("GAN_IGEMM_TILE");
        wide_tiles = gan_cpu_has_avx512f() && !(v && strcmp(v, "avx2") == 0);
    }
    return wide_tiles;
}

int gan_implicit_gemm_wide_tiles(void) { return use_wide_tiles(); }

void gan_implicit_gemm_set_wide_tiles(int on) { wide_tiles = on && gan_cpu_has_avx512f(); }

// MARK: forward and input gradient: one product per stride phase

// Rows are the points (a, b) of a gh × gw grid in each of n images. Point (a, b) reads source
// pixel (a·fy + ty[t], b·fx + tx[t]) for tap t (nothing outside the source image) and writes
// destination pixel (dy0 + a·dsy, dx0 + b·dsx).
typedef struct {
    int gh, gw;
    int fy, fx, taps;
    int ty[MAX_TAPS], tx[MAX_TAPS];
    long tap_offset[MAX_TAPS];  // of tap t's (i, j) in an OIHW weight: i·kw + j
    long src_offset[MAX_TAPS];  // of tap t's source pixel from a row's origin: (ty·src_w + tx)·k floats
    int dy0, dx0, dsy, dsx;
    float *packed;        // [cols / 16][taps][k][16]
    point_taps *classes;  // the grid's points sorted by the taps they meet (gh · gw)
} phase;

typedef struct {
    int n;
    const float *src; int src_h, src_w; long k;  // [n][src_h][src_w][k]
    float *dst; int dst_h, dst_w; long cols;     // [n][dst_h][dst_w][cols]
    long col_stride, k_stride;                    // of the OIHW weight, per column and per k
    const float *weight;
    int phases;
    phase ph[MAX_PHASES];
    float *scratch;  // GROUP · ROWS · cols floats per thread
    int wide;        // the AVX-512 tiles
    int quad;        // the six-row four-panel tiles (weight packed [cols / 64][taps][k][64])
} product;

// The weight's [k, 16] slices panel by panel, or [taps][k][64] four panels at a time for tile512x4;
// the threads share the slices out.
static void pack(const product *p, int t, int parts) {
    long width = p->quad ? 4 * LANES : LANES, slices = p->cols / width;
    for (int f = 0; f < p->phases; f++) {
        const phase *ph = &p->ph[f];
        for (long sl = t; sl < slices; sl += parts)
            for (int tap = 0; tap < ph->taps; tap++) {
                float *dst = ph->packed + (sl * ph->taps + tap) * p->k * width;
                for (long kk = 0; kk < p->k; kk++)
                    for (long q = 0; q < width; q++)
                        dst[kk * width + q] = p->weight[(sl * width + q) * p->col_stride + kk * p->k_stride + ph->tap_offset[tap]];
            }
    }
}

static int by_taps(const void *a, const void *b) {
    const point_taps *x = a, *y = b;
    return x->taps != y->taps ? (x->taps < y->taps ? -1 : 1) : x->point - y->point;
}

// Each grid point's taps inside the source image, the points sorted by them (the interior meets
// all; each border class fewer); the threads share the phases out.
static void classify(const product *p, int t, int parts) {
    for (int f = t; f < p->phases; f += parts) {
        const phase *ph = &p->ph[f];
        int points = ph->gh * ph->gw;
        for (int q = 0; q < points; q++) {
            uint64_t taps = 0;
            int a = q / ph->gw * ph->fy, b = q % ph->gw * ph->fx;
            for (int tap = 0; tap < ph->taps; tap++) {
                int y = a + ph->ty[tap], x = b + ph->tx[tap];
                if (y >= 0 && y < p->src_h && x >= 0 && x < p->src_w) taps |= (uint64_t)1 << tap;
            }
            ph->classes[q] = (point_taps){taps, q};
        }
        qsort(ph->classes, (size_t)points, sizeof *ph->classes, by_taps);
    }
}

// Up to GROUP tiles of one thread: ROWS (image, grid point) rows each, all meeting the same taps.
// A row is its origin in the source (pixel (a·fy, b·fx) of its image, an offset: the pixel may
// lie outside the image, only origin + src_offset[t] of the taps it meets is read) and the
// output row it is stored to.
typedef struct {
    int tiles;
    uint64_t taps[GROUP];
    int real[GROUP];  // rows to store: a last partial tile repeats its last row
    long origin[GROUP * ROWS];  // floats from the source's start
    float *out[GROUP * ROWS];
} tile_group;

// Accumulates the group's tiles over the taps they meet, then stores their rows.
static void run_group(const product *p, const phase *ph, const tile_group *gr, float *acc) {
    long panels = p->cols / LANES;
    int wide = p->wide;
    const float *rowp[GROUP * ROWS];
    if (p->quad) {
        // Four panels at a time, tile by tile (the four panels' slices of every tap, k·64·taps
        // floats, stay in L2 while the group's tiles pass), each tile over all its taps at once,
        // straight into its output rows.
        for (long pq = 0; pq < panels / 4; pq++)
            for (int g = 0; g < gr->tiles; g++) {
                int list[MAX_TAPS], n = 0;
                for (int tap = 0; tap < ph->taps; tap++)
                    if (gr->taps[g] & ((uint64_t)1 << tap)) list[n++] = tap;
                float *out[ROWS];
                for (int r = 0; r < ROWS; r++) out[r] = gr->out[g * ROWS + r] + pq * 4 * LANES;
                tile512x4(p->src, gr->origin + g * ROWS, ph->src_offset, list, n, p->k, ph->packed + pq * ph->taps * p->k * 4 * LANES, out,
                          gr->real[g]);
            }
        return;
    }
    memset(acc, 0, sizeof(float) * (size_t)(gr->tiles * ROWS * p->cols));
    for (int tap = 0; tap < ph->taps; tap++) {
        uint64_t bit = (uint64_t)1 << tap;
        for (int g = 0; g < gr->tiles; g++) {
            if (!(gr->taps[g] & bit)) continue;
            for (int i = g * ROWS; i < (g + 1) * ROWS; i++) rowp[i] = p->src + gr->origin[i] + ph->src_offset[tap];
        }
        // Tile by tile, all panels: the tile's six source rows stay in L1 while the tap's weight
        // slices (k · 16 floats a panel) come from L2 (5–7 % faster than panel by panel).
        for (int g = 0; g < gr->tiles; g++) {
            if (!(gr->taps[g] & bit)) continue;
            long pn = 0;
            for (; wide && pn + 1 < panels; pn += 2) {
                const float *b = ph->packed + (pn * ph->taps + tap) * p->k * LANES;
                tile512(rowp + g * ROWS, p->k, b, b + ph->taps * p->k * LANES, acc + g * ROWS * p->cols + pn * LANES, p->cols);
            }
            for (; pn < panels; pn++)
                tile(rowp + g * ROWS, p->k, ph->packed + (pn * ph->taps + tap) * p->k * LANES, acc + g * ROWS * p->cols + pn * LANES,
                     p->cols);
        }
    }
    for (int g = 0; g < gr->tiles; g++)
        for (int i = g * ROWS; i < g * ROWS + gr->real[g]; i++)
            memcpy(gr->out[i], acc + i * p->cols, sizeof(float) * (size_t)p->cols);
}

// The thread's share of the images, a chunk of images at a time. Within a chunk, rows are taken
// by tap class (`classify`), so a tile skips exactly the taps that fall in the padding instead of
// multiplying zeros: the critic's 7×7 outputs with padding 2 lose 16 % of the products to it in
// image order.
static void run_phase(const product *p, const phase *ph, int t, int parts) {
    long per_image = (long)ph->gh * ph->gw;
    long src_n = (long)p->src_h * p->src_w * p->k, dst_n = (long)p->dst_h * p->dst_w * p->cols;
    float *acc = p->scratch + (long)t * GROUP * ROWS * p->cols;
    const point_taps *sorted = ph->classes;
    long chunk = CHUNK_ROWS / per_image > 1 ? CHUNK_ROWS / per_image : 1;
    tile_group gr;
    gr.tiles = 0;
    for (long c0 = t * p->n / parts, end = (t + 1) * p->n / parts; c0 < end; c0 += chunk) {
        long images = c0 + chunk < end ? chunk : end - c0;
        for (long first = 0, count; first < per_image; first += count) {
            for (count = 1; first + count < per_image && sorted[first + count].taps == sorted[first].taps; count++) {}
            long rows = images * count;
            for (long q = 0; q < rows; q += ROWS) {
                int g = gr.tiles++;
                gr.taps[g] = sorted[first].taps;
                gr.real[g] = rows - q < ROWS ? (int)(rows - q) : ROWS;
                for (int r = 0; r < ROWS; r++) {
                    long row = q + r < rows ? q + r : rows - 1, n = c0 + row / count;
                    int point = sorted[first + row % count].point, a = point / ph->gw, b = point % ph->gw, i = g * ROWS + r;
                    gr.origin[i] = n * src_n + ((long)a * ph->fy * p->src_w + (long)b * ph->fx) * p->k;
                    gr.out[i] = p->dst + n * dst_n + ((long)(ph->dy0 + a * ph->dsy) * p->dst_w + ph->dx0 + b * ph->dsx) * p->cols;
                }
                if (gr.tiles == GROUP) { run_group(p, ph, &gr, acc); gr.tiles = 0; }
            }
        }
        if (gr.tiles) { run_group(p, ph, &gr, acc); gr.tiles = 0; }
    }
}

static void run_product(void *arg) {
    const product *p = arg;
    int t = omp_get_thread_num(), parts = omp_get_num_threads();
    pack(p, t, parts);
    classify(p, t, parts);
    GOMP_barrier();
    for (int f = 0; f < p->phases; f++) run_phase(p, &p->ph[f], t, parts);
}

// The forward product: one phase over the output grid.
static void forward_product(const gan_dnnl_shape *s, product *p) {
    phase *ph = &p->ph[0];
    p->phases = 1;
    ph->gh = s->oh; ph->gw = s->ow; ph->fy = s->sh; ph->fx = s->sw;
    ph->dy0 = ph->dx0 = 0; ph->dsy = ph->dsx = 1;
    ph->taps = s->kh * s->kw;
    for (int i = 0; i < s->kh; i++)
        for (int j = 0; j < s->kw; j++) {
            int tap = i * s->kw + j;
            ph->ty[tap] = i - s->pt; ph->tx[tap] = j - s->pl; ph->tap_offset[tap] = tap;
        }
}

// The input gradient's phases: input pixels (ry + a·sh, rx + b·sw) meet the taps i ≡ ry + pt
// (mod sh), j ≡ rx + pl (mod sw), at dy pixel (a + (ry + pt − i)/sh, b + (rx + pl − j)/sw).
// A phase without taps still runs: its pixels get zeros.
static void input_gradient_product(const gan_dnnl_shape *s, product *p) {
    p->phases = 0;
    for (int ry = 0; ry < s->sh && ry < s->h; ry++)
        for (int rx = 0; rx < s->sw && rx < s->w; rx++) {
            phase *ph = &p->ph[p->phases++];
            ph->gh = (s->h - ry + s->sh - 1) / s->sh; ph->gw = (s->w - rx + s->sw - 1) / s->sw;
            ph->fy = ph->fx = 1;
            ph->dy0 = ry; ph->dx0 = rx; ph->dsy = s->sh; ph->dsx = s->sw;
            ph->taps = 0;
            for (int i = 0; i < s->kh; i++) {
                if ((ry + s->pt - i) % s->sh != 0) continue;
                for (int j = 0; j < s->kw; j++) {
                    if ((rx + s->pl - j) % s->sw != 0) continue;
                    ph->ty[ph->taps] = (ry + s->pt - i) / s->sh;
                    ph->tx[ph->taps] = (rx + s->pl - j) / s->sw;
                    ph->tap_offset[ph->taps++] = i * s->kw + j;
                }
            }
        }
}

// MARK: weight gradient

typedef struct {
    const gan_dnnl_shape *s;
    const float *x, *dy;
    float *dw;       // OIHW
    float *scratch;  // per thread: the partial sums, a block of dy, the pixel lists
    long per_thread;
    long pixels;     // output pixels per block (pixels_per_block), which sized the scratch
    int wide;        // the AVX-512 tiles
} weight_job;

// Rows of the weight gradient's partial sums, per tap and panel: c rounded up to whole tiles, so
// that a last partial tile writes into rows nobody reads instead of needing a bounce buffer.
static long padded_channels(long c) { return (c + ROWS - 1) / ROWS * ROWS; }

// The packed x rows' stride: c plus 16 floats. A tile reads the same six channels from every row
// of the block: 512 B apart (128 channels), those 64 lines fall into 8 of L1's 64 sets and evict
// each other; 576 B apart (9 lines, coprime with 64) they use every set.
static long x_stride(long c) { return c + LANES; }

// Output pixels per block of the weight gradient's sum: the partial sums make a round trip per
// block, so larger blocks pay it less often, while the block's packed x rows should stay in L1.
// 128 with the AVX-512 tiles (their 48 KB L1 on the Sapphire Rapids host: 1.045× the 128 → 256
// pass against 64, 1.00–1.02× the 64 → 128 one, 256 no better; session 35); 64 with the AVX2
// ones, as tuned on the AVX2 host (session 21).
static long pixels_per_block(int wide) { return wide ? PIXELS : PIXELS / 2; }

static long weight_partials(const gan_dnnl_shape *s) { return (long)s->kh * s->kw * s->o * padded_channels(s->c); }

// Each thread sums its share of the output pixels into its own partial sums, laid out
// [tap][o / 16][c][16] so that a tile's rows are contiguous; the threads then add the partials
// up into the OIHW gradient, each its share of the weights.
static void run_weight_gradient(void *arg) {
    const weight_job *j = arg;
    const gan_dnnl_shape *s = j->s;
    int t = omp_get_thread_num(), parts = omp_get_num_threads(), wide = j->wide;
    long pixels = j->pixels;
    long C = s->c, CP = padded_channels(C), O = s->o, panels = O / LANES, taps = (long)s->kh * s->kw, XS = x_stride(C);
    long per_image = (long)s->oh * s->ow, M = s->n * per_image;
    float *acc = j->scratch + t * j->per_thread, *block = acc + weight_partials(s);
    float *xblock = block + pixels * O;
    long *doff = (long *)(xblock + pixels * XS);
    memset(acc, 0, sizeof(float) * (size_t)weight_partials(s));
    long m_first = t * M / parts, m_last = (t + 1) * M / parts;
    for (long m0 = m_first; m0 < m_last; m0 += pixels) {
        long m1 = m0 + pixels < m_last ? m0 + pixels : m_last;
        // dy's rows of the block, panel by panel ([o / 16][m][16]): read in place, rows o floats
        // apart fall into a few L1 sets (1 KB apart: four) and evict each other.
        for (long m = m0; m < m1; m++)
            for (long pn = 0; pn < panels; pn++)
                memcpy(block + (pn * pixels + m - m0) * LANES, j->dy + m * O + pn * LANES, sizeof(float) * LANES);
        // Each pixel's image and the input position of its tap (0, 0), once a block.
        long image[PIXELS];
        int y0[PIXELS], x0[PIXELS];
        for (long m = m0; m < m1; m++) {
            long rem = m % per_image;
            image[m - m0] = m / per_image * s->h;
            y0[m - m0] = (int)(rem / s->ow) * s->sh - s->pt;
            x0[m - m0] = (int)(rem % s->ow) * s->sw - s->pl;
        }
        for (long tap = 0; tap < taps; tap++) {
            long i = tap / s->kw, jj = tap % s->kw, count = 0;
            for (long m = 0; m < m1 - m0; m++) {
                long y = y0[m] + i, x = x0[m] + jj;
                if (y < 0 || y >= s->h || x < 0 || x >= s->w) continue;
                // The tap's x rows, packed: in place, rows 1 KB apart (stride 2, 128 channels)
                // share a quarter of L1's sets (with 64 pixels a block, 1.06–1.13× the 32 read
                // in place).
                memcpy(xblock + count * XS, j->x + ((image[m] + y) * s->w + x) * C, sizeof(float) * (size_t)C);
                doff[count++] = m * LANES;
            }
            if (!count) continue;
            // Twelve channels at a time, then six (two panels at a time, so an even count).
            long c0 = 0;
            if (wide && panels % 2 == 0)
                for (; c0 + 2 * ROWS <= C; c0 += 2 * ROWS)
                    for (long pn = 0; pn + 1 < panels; pn += 2) {
                        float *out = acc + ((tap * panels + pn) * CP + c0) * LANES;
                        const float *d = block + pn * pixels * LANES;
                        // The next tile's partial sums, while this one runs: with 128 → 256 they
                        // are 3.3 MB a thread, past L2, and the tile would wait for its first
                        // loads (1.03× that pass, session 35).
                        const float *next = pn + 3 < panels ? out + 2 * CP * LANES
                                            : c0 + 4 * ROWS <= C ? acc + (tap * panels * CP + c0 + 2 * ROWS) * LANES : NULL;
                        for (int l = 0; next && l < 2 * ROWS; l++) {
                            __builtin_prefetch(next + l * LANES, 1, 3);
                            __builtin_prefetch(next + (CP + l) * LANES, 1, 3);
                        }
                        gathered_tile512x12(xblock + c0, XS, doff, count, d, d + pixels * LANES, out, out + CP * LANES);
                    }
            for (; c0 < C; c0 += ROWS) {
                long rows = C - c0 < ROWS ? C - c0 : ROWS;
                const float *xr[ROWS];
                for (int r = 0; r < ROWS; r++) xr[r] = xblock + c0 + (r < rows ? r : rows - 1);
                long pn = 0;
                for (; wide && pn + 1 < panels; pn += 2) {
                    float *out = acc + ((tap * panels + pn) * CP + c0) * LANES;
                    const float *d = block + pn * pixels * LANES;
                    gathered_tile512(xblock + c0, rows, XS, doff, count, d, d + pixels * LANES, out, out + CP * LANES);
                }
                for (; pn < panels; pn++)
                    gathered_tile(xr, XS, doff, count, block + pn * pixels * LANES, acc + ((tap * panels + pn) * CP + c0) * LANES);
            }
        }
    }
    GOMP_barrier();
    // dw[o, c, i, j] = Σ over threads of the partial sum at [i·kw + j][o / 16][c][o % 16], taken a
    // line at a time (16 output channels of one input channel and tap) and written to dw's 16
    // rows. Taken in dw's order instead, each line came back from L2 once for each of its 16.
    long lines = panels * C;
    for (long pc = t * lines / parts; pc < (t + 1) * lines / parts; pc++) {
        long pn = pc / C, c = pc % C;
        float *out = j->dw + (pn * LANES * C + c) * taps;
        for (long tap = 0; tap < taps; tap++) {
            const float *line = j->scratch + ((tap * panels + pn) * CP + c) * LANES;
            float sum[LANES] = {0};
            for (int q = 0; q < parts; q++)
                for (int lane = 0; lane < LANES; lane++) sum[lane] += line[q * j->per_thread + lane];
            for (int lane = 0; lane < LANES; lane++) out[lane * C * taps + tap] = sum[lane];
        }
    }
}

int gan_implicit_gemm_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *s, const float *a, const float *b, float *out,
                                  int threads) {
    if (!gan_implicit_gemm_fits(kind, s) || threads < 1) return 1;
    if (kind == GAN_DNNL_BACKWARD_WEIGHTS) {
        int wide = use_wide_tiles();
        long pixels = pixels_per_block(wide);
        long per_thread = weight_partials(s) + pixels * (s->o + x_stride(s->c)) + pixels * (long)(sizeof(long) / sizeof(float));
        float *scratch = gan_grown(&scratch_buffer, sizeof(float) * (size_t)(per_thread * threads));
        if (!scratch) return 1;
        weight_job j = {s, a, b, out, scratch, per_thread, pixels, wide};
        GOMP_parallel(run_weight_gradient, &j, (unsigned)threads, 0);
        calls++;
        return 0;
    }
    static product p;  // large (the phases' tap tables); callers hold dnnl_convolution's lock
    memset(&p, 0, sizeof p);
    p.n = s->n; p.weight = b; p.wide = use_wide_tiles();
    long taps = (long)s->kh * s->kw;
    if (kind == GAN_DNNL_FORWARD) {
        p.src = a; p.src_h = s->h; p.src_w = s->w; p.k = s->c;
        p.dst = out; p.dst_h = s->oh; p.dst_w = s->ow; p.cols = s->o;
        p.col_stride = s->c * taps; p.k_stride = taps;
        forward_product(s, &p);
    } else {
        p.src = a; p.src_h = s->oh; p.src_w = s->ow; p.k = s->o;
        p.dst = out; p.dst_h = s->h; p.dst_w = s->w; p.cols = s->c;
        p.col_stride = taps; p.k_stride = s->c * taps;
        input_gradient_product(s, &p);
    }
    p.quad = p.wide && p.cols % (4 * LANES) == 0;
    size_t packed = 0, points = 0;
    for (int f = 0; f < p.phases; f++) {
        phase *ph = &p.ph[f];
        for (int tap = 0; tap < ph->taps; tap++) ph->src_offset[tap] = ((long)ph->ty[tap] * p.src_w + ph->tx[tap]) * p.k;
        packed += (size_t)(p.ph[f].taps * p.k * p.cols);
        points += (size_t)(p.ph[f].gh * p.ph[f].gw);
    }
    size_t scratch = (size_t)(threads * GROUP * ROWS * p.cols);
    // The tap classes first (8-byte entries), then, from a cache line's start, the packed weights
    // (each phase's a whole number of lines) and the accumulators: a weight slice that straddles
    // two lines costs its loads twice.
    size_t class_bytes = (sizeof(point_taps) * points + 63) / 64 * 64;
    point_taps *classes = gan_grown(&packed_buffer, class_bytes + sizeof(float) * (packed + scratch));
    if (!classes) return 1;
    float *at = (float *)((char *)classes + class_bytes);
    for (int f = 0; f < p.phases; f++) {
        p.ph[f].classes = classes;
        classes += p.ph[f].gh * p.ph[f].gw;
        p.ph[f].packed = at;
        at += p.ph[f].taps * p.k * p.cols;
    }
    p.scratch = at;
    GOMP_parallel(run_product, &p, (unsigned)threads, 0);
    calls++;
    return 0;
}
#endif
