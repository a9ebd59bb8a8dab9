#ifdef __linux__
// The forward, input gradient and weight gradient of a 5×5, stride-2, pad-2 channels-last
// convolution as Winograd F(2×2, 3×3) products: half the multiplications of the direct one.
//
// Split the input by row and column parity into four phase images (a, b): x[2i + a, 2j + b].
// Output pixel (y, x) reads phase rows y − 1, y, y + 1 through taps 2r + a (r = 0, 1, 2), so the
// layer is four stride-1, pad-1 3×3 correlations summed, where an odd phase's third tap (tap 5)
// is zero. F(2×2, 3×3) turns each 2×2 output tile into sixteen elementwise products in a 4×4
// transform domain: Y = Aᵀ [Σ_c (G g Gᵀ) ⊙ (Bᵀ d B)] A. G's fourth row reads only the third tap,
// so an odd phase's transformed kernel is zero in its fourth row (or column), and those products
// are skipped: a tile costs 9·4 + 3·2 + 3·2 + 1 = 49 products per input and output channel where
// the direct convolution costs 4 · 25 = 100.
//
// The input gradient is the same four correlations run backwards: phase image (a, b) of dx is
// dy correlated (pad 1) with the phase's 3×3 kernel flipped, whose first tap is the zero one for
// an odd phase, so there the transformed kernel's first row (or column) is zero. One transform
// of dy's patch serves the four phases, which become column blocks of the products, and each
// phase's sums transform back into its own pixels of dx.
//
// Per position of the transform domain the products are a matrix product [tiles × (active
// phases · c)] × [(active phases · c) × o] (the input gradient: [tiles × o] × [o × (active
// phases · c)]). Each thread takes blocks of BLOCK tiles: it
// transforms their input patches (V, in L2), runs the sixteen products through one 6 × 64
// register tile (the transformed kernel U, packed per position in 64-column panels, is shared by
// the threads and streams from L2 / L3), and transforms the sums back into output pixels.
//
// The weight gradient is F(2×2, 3×3) transposed: a phase's 3×3 gradient is Gᵀ [Σ_tiles
// (Â E Âᵀ) ⊙ (Bᵀ D B)] G, E a tile's 2×2 block of dy, D the forward's 4×4 patch, Â = A. Per
// position that is a product [(active phases · c) × tiles] × [tiles × o] whose sum runs over
// the tiles: each thread adds its blocks' products into its own sums, and the threads' sums are
// added in order and mapped back to taps at the end.
//
// Rounding: F(2×2, 3×3)'s transforms use only ±1 and ½; against direct sums in Double the
// outputs are off by up to 6.1e-7 of the largest one, about five units in its last place
// (WinogradTests, which allow 4e-6).
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
#define BLOCK 48   // tiles a thread transforms at a time: V and the sums stay in L2 (36–144 measured alike)
#define POSITIONS 16

static int enabled = -1;
static long calls;
static gan_buffer kernel_buffer, scratch_buffer;

static int start_mode(void) {
    const char *v = getenv("GAN_WINOGRAD");
    return v && strcmp(v, "0") == 0 ? 0 : v && strcmp(v, "2") == 0 ? 2 : 1;
}

int gan_winograd_enabled(void) {
    if (enabled < 0) enabled = start_mode();
    return enabled;
}

void gan_winograd_set_enabled(int mode) { enabled = mode < 0 ? 0 : mode > 2 ? 2 : mode; }

long gan_winograd_calls(void) { return calls; }

