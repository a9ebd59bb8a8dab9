#ifdef __linux__
// The forward, input gradient and weight gradient of a 5×5, stride-2 channels-last convolution
// with padding 2 before and 1 after (PyTorch's padding 2: the WGAN-GP critic) or 1 and 2 (Keras's
// "same": the dcgan generator's transposed layers, whose forward is an input gradient) as
// Winograd F(m×m, 3×3) products, m = 2 or 4: half (m = 2) or two fifths (m = 4) of the
// multiplications of the direct one.
//
// Split the input by row and column parity into four phase images (a, b): x[2i + a, 2j + b].
// Output pixel (y, x) reads phase rows y − 1, y, y + 1 through taps 2r + a − shift (r = 0, 1, 2;
// shift = 2 − the padding before), so the layer is four stride-1, pad-1 3×3 correlations summed,
// where one parity's phases lack a tap: the odd ones their third (tap 5) with padding 2, the even
// ones their first (tap −1) with padding 1. F(m×m, 3×3) turns each m×m output tile into α²
// elementwise products (α = m + 2) in its transform domain: Y = Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A.
// G's last row reads only the third tap and its first row only the first, so such a phase's
// transformed kernel is zero in its last (or first) row or column, and those products are
// skipped: a tile costs α² + 2α(α − 1) + (α − 1)² products per input and output channel (49 for
// m = 2, 121 for m = 4) where the direct convolution costs 25 m² (100, 400).
//
// The input gradient is the same four correlations run backwards: phase image (a, b) of dx is
// dy correlated (pad 1) with the phase's 3×3 kernel flipped, whose missing tap is then at the
// other end, and so is the transformed kernel's zero row (or column). One transform of dy's
// patch serves the four phases, which become column blocks of the products, and each phase's
// sums transform back into its own pixels of dx.
//
// Per position of the transform domain the products are a matrix product [tiles × (active
// phases · c)] × [(active phases · c) × o] (the input gradient: [tiles × o] × [o × (active
// phases · c)]), each through one 6 × 64 register tile, the transformed kernel U packed per
// position in 64-column panels. Two schedules:
// - blocked (m = 2, the 64 → 128 layer's 3,136 tiles): each thread takes blocks of BLOCK tiles,
//   transforms their patches (V, in L2), runs every position's products and transforms the sums
//   back; U is shared and streams from L2 / L3 once per block.
// - staged (m = 4, the 128 → 256 layer's 256 tiles on 7×7 outputs): the threads transform a
//   chunk of up to CHUNK tiles, then split the positions' products between them, each reading
//   its positions' U once per chunk, then transform the chunk's sums back; barriers between.
//
// The weight gradient is F(m×m, 3×3) transposed: a phase's 3×3 gradient is Gᵀ [Σ_tiles
// (Â E Âᵀ) ⊙ (Bᵀ D B)] G, E a tile's m×m block of dy, D the forward's α×α patch, Â = A. Per
// position that is a product [(active phases · c) × tiles] × [tiles × o] whose sum runs over
// the tiles. Blocked, each thread adds its blocks' products into its own sums and the threads'
// sums are added in order at the end; staged, each position's sum runs over all tiles on one
// thread, chunk after chunk.
//
// Rounding: F(2×2, 3×3)'s transforms use only ±1 and ½; against direct sums in Double the
// outputs are off by up to 6.1e-7 of the largest one, about five units in its last place
// (WinogradTests, which allow 4e-6). F(4×4, 3×3)'s use 4, 5, 8 and sixths: up to 4.8e-6, about
// forty units (the tests allow 2e-5); through a gradient penalty differentiated twice the
// gradients moved by up to 1.25e-4 of their largest element, against 2.9e-5 with 2×2 tiles.
#include "winograd.h"
#include "CSupport.h"
#include "grown_buffer.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
extern void GOMP_barrier(void);
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);

#define LANES 16
#define ROWS 6     // tiles per register tile
#define COLS 64    // output channels per register tile: four vectors
#define BLOCK 48   // tiles a thread transforms at a time, blocked: V and the sums stay in L2 (36–144 measured alike)
#define MAX_POSITIONS 36
#define CHUNK 264  // tiles a staged pass transforms at a time (a multiple of ROWS: the critic's 256 at once)

static int enabled = -1, tile_choice = -1;
static long calls;
static gan_buffer sums_buffer, scratch_buffer;

// Transformed kernels kept with a copy of the weights they came from, one per (pass, tile,
// padding, c, o):
// a WGAN-GP step runs each critic layer's forward and input gradient several times between two
// updates of its weights, and the 128 → 256 layer's transform (16 MB written) took a fifth of
// its pass. A call whose weights equal the copy byte for byte reuses the transform.
#define CACHED 4
typedef struct {
    gan_buffer u, w;
    int valid, data, m, shift, c, o;
    long stamp;
} kernel_entry;
static kernel_entry cached[CACHED];
static long stamps, reused;

long gan_winograd_reused_kernels(void) { return reused; }

static int start_mode(void) {
    const char *v = getenv("GAN_WINOGRAD");
    return v && strcmp(v, "0") == 0 ? 0 : v && strcmp(v, "2") == 0 ? 2 : 1;
}

int gan_winograd_enabled(void) {
    if (enabled < 0) enabled = start_mode();
    return enabled;
}

void gan_winograd_set_enabled(int mode) { enabled = mode < 0 ? 0 : mode > 2 ? 2 : mode; }

int gan_winograd_tile(void) {
    if (tile_choice < 0) {
        const char *v = getenv("GAN_WINOGRAD_TILE");
        tile_choice = v && (strcmp(v, "2") == 0 || strcmp(v, "4") == 0) ? atoi(v) : 0;
    }
    return tile_choice;
}

void gan_winograd_set_tile(int m) { tile_choice = m == 2 || m == 4 ? m : 0; }

long gan_winograd_calls(void) { return calls; }

// The tile side for an output side: 2 where it is even (its tiles cover it exactly), 4 where it
// is odd (7×7: four 4×4 tiles cover 8×8, where 2×2 tiles left a quarter of their work padding
// and their transformed kernel streamed from L3 once per block).
static int tile_for(int side) {
    int forced = gan_winograd_tile();
    return forced ? forced : side % 2 ? 4 : 2;
}