int gan_winograd_fits(gan_dnnl_kind kind, const gan_dnnl_shape *s) {
    int mode = gan_winograd_enabled();
    if (!mode || !s->cl || !gan_cpu_has_avx512f()) return 0;
    if (kind != GAN_DNNL_FORWARD && kind != GAN_DNNL_BACKWARD_DATA && kind != GAN_DNNL_BACKWARD_WEIGHTS) return 0;
    if (s->kh != 5 || s->kw != 5 || s->sh != 2 || s->sw != 2 || s->dh != 1 || s->dw != 1) return 0;
    if (s->pt != 2 || s->pl != 2 || s->pb != 1 || s->pr != 1) return 0;
    if (s->h != s->w || s->h % 2 || s->oh != s->h / 2 || s->ow != s->oh || s->n < 1) return 0;
    // The side read in vectors of 16 channels, the side written in panels of 64.
    long read = kind == GAN_DNNL_BACKWARD_DATA ? s->o : s->c, written = kind == GAN_DNNL_BACKWARD_DATA ? s->c : s->o;
    if (read < LANES || read % LANES || written < COLS || written % COLS) return 0;
    // By default only where the tiles cover the output exactly and there are enough of them to
    // give each thread whole blocks (small calls spend their time transforming the kernel).
    long tiles = (long)s->n * ((s->oh + 1) / 2) * ((s->oh + 1) / 2);
    return mode == 2 || (s->oh % 2 == 0 && tiles >= 2 * BLOCK);
}

typedef struct {
    const float *x, *w;  // the input read (x, or dy for the input gradient) and the OIHW weight
    float *y, *u, *scratch;  // the output written (y, or dx)
    long per_thread;  // scratch floats a thread owns
    int data;         // the input gradient
    int weights;      // the weight gradient (x is x, dy is dy, y the OIHW weight gradient)
    const float *dy;
    int n, h, c, o, side, td, tiles;
    int kp[POSITIONS];          // rows of position p's product: its active phases · c (the input gradient: o)
    int np[POSITIONS];          // its columns: o (the input gradient: active phases · c)
    int slot[POSITIONS][4];     // where phase f's channels start among the phase side's, in units of c (-1: inactive)
    long uoff[POSITIONS];       // position p's packed kernel in u: [np / COLS][kp][COLS]
    long voff[POSITIONS];       // position p's rows in a thread's V block: [BLOCK][lv]
    long lv[POSITIONS];         // their stride: kp (the weight gradient: kp rounded up to whole register tiles)
    long ld;                    // sums per position and tile: o (the input gradient: 4 · c)
} plan;

// G of F(2×2, 3×3): the transformed kernel is G g Gᵀ.
static const float G[4][3] = {{1, 0, 0}, {.5f, .5f, .5f}, {.5f, -.5f, .5f}, {0, 0, 1}};

// U = G g Gᵀ for the kernels [first, last) along one side: the input channels in the forward,
// the output channels in the input gradient (whose kernels are flipped, g'[r][q] = g[2 − r][2 − q]).
// For one, the taps of every channel of the other side are set side by side, so that the
// transform runs along that side in vectors (vectorized by the compiler); then each active
// position's 64-float pieces go to their panels of u (the forward: row slot · c + i, columns
// the output channels; the input gradient: row i, columns slot · c + the input channels).
static void transform_kernel(const plan *p, int first, int last, float *wt, float *gg, float *uu) {
    int C = p->c, flip = p->data, V = p->data ? p->c : p->o;  // V: the side along which it runs
    for (int i = first; i < last; i++) {
        for (int j = 0; j < V; j++) {
            const float *taps = p->w + (flip ? (long)i * C + j : (long)j * C + i) * 25;
            for (int t = 0; t < 25; t++) wt[t * V + j] = taps[t];
        }
        for (int f = 0; f < 4; f++) {
            int a = f / 2, b = f % 2;
            for (int xi = 0; xi < 4; xi++)
                for (int q = 0; q < 3; q++) {  // gg[ξ][q] = Σ_r G[ξ][r] g[r][q], g[r][q] tap (2r + a, 2q + b), or flipped
                    float *dst = gg + (xi * 3 + q) * V;
                    memset(dst, 0, sizeof(float) * (size_t)V);
                    int v = 2 * (flip ? 2 - q : q) + b;
                    if (v >= 5) continue;
                    for (int r = 0; r < 3; r++) {
                        int t = 2 * (flip ? 2 - r : r) + a;
                        if (t >= 5 || G[xi][r] == 0) continue;
                        const float *src = wt + (t * 5 + v) * V;
                        float coef = G[xi][r];
                        for (int j = 0; j < V; j++) dst[j] += coef * src[j];
                    }
                }
            for (int pos = 0; pos < POSITIONS; pos++) {
                int xi = pos / 4, nu = pos % 4, slot = p->slot[pos][f];
                if (slot < 0) continue;
                const float *g0 = gg + xi * 3 * V, *g1 = g0 + V, *g2 = g1 + V;
                float c0 = G[nu][0], c1 = G[nu][1], c2 = G[nu][2];
                for (int j = 0; j < V; j++) uu[j] = c0 * g0[j] + c1 * g1[j] + c2 * g2[j];
                for (int j = 0; j < V; j += COLS) {
                    long row = flip ? i : (long)slot * C + i, column = flip ? (long)slot * C + j : j;
                    memcpy(p->u + p->uoff[pos] + ((column / COLS) * p->kp[pos] + row) * COLS, uu + j, sizeof(float) * COLS);
                }
            }
        }
    }
}

// Bᵀ d B of sixteen channels of a 4×4 patch (NULL rows: zeros) into dst[position] + c (NULL: not wanted).
__attribute__((target("avx512f")))
static inline void transform_patch(const float *const at[4][4], int c, float *const dst[POSITIONS]) {
    __m512 d[4][4], t[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) d[i][j] = at[i][j] ? _mm512_loadu_ps(at[i][j] + c) : _mm512_setzero_ps();
    for (int j = 0; j < 4; j++) {  // Bᵀ d
        t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
        t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
        t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
        t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
    }
    for (int i = 0; i < 4; i++) {  // (Bᵀ d) B
        __m512 v[4] = {_mm512_sub_ps(t[i][0], t[i][2]), _mm512_add_ps(t[i][1], t[i][2]),
                       _mm512_sub_ps(t[i][2], t[i][1]), _mm512_sub_ps(t[i][1], t[i][3])};
        for (int j = 0; j < 4; j++)
            if (dst[i * 4 + j]) _mm512_storeu_ps(dst[i * 4 + j] + c, v[j]);
    }
}

// V = Bᵀ d B of tile `tile`'s 4×4 patch in each phase image (zeros outside it), sixteen
// channels at a time, into row `row` of each position where the phase is active.
__attribute__((target("avx512f")))
static void transform_input(const plan *p, int tile, float *vb, int row) {
    int S = p->side, H = p->h, C = p->c, td = p->td;
    int img = tile / (td * td), ty = tile / td % td, tx = tile % td;
    const float *image = p->x + (long)img * H * H * C;
    for (int f = 0; f < 4; f++) {
        int a = f / 2, b = f % 2;
        const float *at[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                int si = 2 * ty - 1 + i, sj = 2 * tx - 1 + j;
                at[i][j] = si >= 0 && si < S && sj >= 0 && sj < S ? image + ((long)(2 * si + a) * H + 2 * sj + b) * C : NULL;
            }
        float *dst[POSITIONS];
        for (int pos = 0; pos < POSITIONS; pos++)
            dst[pos] = p->slot[pos][f] < 0 ? NULL : vb + p->voff[pos] + (long)row * p->lv[pos] + (long)p->slot[pos][f] * C;
        for (int c = 0; c < C; c += LANES) transform_patch((const float *const(*)[4])at, c, dst);
    }
}

// The input gradient's V: Bᵀ d B of tile `tile`'s 4×4 patch of dy (zeros outside it), the same
// for every phase, into row `row` of every position.
__attribute__((target("avx512f")))
static void transform_input_data(const plan *p, int tile, float *vb, int row) {
    int S = p->side, O = p->o, td = p->td;
    int img = tile / (td * td), ty = tile / td % td, tx = tile % td;
    const float *image = p->x + (long)img * S * S * O;
    const float *at[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int si = 2 * ty - 1 + i, sj = 2 * tx - 1 + j;
            at[i][j] = si >= 0 && si < S && sj >= 0 && sj < S ? image + ((long)si * S + sj) * O : NULL;
        }
    float *dst[POSITIONS];
    for (int pos = 0; pos < POSITIONS; pos++) dst[pos] = vb + p->voff[pos] + (long)row * p->lv[pos];
    for (int c = 0; c < O; c += LANES) transform_patch((const float *const(*)[4])at, c, dst);
}