int gan_winograd_fits(gan_dnnl_kind kind, const gan_dnnl_shape *s) {
    int mode = gan_winograd_enabled();
    if (!mode || !s->cl || !gan_cpu_has_avx512f()) return 0;
    if (kind != GAN_DNNL_FORWARD && kind != GAN_DNNL_BACKWARD_DATA && kind != GAN_DNNL_BACKWARD_WEIGHTS) return 0;
    if (s->kh != 5 || s->kw != 5 || s->sh != 2 || s->sw != 2 || s->dh != 1 || s->dw != 1) return 0;
    // Padding 2 before and 1 after (PyTorch's padding 2), or 1 and 2 (Keras's "same").
    if ((s->pt != 1 && s->pt != 2) || s->pl != s->pt || s->pb != 3 - s->pt || s->pr != s->pb) return 0;
    if (s->h != s->w || s->h % 2 || s->oh != s->h / 2 || s->ow != s->oh || s->n < 1) return 0;
    // The side read in vectors of 16 channels, the side written in panels of 64.
    long read = kind == GAN_DNNL_BACKWARD_DATA ? s->o : s->c, written = kind == GAN_DNNL_BACKWARD_DATA ? s->c : s->o;
    if (read < LANES || read % LANES || written < COLS || written % COLS) return 0;
    if (mode == 2) return 1;
    // By default only where there are enough tiles to give each thread whole blocks (small calls
    // spend their time transforming the kernel): 2×2 tiles covering an even side exactly, or
    // 4×4 tiles on an odd side.
    int m = tile_for(s->oh);
    long td = (s->oh + m - 1) / m, tiles = (long)s->n * td * td;
    if (m == 2) return s->oh % 2 == 0 && tiles >= 2 * BLOCK;
    // The 4×4 tiles' weight gradient transforms every tile's patch and dy block whatever o is,
    // and its products scale with o: with 128 outputs (the dcgan generator's 7 → 14 layer) it ran
    // 0.88–0.95× the implicit-GEMM kernels, with 256 (the critic's 128 → 256) 1.29–1.34×
    // (scripts/winograd_bench.c, docs/performance.md, session 38).
    if (kind == GAN_DNNL_BACKWARD_WEIGHTS && s->o < 256) return 0;
    return s->oh % 2 == 1 && tiles >= 128;
}

// The transforms of F(2×2, 3×3) and F(4×4, 3×3) (Lavin and Gray's points 0, ±1, ±2, ±½ for the
// latter): the transformed kernel is G g Gᵀ, the patch's Bᵀ d B, the output Aᵀ M A.
typedef struct {
    float bt[6][6], g[6][3], at[4][6];
} transforms;

static const transforms F2 = {
    .bt = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
    .g = {{1, 0, 0}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0, 0, 1}},
    .at = {{1, 1, 1, 0}, {0, 1, -1, -1}},
};

static const transforms F4 = {
    .bt = {{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
           {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}},
    .g = {{1 / 4.f, 0, 0}, {-1 / 6.f, -1 / 6.f, -1 / 6.f}, {-1 / 6.f, 1 / 6.f, -1 / 6.f},
          {1 / 24.f, 1 / 12.f, 1 / 6.f}, {1 / 24.f, -1 / 12.f, 1 / 6.f}, {0, 0, 1}},
    .at = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}},
};

typedef struct {
    const float *x, *w;  // the input read (x, or dy for the input gradient) and the OIHW weight
    float *y, *u, *scratch;  // the output written (y, or dx)
    long per_thread;  // scratch floats a thread owns
    int data;         // the input gradient
    int weights;      // the weight gradient (x is x, dy is dy, y the OIHW weight gradient)
    const float *dy;
    const transforms *t;
    int m, alpha, positions;  // tile side, transform side, α²
    int n, h, c, o, side, td, tiles;
    int shift;                  // 2 − the padding before: phase a's tap r is 2r + a − shift
    int rows;                   // tiles per V block: BLOCK (blocked), up to CHUNK (staged; the tiles rounded up to ROWS)
    int kp[MAX_POSITIONS];      // rows of position p's product: its active phases · c (the input gradient: o)
    int np[MAX_POSITIONS];      // its columns: o (the input gradient: active phases · c)
    int slot[MAX_POSITIONS][4]; // where phase f's channels start among the phase side's, in units of c (-1: inactive)
    long uoff[MAX_POSITIONS];   // position p's packed kernel in u: [np / COLS][kp][COLS]
    long voff[MAX_POSITIONS];   // position p's rows in V: [rows][lv]
    long lv[MAX_POSITIONS];     // their stride: kp (the weight gradient: kp rounded up to whole register tiles)
    long ld;                    // sums per position and tile: o (the input gradient: 4 · c)
    float *v, *sums;            // staged: V of a chunk of tiles, and their sums [position][rows][ld] (weight gradient: dy's side)
    long vroom;                 // blocked weight gradient: floats before the dy side (V, later the taps' scratch)
    int kernel_ready;           // u already holds this call's transformed kernel
    kernel_entry *fresh;        // else the cache entry u belongs to, valid once the call has run
} plan;

// U = G g Gᵀ for the kernels [first, last) along one side: the input channels in the forward,
// the output channels in the input gradient (whose kernels are flipped, g'[r][q] = g[2 − r][2 − q]).
// For one, the taps of every channel of the other side are set side by side, so that the
// transform runs along that side in vectors (vectorized by the compiler). The kernels go in
// groups of KGROUP whose rows of a panel of u are consecutive (the forward: row slot · c + i,
// columns the output channels; the input gradient: row i, columns slot · c + the input
// channels): their transforms gather in `out` as [phase][position][panel][KGROUP][64] and go to
// u as runs of KGROUP · 64 floats, where kernel by kernel they went as 256 bytes to each of
// hundreds of places (7.3 of the 128 → 256 forward's 27 ms). wt holds 25 · KGROUP · V floats,
// gg 3α · V, out 4 · α² · KGROUP · V.
#define KGROUP 8
__attribute__((target("avx512f")))
static void transform_kernel(const plan *p, int first, int last, float *wt, float *gg, float *out) {
    int C = p->c, flip = p->data, V = p->data ? p->c : p->o, A = p->alpha, P = p->positions;  // V: the side along which it runs
    const float (*G)[3] = p->t->g;
    for (int i0 = first; i0 < last; i0 += KGROUP) {
        int count = last - i0 < KGROUP ? last - i0 : KGROUP;
        for (int j = 0; j < V; j++)  // the group's taps: the forward's kernels of one output channel lie together
            for (int k = 0; k < count; k++) {
                const float *taps = p->w + (flip ? (long)(i0 + k) * C + j : (long)j * C + i0 + k) * 25;
                for (int t = 0; t < 25; t++) wt[((long)k * 25 + t) * V + j] = taps[t];
            }
        for (int k = 0; k < count; k++) {
            for (int f = 0; f < 4; f++) {
                int a = f / 2, b = f % 2;
                for (int xi = 0; xi < A; xi++)
                    for (int q = 0; q < 3; q++) {  // gg[ξ][q] = Σ_r G[ξ][r] g[r][q], g[r][q] tap (2r + a − shift, 2q + b − shift), or flipped
                        float *dst = gg + (xi * 3 + q) * V;
                        memset(dst, 0, sizeof(float) * (size_t)V);
                        int v = 2 * (flip ? 2 - q : q) + b - p->shift;
                        if (v < 0 || v >= 5) continue;
                        for (int r = 0; r < 3; r++) {
                            int t = 2 * (flip ? 2 - r : r) + a - p->shift;
                            if (t < 0 || t >= 5 || G[xi][r] == 0) continue;
                            const float *src = wt + ((long)k * 25 + t * 5 + v) * V;
                            float coef = G[xi][r];
                            for (int j = 0; j < V; j++) dst[j] += coef * src[j];
                        }
                    }
                for (int pos = 0; pos < P; pos++) {
                    if (p->slot[pos][f] < 0) continue;
                    int xi = pos / A, nu = pos % A;
                    const float *g0 = gg + xi * 3 * V, *g1 = g0 + V, *g2 = g1 + V;
                    float c0 = G[nu][0], c1 = G[nu][1], c2 = G[nu][2];
                    float *uu = out + ((long)(f * P + pos) * V) * KGROUP;
                    for (int j0 = 0; j0 < V; j0 += COLS) {  // [panel][kernel k][64]
                        float *dst = uu + ((j0 / COLS) * KGROUP + k) * COLS;
                        for (int j = 0; j < COLS; j++) dst[j] = c0 * g0[j0 + j] + c1 * g1[j0 + j] + c2 * g2[j0 + j];
                    }
                }
            }
        }
        for (int f = 0; f < 4; f++)
            for (int pos = 0; pos < P; pos++) {
                int slot = p->slot[pos][f];
                if (slot < 0) continue;
                const float *uu = out + ((long)(f * P + pos) * V) * KGROUP;
                for (int j = 0; j < V; j += COLS) {
                    long row = flip ? i0 : (long)slot * C + i0, column = flip ? (long)slot * C + j : j;
                    memcpy(p->u + p->uoff[pos] + ((column / COLS) * p->kp[pos] + row) * COLS, uu + (j / COLS) * KGROUP * COLS,
                           sizeof(float) * COLS * (size_t)count);
                }
            }
    }
}

// Σ_k coef[k · cs] x[k · xs] for coefficients known at compile time (the callers inline constant
// tables): zeros skipped, ±1 as additions, so F(2×2, 3×3)'s transforms are adds and subtracts only.
__attribute__((target("avx512f"), always_inline))
static inline __m512 combine(const float *coef, int cs, const __m512 *x, int xs, int n) {
    __m512 s = _mm512_setzero_ps();
    int started = 0;
#pragma clang loop unroll(full)
    for (int k = 0; k < n; k++) {
        float c = coef[k * cs];
        if (c == 0) continue;
        __m512 v = x[k * xs];
        if (!started) s = c == 1 ? v : c == -1 ? _mm512_sub_ps(_mm512_setzero_ps(), v) : _mm512_mul_ps(_mm512_set1_ps(c), v);
        else s = c == 1 ? _mm512_add_ps(s, v) : c == -1 ? _mm512_sub_ps(s, v) : _mm512_fmadd_ps(_mm512_set1_ps(c), v, s);
        started = 1;
    }
    return s;
}

// Bᵀ d B of sixteen channels of an α×α patch (at[i·α + j], NULL: zeros) into dst[position] + c (NULL: not wanted).
__attribute__((target("avx512f"), always_inline))
static inline void transform_patch(const transforms *t, const int A, const float *const *at, int c, float *const *dst) {
    __m512 d[MAX_POSITIONS], u[MAX_POSITIONS];
#pragma clang loop unroll(full)
    for (int i = 0; i < A * A; i++) d[i] = at[i] ? _mm512_loadu_ps(at[i] + c) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
    for (int i = 0; i < A; i++)  // Bᵀ d
#pragma clang loop unroll(full)
        for (int j = 0; j < A; j++) u[i * A + j] = combine(t->bt[i], 1, d + j, A, A);
#pragma clang loop unroll(full)
    for (int i = 0; i < A; i++)  // (Bᵀ d) B
#pragma clang loop unroll(full)
        for (int j = 0; j < A; j++)
            if (dst[i * A + j]) _mm512_storeu_ps(dst[i * A + j] + c, combine(t->bt[j], 1, u + i * A, 1, A));
}