// c[r][0..64) = Σ_k a[r·ra + k·ka] · b[k·ldb + 0..64) for six rows r (plus c's values where
// `accumulate`), stored for the first `real`: per k four loads and six broadcasts feed 24 FMAs,
// as in implicit_gemm.c's tile512x4. The forward's and input gradient's rows are tiles (a row of
// V each, ka = 1); the weight gradient's are six (phase, channel) entries of V's row k (ra = 1),
// its sums carried from block to block.
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
// gradient), and the weight gradient's carried sums over (phase, channel) rows.
__attribute__((target("avx512f")))
static void product_rows(const float *v, long ldv, const float *u, long K, float *m, long ldm) {
    product_tile(v, ldv, 1, u, COLS, K, m, ldm, ROWS, 0);
}

__attribute__((target("avx512f")))
static void product_sums(const float *v, long ldv, const float *e, long lde, long K, float *s, long lds, int real) {
    product_tile(v, 1, ldv, e, lde, K, s, lds, real, 1);
}

// Aᵀ M A of sixteen channels of one tile's sums (m[position] + c; NULL: zero) into its 2×2 outputs.
__attribute__((target("avx512f"), always_inline))
static inline void inverse_tile(const float *const m[POSITIONS], int c, __m512 y[2][2]) {
    __m512 mm[POSITIONS], q[4][2];
    for (int pos = 0; pos < POSITIONS; pos++) mm[pos] = m[pos] ? _mm512_loadu_ps(m[pos] + c) : _mm512_setzero_ps();
    for (int j = 0; j < 4; j++) {  // Aᵀ M, column j
        q[j][0] = _mm512_add_ps(_mm512_add_ps(mm[j], mm[4 + j]), mm[8 + j]);
        q[j][1] = _mm512_sub_ps(_mm512_sub_ps(mm[4 + j], mm[8 + j]), mm[12 + j]);
    }
    for (int i = 0; i < 2; i++) {  // (Aᵀ M) A
        y[i][0] = _mm512_add_ps(_mm512_add_ps(q[0][i], q[1][i]), q[2][i]);
        y[i][1] = _mm512_sub_ps(_mm512_sub_ps(q[1][i], q[2][i]), q[3][i]);
    }
}

// Y = Aᵀ M A of one tile's sums (m: [position][o]) into its (up to) 2×2 output pixels.
__attribute__((target("avx512f")))
static void transform_output(const plan *p, int tile, const float *m) {
    int S = p->side, O = p->o, td = p->td;
    int img = tile / (td * td), ty = tile / td % td, tx = tile % td;
    const float *at[POSITIONS];
    for (int pos = 0; pos < POSITIONS; pos++) at[pos] = m + pos * O;
    for (int oc = 0; oc < O; oc += LANES) {
        __m512 y[2][2];
        inverse_tile(at, oc, y);
        for (int i = 0; i < 2; i++) {
            int oy = 2 * ty + i, ox = 2 * tx;
            if (oy >= S) continue;
            float *dst = p->y + (((long)img * S + oy) * S + ox) * O + oc;
            _mm512_storeu_ps(dst, y[i][0]);
            if (ox + 1 < S) _mm512_storeu_ps(dst + O, y[i][1]);
        }
    }
}

// The input gradient's Y = Aᵀ M A of one tile's sums (m: [position][4 · c], phase f's at
// column slot · c; an inactive phase's are zero) into each phase's (up to) 2×2 pixels of dx.
__attribute__((target("avx512f")))
static void transform_output_data(const plan *p, int tile, const float *m) {
    int S = p->side, H = p->h, C = p->c, td = p->td;
    int img = tile / (td * td), ty = tile / td % td, tx = tile % td;
    for (int f = 0; f < 4; f++) {
        int a = f / 2, b = f % 2;
        const float *at[POSITIONS];
        for (int pos = 0; pos < POSITIONS; pos++)
            at[pos] = p->slot[pos][f] < 0 ? NULL : m + pos * p->ld + (long)p->slot[pos][f] * C;
        for (int c = 0; c < C; c += LANES) {
            __m512 y[2][2];
            inverse_tile(at, c, y);
            for (int i = 0; i < 2; i++) {
                int si = 2 * ty + i, sj = 2 * tx;
                if (si >= S) continue;
                float *dst = p->y + (((long)img * H + 2 * si + a) * H + 2 * sj + b) * C + c;
                _mm512_storeu_ps(dst, y[i][0]);
                if (sj + 1 < S) _mm512_storeu_ps(dst + 2 * C, y[i][1]);
            }
        }
    }
}

static void run(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads();
    float *own = p->scratch + (long)me * p->per_thread;
    int kernels = p->data ? p->o : p->c, wide = p->data ? p->c : p->o;  // wide: the side the transform runs along
    transform_kernel(p, kernels * me / parts, kernels * (me + 1) / parts, own, own + 25 * wide, own + 37 * wide);
    GOMP_barrier();
    const int T = BLOCK;
    float *vb = own, *mb = own + p->voff[POSITIONS - 1] + (long)T * p->lv[POSITIONS - 1];  // mb: [BLOCK][16][ld]
    int blocks = (p->tiles + T - 1) / T;
    for (int blk = blocks * me / parts; blk < blocks * (me + 1) / parts; blk++) {
        int t0 = blk * T, count = p->tiles - t0 < T ? p->tiles - t0 : T;
        for (int r = 0; r < T; r++) {
            if (r < count) {
                if (p->data) transform_input_data(p, t0 + r, vb, r);
                else transform_input(p, t0 + r, vb, r);
            } else {  // the last block's missing tiles: zeros, whose sums nobody reads
                for (int pos = 0; pos < POSITIONS; pos++)
                    memset(vb + p->voff[pos] + (long)r * p->lv[pos], 0, sizeof(float) * (size_t)p->kp[pos]);
            }
        }
        for (int pos = 0; pos < POSITIONS; pos++)
            for (int nb = 0; nb < p->np[pos] / COLS; nb++) {
                const float *u = p->u + p->uoff[pos] + (long)nb * p->kp[pos] * COLS;
                for (int r = 0; r < T; r += ROWS)
                    product_rows(vb + p->voff[pos] + (long)r * p->lv[pos], p->lv[pos], u, p->kp[pos],
                                 mb + ((long)r * POSITIONS + pos) * p->ld + nb * COLS, (long)POSITIONS * p->ld);
            }
        for (int r = 0; r < count; r++) {
            if (p->data) transform_output_data(p, t0 + r, mb + (long)r * POSITIONS * p->ld);
            else transform_output(p, t0 + r, mb + (long)r * POSITIONS * p->ld);
        }
    }
}