// Aᵀ M A of sixteen channels of one tile's sums (m[position] + c; NULL: zero) into its m×m outputs.
__attribute__((target("avx512f"), always_inline))
static inline void inverse_tile(const transforms *t, const int A, const float *const *m, int c, __m512 y[4][4]) {
    __m512 mm[MAX_POSITIONS], q[6][4];
    const int M = A - 2;
#pragma clang loop unroll(full)
    for (int pos = 0; pos < A * A; pos++) mm[pos] = m[pos] ? _mm512_loadu_ps(m[pos] + c) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
    for (int l = 0; l < A; l++)  // Aᵀ M, column l
#pragma clang loop unroll(full)
        for (int i = 0; i < M; i++) q[l][i] = combine(t->at[i], 1, mm + l, A, A);
#pragma clang loop unroll(full)
    for (int i = 0; i < M; i++)  // (Aᵀ M) A
#pragma clang loop unroll(full)
        for (int j = 0; j < M; j++) y[i][j] = combine(t->at[j], 1, &q[0][i], 4, A);
}

// Â E Âᵀ of sixteen channels of one tile's m×m block of dy (at[i·m + j] + o, NULL: zeros), Â = A
// of F(m×m, 3×3), whose transpose maps the sums back to outputs, into dst[position] + to.
__attribute__((target("avx512f"), always_inline))
static inline void transform_block(const transforms *t, const int A, const float *const *at, int o, float *const *dst, int to) {
    const int M = A - 2;
    __m512 e[16], r[6][4];
#pragma clang loop unroll(full)
    for (int i = 0; i < M * M; i++) e[i] = at[i] ? _mm512_loadu_ps(at[i] + o) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
    for (int xi = 0; xi < A; xi++)
#pragma clang loop unroll(full)
        for (int j = 0; j < M; j++) r[xi][j] = combine(&t->at[0][xi], 6, e + j, M, M);
#pragma clang loop unroll(full)
    for (int xi = 0; xi < A; xi++)
#pragma clang loop unroll(full)
        for (int nu = 0; nu < A; nu++) _mm512_storeu_ps(dst[xi * A + nu] + to, combine(&t->at[0][nu], 6, r[xi], 1, M));
}

// Where tile `tile` lies: its image, and its first output row and column.
static inline void tile_place(const plan *p, int M, int tile, int *img, int *y0, int *x0) {
    int td = p->td;
    *img = tile / (td * td);
    *y0 = M * (tile / td % td);
    *x0 = M * (tile % td);
}

// at[i·n + j] = the pixel (y0 + i, x0 + j) of an S×S grid whose pixel (r, q) is at
// origin + r·rs + q·ps, or NULL outside the grid (a patch's padding, a partial tile's edge).
static inline void grid_pixels(const float *origin, long rs, long ps, int S, int y0, int x0, int n, const float **at) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int r = y0 + i, q = x0 + j;
            at[i * n + j] = r >= 0 && r < S && q >= 0 && q < S ? origin + r * rs + q * ps : NULL;
        }
}

// Runs `fn(p, table, α, …)` with the constant table and α of the plan's tile side: each
// always-inline body below is compiled once per side, its coefficients folded.
#define ON_TILE_SIDE(fn, p, ...) ((p)->m == 2 ? fn(p, &F2, 4, __VA_ARGS__) : fn(p, &F4, 6, __VA_ARGS__))

// V = Bᵀ d B of tile `tile`'s α×α patch in each phase image (zeros outside it), sixteen
// channels at a time, into row `row` of each position where the phase is active.
__attribute__((target("avx512f"), always_inline))
static inline void transform_input_t(const plan *p, const transforms *t, const int A, int tile, float *vb, int row) {
    int H = p->h, C = p->c, img, y0, x0;
    tile_place(p, A - 2, tile, &img, &y0, &x0);
    for (int f = 0; f < 4; f++) {
        int a = f / 2, b = f % 2;
        const float *at[MAX_POSITIONS];  // phase image (a, b): rows 2r + a, columns 2q + b
        grid_pixels(p->x + (((long)img * H + a) * H + b) * C, 2L * H * C, 2L * C, p->side, y0 - 1, x0 - 1, A, at);
        float *dst[MAX_POSITIONS];
        for (int pos = 0; pos < A * A; pos++)
            dst[pos] = p->slot[pos][f] < 0 ? NULL : vb + p->voff[pos] + (long)row * p->lv[pos] + (long)p->slot[pos][f] * C;
        for (int c = 0; c < C; c += LANES) transform_patch(t, A, at, c, dst);
    }
}

__attribute__((target("avx512f")))
static void transform_input(const plan *p, int tile, float *vb, int row) {
    ON_TILE_SIDE(transform_input_t, p, tile, vb, row);
}

// The input gradient's V: Bᵀ d B of tile `tile`'s α×α patch of dy (zeros outside it), the same
// for every phase, into row `row` of every position.
__attribute__((target("avx512f"), always_inline))
static inline void transform_input_data_t(const plan *p, const transforms *t, const int A, int tile, float *vb, int row) {
    int S = p->side, O = p->o, img, y0, x0;
    tile_place(p, A - 2, tile, &img, &y0, &x0);
    const float *at[MAX_POSITIONS];
    grid_pixels(p->x + (long)img * S * S * O, (long)S * O, O, S, y0 - 1, x0 - 1, A, at);
    float *dst[MAX_POSITIONS];
    for (int pos = 0; pos < A * A; pos++) dst[pos] = vb + p->voff[pos] + (long)row * p->lv[pos];
    for (int c = 0; c < O; c += LANES) transform_patch(t, A, at, c, dst);
}

__attribute__((target("avx512f")))
static void transform_input_data(const plan *p, int tile, float *vb, int row) {
    ON_TILE_SIDE(transform_input_data_t, p, tile, vb, row);
}