// The weight gradient's dy side: Â E Âᵀ of tile `tile`'s 2×2 block of dy (zeros outside it),
// Â = [1 0; 1 1; 1 −1; 0 −1] (A of F(2×2, 3×3), whose transpose maps the sums back to outputs),
// into row `row` of each position's [BLOCK][o] rows.
__attribute__((target("avx512f")))
static void transform_dy(const plan *p, int tile, float *eb, int row) {
    int S = p->side, O = p->o, td = p->td, T = BLOCK;
    int img = tile / (td * td), ty = tile / td % td, tx = tile % td;
    const float *at[2][2];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            int oy = 2 * ty + i, ox = 2 * tx + j;
            at[i][j] = oy < S && ox < S ? p->dy + (((long)img * S + oy) * S + ox) * O : NULL;
        }
    for (int o = 0; o < O; o += LANES) {
        __m512 e[2][2], r[4][2];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) e[i][j] = at[i][j] ? _mm512_loadu_ps(at[i][j] + o) : _mm512_setzero_ps();
        for (int j = 0; j < 2; j++) {
            r[0][j] = e[0][j];
            r[1][j] = _mm512_add_ps(e[0][j], e[1][j]);
            r[2][j] = _mm512_sub_ps(e[0][j], e[1][j]);
            r[3][j] = _mm512_sub_ps(_mm512_setzero_ps(), e[1][j]);
        }
        for (int xi = 0; xi < 4; xi++) {
            __m512 v[4] = {r[xi][0], _mm512_add_ps(r[xi][0], r[xi][1]), _mm512_sub_ps(r[xi][0], r[xi][1]),
                           _mm512_sub_ps(_mm512_setzero_ps(), r[xi][1])};
            for (int nu = 0; nu < 4; nu++) _mm512_storeu_ps(eb + ((long)(xi * 4 + nu) * T + row) * O + o, v[nu]);
        }
    }
}

// The weight gradient: each thread sums its tiles' products into its own S (per position
// [kp][o]); after a barrier each thread adds the threads' S in order for a range of input
// channels and maps them back to taps, dW = Gᵀ S G per phase (an odd phase's third tap, the
// only one S's zero fourth row would feed, does not exist).
static void run_weights(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads(), T = BLOCK, O = p->o, C = p->c;
    float *own = p->scratch + (long)me * p->per_thread;
    float *vb = own, *eb = vb + p->voff[POSITIONS - 1] + (long)T * p->lv[POSITIONS - 1];
    long sums_at = (long)(eb - own) + (long)T * POSITIONS * O;  // S, [position at uoff][kp][o]
    float *sb = own + sums_at;
    memset(sb, 0, sizeof(float) * (size_t)(p->per_thread - sums_at));
    int blocks = (p->tiles + T - 1) / T;
    for (int blk = blocks * me / parts; blk < blocks * (me + 1) / parts; blk++) {
        int t0 = blk * T, count = p->tiles - t0 < T ? p->tiles - t0 : T;
        for (int r = 0; r < count; r++) {
            transform_input(p, t0 + r, vb, r);
            transform_dy(p, t0 + r, eb, r);
        }
        for (int pos = 0; pos < POSITIONS; pos++)
            for (int m = 0; m < p->kp[pos]; m += ROWS) {
                int real = p->kp[pos] - m < ROWS ? p->kp[pos] - m : ROWS;
                for (int nb = 0; nb < O / COLS; nb++)
                    product_sums(vb + p->voff[pos] + m, p->lv[pos], eb + (long)pos * T * O + nb * COLS, O, count,
                                 sb + p->uoff[pos] + (long)m * O + nb * COLS, O, real);
            }
    }
    GOMP_barrier();
    float *sum = own, *h = own + POSITIONS * O;  // V's space is free now: one channel's S summed, then Gᵀ S by rows
    for (int ci = C * me / parts; ci < C * (me + 1) / parts; ci++)
        for (int f = 0; f < 4; f++) {
            int a = f / 2, b = f % 2;
            for (int pos = 0; pos < POSITIONS; pos++) {
                float *dst = sum + pos * O;
                memset(dst, 0, sizeof(float) * (size_t)O);
                if (p->slot[pos][f] < 0) continue;
                for (int t = 0; t < parts; t++) {
                    const float *src = p->scratch + (long)t * p->per_thread + sums_at + p->uoff[pos] + ((long)p->slot[pos][f] * C + ci) * O;
                    for (int o = 0; o < O; o++) dst[o] += src[o];
                }
            }
            for (int r = 0; r < 3; r++) {  // h[r][ν] = Σ_ξ G[ξ][r] S[ξ][ν]
                if (2 * r + a >= 5) continue;
                for (int nu = 0; nu < 4; nu++) {
                    float *dst = h + (r * 4 + nu) * O;
                    memset(dst, 0, sizeof(float) * (size_t)O);
                    for (int xi = 0; xi < 4; xi++)
                        if (G[xi][r] != 0)
                            for (int o = 0; o < O; o++) dst[o] += G[xi][r] * sum[(xi * 4 + nu) * O + o];
                }
                for (int q = 0; q < 3; q++) {  // dW[r][q] = Σ_ν h[r][ν] G[ν][q]
                    if (2 * q + b >= 5) continue;
                    long tap = (2 * r + a) * 5 + 2 * q + b;
                    const float *h0 = h + r * 4 * O;
                    for (int o = 0; o < O; o++) {
                        float v = 0;
                        for (int nu = 0; nu < 4; nu++) v += G[nu][q] * h0[nu * O + o];
                        p->y[((long)o * C + ci) * 25 + tap] = v;
                    }
                }
            }
        }
}

int gan_winograd_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *s, const float *a, const float *b, float *out,
                             int threads) {
    if (!gan_winograd_fits(kind, s) || threads < 1) return 1;
    static plan p;  // callers hold dnnl_convolution's lock
    memset(&p, 0, sizeof p);
    p.x = a; p.w = b; p.y = out; p.dy = b;
    p.data = kind == GAN_DNNL_BACKWARD_DATA;
    p.weights = kind == GAN_DNNL_BACKWARD_WEIGHTS;
    p.n = s->n; p.h = s->h; p.c = s->c; p.o = s->o; p.side = s->oh; p.td = (s->oh + 1) / 2;
    p.tiles = p.n * p.td * p.td;
    p.ld = p.data ? 4L * p.c : p.o;
    // An odd phase's zero row (column) of the transformed kernel: the fourth in the forward, the
    // first in the input gradient (its kernel is flipped).
    int zero = p.data ? 0 : 3;
    long uoff = 0, voff = 0;
    for (int pos = 0; pos < POSITIONS; pos++) {
        int xi = pos / 4, nu = pos % 4, active = 0;
        for (int f = 0; f < 4; f++) {
            int a = f / 2, b = f % 2;
            p.slot[pos][f] = (a && xi == zero) || (b && nu == zero) ? -1 : active++;
        }
        p.kp[pos] = p.data ? p.o : active * p.c;
        p.np[pos] = p.data ? active * p.c : p.o;
        p.uoff[pos] = uoff; uoff += (long)p.kp[pos] * p.np[pos];
        // The weight gradient's tiles read six consecutive entries of a V row: whole tiles' worth.
        p.lv[pos] = p.weights ? (p.kp[pos] + ROWS - 1) / ROWS * ROWS : p.kp[pos];
        p.voff[pos] = voff; voff += (long)BLOCK * p.lv[pos];
    }
    if (p.weights) {
        // V, the dy side [16][BLOCK][o], then S (laid out as the forward's packed kernel: uoff).
        p.per_thread = (voff + (long)BLOCK * POSITIONS * p.o + uoff + LANES - 1) / LANES * LANES;
        p.scratch = gan_grown(&scratch_buffer, sizeof(float) * (size_t)(p.per_thread * threads));
        if (!p.scratch) return 1;
        GOMP_parallel(run_weights, &p, (unsigned)threads, 0);
        calls++;
        return 0;
    }
    long sums = (long)BLOCK * POSITIONS * p.ld;
    p.per_thread = (voff + sums + LANES - 1) / LANES * LANES;  // also holds the kernel transform's 38 · max(c, o)
    p.u = gan_grown(&kernel_buffer, sizeof(float) * (size_t)uoff);
    p.scratch = p.u ? gan_grown(&scratch_buffer, sizeof(float) * (size_t)(p.per_thread * threads)) : NULL;
    if (!p.scratch) return 1;
    GOMP_parallel(run, &p, (unsigned)threads, 0);
    calls++;
    return 0;
}
#endif