// c[r][0..64) = Σ_k a[r·ra + k·ka] · b[k·ldb + 0..64) for six rows r (plus c's values where
// `accumulate`), stored for the first `real`: per k four loads and six broadcasts feed 24 FMAs,
// as in implicit_gemm.c's tile512x4. The forward's and input gradient's rows are tiles (a row of
// V each, ka = 1); the weight gradient's are six (phase, channel) entries of V's row k (ra = 1).
__attribute__((target("avx512f"), always_inline))
static inline void product_tile(const float *a, long ra, long ka, const float *b, long ldb, long K, float *c, long ldc,
                                int real, int accumulate) {
    __m512 acc[ROWS][4];
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++)
#pragma clang loop unroll(full)
        for (int q = 0; q < 4; q++)
            acc[r][q] = accumulate && r < real ? _mm512_loadu_ps(c + r * ldc + q * LANES) : _mm512_setzero_ps();
    for (long k = 0; k < K; k++) {
        __m512 bq[4];
#pragma clang loop unroll(full)
        for (int q = 0; q < 4; q++) bq[q] = _mm512_loadu_ps(b + k * ldb + q * LANES);
#pragma clang loop unroll(full)
        for (int r = 0; r < ROWS; r++) {
            __m512 v = _mm512_set1_ps(a[r * ra + k * ka]);
#pragma clang loop unroll(full)
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(v, bq[q], acc[r][q]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++)
        if (r < real)
#pragma clang loop unroll(full)
            for (int q = 0; q < 4; q++) _mm512_storeu_ps(c + r * ldc + q * LANES, acc[r][q]);
}

// The two uses, each compiled with its strides fixed: rows that are tiles (forward, input
// gradient), and the weight gradient's sums over (phase, channel) rows (carried from block to
// block when blocked).
__attribute__((target("avx512f")))
static void product_rows(const float *v, long ldv, const float *u, long K, float *m, long ldm) {
    product_tile(v, ldv, 1, u, COLS, K, m, ldm, ROWS, 0);
}

__attribute__((target("avx512f")))
static void product_sums(const float *v, long ldv, const float *e, long lde, long K, float *s, long lds, int real,
                         int accumulate) {
    product_tile(v, 1, ldv, e, lde, K, s, lds, real, accumulate);
}

// Y = Aᵀ M A of one tile's sums (position pos's at m + pos · stride, [o]) into its (up to) m×m output pixels.
__attribute__((target("avx512f"), always_inline))
static inline void transform_output_t(const plan *p, const transforms *t, const int A, int tile, const float *m, long stride) {
    int S = p->side, O = p->o, M = A - 2, img, y0, x0;
    tile_place(p, M, tile, &img, &y0, &x0);
    const float *at[MAX_POSITIONS];
    for (int pos = 0; pos < A * A; pos++) at[pos] = m + pos * stride;
    for (int oc = 0; oc < O; oc += LANES) {
        __m512 y[4][4];
        inverse_tile(t, A, at, oc, y);
        for (int i = 0; i < M; i++) {
            int oy = y0 + i;
            if (oy >= S) continue;
            for (int j = 0; j < M; j++) {
                int ox = x0 + j;
                if (ox < S) _mm512_storeu_ps(p->y + (((long)img * S + oy) * S + ox) * O + oc, y[i][j]);
            }
        }
    }
}

__attribute__((target("avx512f")))
static void transform_output(const plan *p, int tile, const float *m, long stride) {
    ON_TILE_SIDE(transform_output_t, p, tile, m, stride);
}

// The input gradient's Y = Aᵀ M A of one tile's sums (position pos's at m + pos · stride, [4 · c],
// phase f's at column slot · c; an inactive phase's are zero) into each phase's (up to) m×m pixels of dx.
__attribute__((target("avx512f"), always_inline))
static inline void transform_output_data_t(const plan *p, const transforms *t, const int A, int tile, const float *m,
                                           long stride) {
    int S = p->side, H = p->h, C = p->c, M = A - 2, img, y0, x0;
    tile_place(p, M, tile, &img, &y0, &x0);
    for (int f = 0; f < 4; f++) {
        int a = f / 2, b = f % 2;
        const float *at[MAX_POSITIONS];
        for (int pos = 0; pos < A * A; pos++)
            at[pos] = p->slot[pos][f] < 0 ? NULL : m + pos * stride + (long)p->slot[pos][f] * C;
        for (int c = 0; c < C; c += LANES) {
            __m512 y[4][4];
            inverse_tile(t, A, at, c, y);
            for (int i = 0; i < M; i++) {
                int si = y0 + i;
                if (si >= S) continue;
                for (int j = 0; j < M; j++) {
                    int sj = x0 + j;
                    if (sj < S) _mm512_storeu_ps(p->y + (((long)img * H + 2 * si + a) * H + 2 * sj + b) * C + c, y[i][j]);
                }
            }
        }
    }
}

__attribute__((target("avx512f")))
static void transform_output_data(const plan *p, int tile, const float *m, long stride) {
    ON_TILE_SIDE(transform_output_data_t, p, tile, m, stride);
}

// The weight gradient's dy side: Â E Âᵀ of tile `tile`'s m×m block of dy (zeros outside it)
// into row `row` of each position's [o / 64][rows][64]: a register tile's 64 columns of
// consecutive rows lie together, so the products stream them in order.
__attribute__((target("avx512f"), always_inline))
static inline void transform_dy_t(const plan *p, const transforms *t, const int A, int tile, float *eb, int row) {
    int S = p->side, O = p->o, M = A - 2, img, y0, x0;
    tile_place(p, M, tile, &img, &y0, &x0);
    const float *at[16];
    grid_pixels(p->dy + (long)img * S * S * O, (long)S * O, O, S, y0, x0, M, at);
    float *dst[MAX_POSITIONS];
    for (int o0 = 0; o0 < O; o0 += COLS) {
        for (int pos = 0; pos < A * A; pos++) dst[pos] = eb + (((long)pos * (O / COLS) + o0 / COLS) * p->rows + row) * COLS;
        for (int o = 0; o < COLS; o += LANES) transform_block(t, A, at, o0 + o, dst, o);
    }
}

__attribute__((target("avx512f")))
static void transform_dy(const plan *p, int tile, float *eb, int row) {
    ON_TILE_SIDE(transform_dy_t, p, tile, eb, row);
}

// Scratch floats the kernel transform needs along a side of `wide` channels.
static long kernel_scratch(int alpha, int wide) { return (25L * KGROUP + 3 * alpha + 4L * alpha * alpha * KGROUP) * wide; }

// The kernel transform's share of thread `me`, into its scratch `own` (kernel_scratch floats).
static void transform_kernel_share(const plan *p, int me, int parts, float *own) {
    int kernels = p->data ? p->o : p->c, wide = p->data ? p->c : p->o;  // wide: the side the transform runs along
    transform_kernel(p, kernels * me / parts, kernels * (me + 1) / parts, own, own + 25L * KGROUP * wide,
                     own + (25L * KGROUP + 3 * p->alpha) * wide);
}

static void run_blocked(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads(), P = p->positions;
    float *own = p->scratch + (long)me * p->per_thread;
    if (!p->kernel_ready) {
        transform_kernel_share(p, me, parts, own);
        GOMP_barrier();
    }
    const int T = BLOCK;
    float *vb = own, *mb = own + p->voff[P - 1] + (long)T * p->lv[P - 1];  // mb: [BLOCK][positions][ld]
    int blocks = (p->tiles + T - 1) / T;
    for (int blk = blocks * me / parts; blk < blocks * (me + 1) / parts; blk++) {
        int t0 = blk * T, count = p->tiles - t0 < T ? p->tiles - t0 : T;
        for (int r = 0; r < T; r++) {
            if (r < count) {
                if (p->data) transform_input_data(p, t0 + r, vb, r);
                else transform_input(p, t0 + r, vb, r);
            } else {  // the last block's missing tiles: zeros, whose sums nobody reads
                for (int pos = 0; pos < P; pos++)
                    memset(vb + p->voff[pos] + (long)r * p->lv[pos], 0, sizeof(float) * (size_t)p->kp[pos]);
            }
        }
        for (int pos = 0; pos < P; pos++)
            for (int nb = 0; nb < p->np[pos] / COLS; nb++) {
                const float *u = p->u + p->uoff[pos] + (long)nb * p->kp[pos] * COLS;
                for (int r = 0; r < T; r += ROWS)
                    product_rows(vb + p->voff[pos] + (long)r * p->lv[pos], p->lv[pos], u, p->kp[pos],
                                 mb + ((long)r * P + pos) * p->ld + nb * COLS, (long)P * p->ld);
            }
        for (int r = 0; r < count; r++) {
            const float *m = mb + (long)r * P * p->ld;
            if (p->data) transform_output_data(p, t0 + r, m, p->ld);
            else transform_output(p, t0 + r, m, p->ld);
        }
    }
}

// The staged forward and input gradient, chunk by chunk: the chunk's V, then the positions'
// products split by their cost (position, 64-column panel), then the chunk's outputs.
static void run_staged(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads(), P = p->positions;
    if (!p->kernel_ready) transform_kernel_share(p, me, parts, p->scratch + (long)me * p->per_thread);
    // Work units (position, 64-column panel), each done whole by one thread: those whose
    // cumulative cost (the product's depth) starts in the thread's part of the total.
    long total = 0;
    for (int pos = 0; pos < P; pos++) total += (long)(p->np[pos] / COLS) * p->kp[pos];
    long begin = total * me / parts, end = total * (me + 1) / parts, stride = (long)p->rows * p->ld;
    for (int t0 = 0; t0 < p->tiles; t0 += p->rows) {
        int count = p->tiles - t0 < p->rows ? p->tiles - t0 : p->rows;
        for (int r = count * me / parts; r < count * (me + 1) / parts; r++) {
            if (p->data) transform_input_data(p, t0 + r, p->v, r);
            else transform_input(p, t0 + r, p->v, r);
        }
        if (me == 0)  // the rows past the last tile: zeros, whose sums nobody reads
            for (int pos = 0; pos < P; pos++)
                memset(p->v + p->voff[pos] + (long)count * p->lv[pos], 0, sizeof(float) * (size_t)((p->rows - count) * p->lv[pos]));
        GOMP_barrier();  // V complete (and the kernel's transform); the last chunk's sums read
        long at = 0;
        for (int pos = 0; pos < P; pos++)
            for (int nb = 0; nb < p->np[pos] / COLS; nb++, at += p->kp[pos]) {
                if (at < begin || at >= end) continue;
                const float *u = p->u + p->uoff[pos] + (long)nb * p->kp[pos] * COLS;
                const float *v = p->v + p->voff[pos];
                float *m = p->sums + (long)pos * stride + nb * COLS;
                for (int r = 0; r < count; r += ROWS)
                    product_rows(v + (long)r * p->lv[pos], p->lv[pos], u, p->kp[pos], m + (long)r * p->ld, p->ld);
            }
        GOMP_barrier();  // the sums complete; V free for the next chunk
        for (int r = count * me / parts; r < count * (me + 1) / parts; r++) {
            const float *m = p->sums + (long)r * p->ld;
            if (p->data) transform_output_data(p, t0 + r, m, stride);
            else transform_output(p, t0 + r, m, stride);
        }
    }
}

// dW = Gᵀ S G per phase for input channel ci, S the sum of `count` arrays of sums laid out as
// the forward's packed kernel is (uoff; [kp][o] per position), added in order. The taps gather
// in `scratch` as [tap][o] and go to dW as each output channel's 25 consecutive floats.
// `scratch` holds (α² + 3α + 25) · o floats.
__attribute__((target("avx512f")))
static void weights_to_taps(const plan *p, int ci, const float *const *sums, int count, float *scratch) {
    int A = p->alpha, O = p->o, C = p->c;
    const float (*G)[3] = p->t->g;
    float *sum = scratch, *h = sum + (long)p->positions * O, *taps = h + 3L * A * O;
    for (int f = 0; f < 4; f++) {
        int a = f / 2, b = f % 2;
        const float *s[MAX_POSITIONS];  // one channel's S by position (NULL: an inactive phase's zeros)
        for (int pos = 0; pos < p->positions; pos++) {
            if (p->slot[pos][f] < 0) { s[pos] = NULL; continue; }
            long at = p->uoff[pos] + ((long)p->slot[pos][f] * C + ci) * O;
            if (count == 1) { s[pos] = sums[0] + at; continue; }
            float *dst = sum + pos * O;
            memcpy(dst, sums[0] + at, sizeof(float) * (size_t)O);
            for (int t = 1; t < count; t++)
                for (int o = 0; o < O; o++) dst[o] += sums[t][at + o];
            s[pos] = dst;
        }
        for (int r = 0; r < 3; r++) {  // h[r][ν] = Σ_ξ G[ξ][r] S[ξ][ν]
            int tr = 2 * r + a - p->shift;
            if (tr < 0 || tr >= 5) continue;
            for (int nu = 0; nu < A; nu++) {
                float *dst = h + (r * A + nu) * O;
                memset(dst, 0, sizeof(float) * (size_t)O);
                for (int xi = 0; xi < A; xi++) {
                    const float *src = s[xi * A + nu];
                    float coef = G[xi][r];
                    if (coef != 0 && src)
                        for (int o = 0; o < O; o++) dst[o] += coef * src[o];
                }
            }
            for (int q = 0; q < 3; q++) {  // dW[r][q] = Σ_ν h[r][ν] G[ν][q]
                int tq = 2 * q + b - p->shift;
                if (tq < 0 || tq >= 5) continue;
                float *dst = taps + (tr * 5 + tq) * O;
                memset(dst, 0, sizeof(float) * (size_t)O);
                for (int nu = 0; nu < A; nu++) {
                    const float *src = h + (r * A + nu) * O;
                    float coef = G[nu][q];
                    if (coef != 0)
                        for (int o = 0; o < O; o++) dst[o] += coef * src[o];
                }
            }
        }
    }
    for (int o = 0; o < O; o++) {
        float *dst = p->y + ((long)o * C + ci) * 25;
        for (int t = 0; t < 25; t++) dst[t] = taps[t * O + o];
    }
}

// The blocked weight gradient: each thread sums its tiles' products into its own S (per position
// [kp][o]); after a barrier each thread adds the threads' S in order for a range of input
// channels and maps them back to taps (a phase's missing tap, the only one S's zero row would
// feed, does not exist).
static void run_weights_blocked(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads(), T = BLOCK, O = p->o, C = p->c, P = p->positions;
    float *own = p->scratch + (long)me * p->per_thread;
    float *vb = own, *eb = vb + p->vroom;
    long sums_at = (long)(eb - own) + (long)T * P * O;  // S, [position at uoff][kp][o]
    float *sb = own + sums_at;
    memset(sb, 0, sizeof(float) * (size_t)(p->per_thread - sums_at));
    int blocks = (p->tiles + T - 1) / T;
    for (int blk = blocks * me / parts; blk < blocks * (me + 1) / parts; blk++) {
        int t0 = blk * T, count = p->tiles - t0 < T ? p->tiles - t0 : T;
        for (int r = 0; r < count; r++) {
            transform_input(p, t0 + r, vb, r);
            transform_dy(p, t0 + r, eb, r);
        }
        for (int pos = 0; pos < P; pos++)
            for (int m = 0; m < p->kp[pos]; m += ROWS) {
                int real = p->kp[pos] - m < ROWS ? p->kp[pos] - m : ROWS;
                for (int nb = 0; nb < O / COLS; nb++)
                    product_sums(vb + p->voff[pos] + m, p->lv[pos], eb + ((long)pos * (O / COLS) + nb) * T * COLS, COLS, count,
                                 sb + p->uoff[pos] + (long)m * O + nb * COLS, O, real, 1);
            }
    }
    GOMP_barrier();
    const float *sums[64];
    for (int t = 0; t < parts && t < 64; t++) sums[t] = p->scratch + (long)t * p->per_thread + sums_at;
    for (int ci = C * me / parts; ci < C * (me + 1) / parts; ci++) weights_to_taps(p, ci, sums, parts, own);  // V's space is free now
}

// The staged weight gradient: per chunk of tiles their V and dy sides, then each position's sums
// over them in groups of six rows split between the threads (added to the earlier chunks'), then
// the taps by input channel.
static void run_weights_staged(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads(), O = p->o, C = p->c, P = p->positions;
    int groups = 0;
    for (int pos = 0; pos < P; pos++) groups += (p->kp[pos] + ROWS - 1) / ROWS;
    float *S = p->u;
    for (int t0 = 0; t0 < p->tiles; t0 += p->rows) {
        int count = p->tiles - t0 < p->rows ? p->tiles - t0 : p->rows;
        for (int r = count * me / parts; r < count * (me + 1) / parts; r++) {
            transform_input(p, t0 + r, p->v, r);
            transform_dy(p, t0 + r, p->sums, r);
        }
        GOMP_barrier();
        for (int g = groups * me / parts, pos = 0, before = 0; g < groups * (me + 1) / parts; g++) {
            while (g >= before + (p->kp[pos] + ROWS - 1) / ROWS) before += (p->kp[pos++] + ROWS - 1) / ROWS;
            int m = (g - before) * ROWS, real = p->kp[pos] - m < ROWS ? p->kp[pos] - m : ROWS;
            for (int nb = 0; nb < O / COLS; nb++)
                product_sums(p->v + p->voff[pos] + m, p->lv[pos], p->sums + ((long)pos * (O / COLS) + nb) * p->rows * COLS, COLS,
                             count, S + p->uoff[pos] + (long)m * O + nb * COLS, O, real, t0 > 0);
        }
        GOMP_barrier();
    }
    const float *sums[1] = {S};
    float *own = p->scratch + (long)me * p->per_thread;
    for (int ci = C * me / parts; ci < C * (me + 1) / parts; ci++) weights_to_taps(p, ci, sums, 1, own);
}

// Where this call's transformed kernel goes (uoff floats): its cache entry's, with p->kernel_ready
// set where the entry was made from equal weights, else p->fresh; NULL when memory runs out.
static float *kernel_for(plan *p, long uoff) {
    long wn = (long)p->o * p->c * 25;
    kernel_entry *e = NULL;
    for (int i = 0; i < CACHED && !e; i++)
        if (cached[i].valid && cached[i].data == p->data && cached[i].m == p->m && cached[i].shift == p->shift &&
            cached[i].c == p->c && cached[i].o == p->o)
            e = &cached[i];
    if (e && memcmp(e->w.p, p->w, sizeof(float) * (size_t)wn) == 0) {
        p->kernel_ready = 1;
        e->stamp = ++stamps;
        reused++;
        return e->u.p;
    }
    if (!e) {  // the least recently used entry
        e = &cached[0];
        for (int i = 1; i < CACHED; i++)
            if (!cached[i].valid || (e->valid && cached[i].stamp < e->stamp)) e = &cached[i];
    }
    e->valid = 0;  // until the transform has run
    float *u = gan_grown(&e->u, sizeof(float) * (size_t)uoff), *w = gan_grown(&e->w, sizeof(float) * (size_t)wn);
    if (!u || !w) return NULL;
    memcpy(w, p->w, sizeof(float) * (size_t)wn);
    e->data = p->data; e->m = p->m; e->shift = p->shift; e->c = p->c; e->o = p->o;
    e->stamp = ++stamps;
    p->fresh = e;
    return u;
}

int gan_winograd_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *s, const float *a, const float *b, float *out,
                             int threads) {
    if (!gan_winograd_fits(kind, s) || threads < 1 || threads > 64) return 1;
    static plan p;  // callers hold dnnl_convolution's lock
    memset(&p, 0, sizeof p);
    p.x = a; p.w = b; p.y = out; p.dy = b;
    p.data = kind == GAN_DNNL_BACKWARD_DATA;
    p.weights = kind == GAN_DNNL_BACKWARD_WEIGHTS;
    p.m = tile_for(s->oh);
    p.t = p.m == 2 ? &F2 : &F4;
    p.alpha = p.m + 2;
    p.positions = p.alpha * p.alpha;
    int staged = p.m == 4;
    p.n = s->n; p.h = s->h; p.c = s->c; p.o = s->o; p.side = s->oh; p.td = (s->oh + p.m - 1) / p.m;
    p.tiles = p.n * p.td * p.td;
    p.rows = !staged ? BLOCK : p.tiles < CHUNK ? (p.tiles + ROWS - 1) / ROWS * ROWS : CHUNK;
    p.ld = p.data ? 4L * p.c : p.o;
    // A phase whose 3×3 kernel lacks a tap: with padding 2 the odd phases lack their third
    // (2r + 1 = 5), with padding 1 the even ones their first (2r − 1 = −1). G's last row reads
    // only the third tap and its first row only the first, so that row (column) of the
    // transformed kernel is zero: the last or the first, the other way round in the input
    // gradient (its kernel is flipped). zero[parity]: the index, or -1.
    p.shift = 2 - s->pt;
    int last = p.alpha - 1, zero[2];
    zero[0] = p.shift ? (p.data ? last : 0) : -1;
    zero[1] = p.shift ? -1 : (p.data ? 0 : last);
    long uoff = 0, voff = 0;
    for (int pos = 0; pos < p.positions; pos++) {
        int xi = pos / p.alpha, nu = pos % p.alpha, active = 0;
        for (int f = 0; f < 4; f++) {
            int a = f / 2, b = f % 2;
            p.slot[pos][f] = xi == zero[a] || nu == zero[b] ? -1 : active++;
        }
        p.kp[pos] = p.data ? p.o : active * p.c;
        p.np[pos] = p.data ? active * p.c : p.o;
        p.uoff[pos] = uoff; uoff += (long)p.kp[pos] * p.np[pos];
        // The weight gradient's tiles read six consecutive entries of a V row: whole tiles' worth.
        p.lv[pos] = p.weights ? (p.kp[pos] + ROWS - 1) / ROWS * ROWS : p.kp[pos];
        p.voff[pos] = voff; voff += (long)p.rows * p.lv[pos];
    }
    int wide = p.c > p.o ? p.c : p.o;
    if (staged) {
        // u: the transformed kernel (the weight gradient: S, laid out alike); the scratch: V of
        // every tile, the sums (the weight gradient: dy's side, [positions][rows][o]), then each
        // thread's room for its kernel transform or its channels' taps.
        long sums = (long)p.positions * p.rows * p.ld;
        p.per_thread = (kernel_scratch(p.alpha, wide) + (long)(p.positions + 3 * p.alpha + 25) * p.o + LANES - 1) / LANES * LANES;
        long head = (voff + sums + LANES - 1) / LANES * LANES;
        p.u = p.weights ? gan_grown(&sums_buffer, sizeof(float) * (size_t)uoff) : kernel_for(&p, uoff);
        float *all = p.u ? gan_grown(&scratch_buffer, sizeof(float) * (size_t)(head + p.per_thread * threads)) : NULL;
        if (!all) return 1;
        p.v = all;
        p.sums = all + voff;
        p.scratch = all + head;
        GOMP_parallel(p.weights ? run_weights_staged : run_staged, &p, (unsigned)threads, 0);
        if (p.fresh) p.fresh->valid = 1;
        calls++;
        return 0;
    }
    if (p.weights) {
        // V, the dy side [positions][BLOCK][o], then S (laid out as the forward's packed kernel: uoff).
        long taps = (long)(p.positions + 3 * p.alpha + 25) * p.o;
        p.vroom = ((voff > taps ? voff : taps) + LANES - 1) / LANES * LANES;
        p.per_thread = (p.vroom + (long)BLOCK * p.positions * p.o + uoff + LANES - 1) / LANES * LANES;
        p.scratch = gan_grown(&scratch_buffer, sizeof(float) * (size_t)(p.per_thread * threads));
        if (!p.scratch) return 1;
        GOMP_parallel(run_weights_blocked, &p, (unsigned)threads, 0);
        calls++;
        return 0;
    }
    long sums = (long)BLOCK * p.positions * p.ld;
    p.per_thread = (voff + sums + LANES - 1) / LANES * LANES;  // also holds the kernel transform's scratch
    if (p.per_thread < kernel_scratch(p.alpha, wide)) p.per_thread = kernel_scratch(p.alpha, wide);
    p.u = kernel_for(&p, uoff);
    p.scratch = p.u ? gan_grown(&scratch_buffer, sizeof(float) * (size_t)(p.per_thread * threads)) : NULL;
    if (!p.scratch) return 1;
    GOMP_parallel(run_blocked, &p, (unsigned)threads, 0);
    if (p.fresh) p.fresh->valid = 1;
    calls++;
    return 0;
}
#endif
