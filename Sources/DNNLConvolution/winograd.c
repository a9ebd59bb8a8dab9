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
// phases · c)]), each through one 6 × 64 register tile (with AVX2 in four 16-column passes),
// the transformed kernel U packed per position in 64-column panels. Two schedules:
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
static long calls, calls_4x4;
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

// The kernels' vectors: AVX-512's where the CPU has it (unless a test turned them off, to
// compare with the AVX2 copy's bits), else AVX2's; 0: neither, the path is off.
static int wide_off;
void gan_winograd_set_wide_vectors(int on) { wide_off = !on; }
int gan_winograd_wide_vectors(void) { return gan_cpu_has_avx512f() && !wide_off; }
static int vector_bits(void) { return gan_winograd_wide_vectors() ? 512 : gan_cpu_has_avx2() ? 256 : 0; }

long gan_winograd_calls(void) { return calls; }
long gan_winograd_calls_4x4(void) { return calls_4x4; }

// The tile side a call pays with: 4 where the output side is odd (7×7: four 4×4 tiles cover 8×8,
// where 2×2 tiles left a quarter of their work padding and their transformed kernel streamed
// from L3 once per block); on an even side 2 (its tiles cover it exactly), but with AVX2 4 where
// both sides have 128 channels or more: the dcgan generator's 14 → 28 layer, whose 4×4 tiles
// (a quarter of them padding, two fifths of the multiplications) ran the dcgan step 1.04–1.07×
// as fast (`--alternate`, three runs of 16 block pairs), while the critic's 64 → 128 layer ran
// its step 0.96–0.97× with them (session 44). On AVX-512 2×2 tiles were faster there (session 37).
static int natural_tile(const gan_dnnl_shape *s) {
    if (s->oh % 2) return 4;
    return vector_bits() == 256 && s->c >= 128 && s->o >= 128 ? 4 : 2;
}

// The tile side a call runs with: the forced one (GAN_WINOGRAD_TILE) or its natural one.
static int tile_for(const gan_dnnl_shape *s) {
    int forced = gan_winograd_tile();
    return forced ? forced : natural_tile(s);
}

int gan_winograd_fits(gan_dnnl_kind kind, const gan_dnnl_shape *s) {
    int mode = gan_winograd_enabled();
    if (!mode || !s->cl || !vector_bits()) return 0;
    if (kind != GAN_DNNL_FORWARD && kind != GAN_DNNL_BACKWARD_DATA && kind != GAN_DNNL_BACKWARD_WEIGHTS) return 0;
    if (s->kh != 5 || s->kw != 5 || s->sh != 2 || s->sw != 2 || s->dh != 1 || s->dw != 1) return 0;
    // Padding 2 before and 1 after (PyTorch's padding 2), or 1 and 2 (Keras's "same").
    if ((s->pt != 1 && s->pt != 2) || s->pl != s->pt || s->pb != 3 - s->pt || s->pr != s->pb) return 0;
    if (s->h != s->w || s->h % 2 || s->oh != s->h / 2 || s->ow != s->oh || s->n < 1) return 0;
    // The side read in vectors of 16 channels, the side written in panels of 64.
    long read = kind == GAN_DNNL_BACKWARD_DATA ? s->o : s->c, written = kind == GAN_DNNL_BACKWARD_DATA ? s->c : s->o;
    if (read < LANES || read % LANES || written < COLS || written % COLS) return 0;
    if (mode == 2) return 1;
    // By default only with the tile side that pays (a forced other side leaves the call to the
    // other kernels) and where there are enough tiles to give each thread whole blocks (small
    // calls spend their time transforming the kernel).
    int m = tile_for(s);
    if (m != natural_tile(s)) return 0;
    long td = (s->oh + m - 1) / m, tiles = (long)s->n * td * td;
    if (m == 2) return tiles >= 2 * BLOCK;
    // The 4×4 tiles' weight gradient transforms every tile's patch and dy block whatever o is,
    // and its products scale with o: with AVX-512, with 128 outputs (the dcgan generator's 7 → 14
    // layer) it ran 0.88–0.95× the implicit-GEMM kernels, with 256 (the critic's 128 → 256)
    // 1.29–1.34× (scripts/winograd_bench.c, docs/performance-log.md, session 38). With AVX2 the
    // kernels it replaces are slower: 128 outputs ran 1.35–1.41× them (session 44).
    if (kind == GAN_DNNL_BACKWARD_WEIGHTS && s->o < 256 && vector_bits() == 512) return 0;
    return tiles >= 128;
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

#define KGROUP 8

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

// Scratch floats the kernel transform needs along a side of `wide` channels.
static long kernel_scratch(int alpha, int wide) { return (25L * KGROUP + 3 * alpha + 4L * alpha * alpha * KGROUP) * wide; }

// Each pass's kernels, compiled for AVX-512 and for AVX2 + FMA (winograd_kernels.h).
#define WG_ISA "avx512f"
#define WG(f) f##_512
#define VEC __m512
#define VL 16
#define TQ 4
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VZERO _mm512_setzero_ps
#define VADD _mm512_add_ps
#define VSUB _mm512_sub_ps
#define VMUL _mm512_mul_ps
#define VFMA _mm512_fmadd_ps
#define VSET1 _mm512_set1_ps
#include "winograd_kernels.h"
#undef WG_ISA
#undef WG
#undef VEC
#undef VL
#undef TQ
#undef VLOAD
#undef VSTORE
#undef VZERO
#undef VADD
#undef VSUB
#undef VMUL
#undef VFMA
#undef VSET1
#define WG_ISA "avx2,fma"
#define WG(f) f##_256
#define VEC __m256
#define VL 8
#define TQ 2
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VZERO _mm256_setzero_ps
#define VADD _mm256_add_ps
#define VSUB _mm256_sub_ps
#define VMUL _mm256_mul_ps
#define VFMA _mm256_fmadd_ps
#define VSET1 _mm256_set1_ps
#include "winograd_kernels.h"

// Each instruction set's four schedules, picked once a call.
typedef struct {
    void (*blocked)(void *), (*staged)(void *), (*weights_blocked)(void *), (*weights_staged)(void *);
} schedules;
static const schedules avx512_schedules = {run_blocked_512, run_staged_512, run_weights_blocked_512, run_weights_staged_512};
static const schedules avx2_schedules = {run_blocked_256, run_staged_256, run_weights_blocked_256, run_weights_staged_256};

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
    const schedules *run = vector_bits() == 512 ? &avx512_schedules : &avx2_schedules;
    memset(&p, 0, sizeof p);
    p.x = a; p.w = b; p.y = out; p.dy = b;
    p.data = kind == GAN_DNNL_BACKWARD_DATA;
    p.weights = kind == GAN_DNNL_BACKWARD_WEIGHTS;
    p.m = tile_for(s);
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
        GOMP_parallel(p.weights ? run->weights_staged : run->staged, &p, (unsigned)threads, 0);
        if (p.fresh) p.fresh->valid = 1;
        calls++;
        calls_4x4++;
        return 0;
    }
    if (p.weights) {
        // V, the dy side [positions][BLOCK][o], then S (laid out as the forward's packed kernel: uoff).
        long taps = (long)(p.positions + 3 * p.alpha + 25) * p.o;
        p.vroom = ((voff > taps ? voff : taps) + LANES - 1) / LANES * LANES;
        p.per_thread = (p.vroom + (long)BLOCK * p.positions * p.o + uoff + LANES - 1) / LANES * LANES;
        p.scratch = gan_grown(&scratch_buffer, sizeof(float) * (size_t)(p.per_thread * threads));
        if (!p.scratch) return 1;
        GOMP_parallel(run->weights_blocked, &p, (unsigned)threads, 0);
        calls++;
        return 0;
    }
    long sums = (long)BLOCK * p.positions * p.ld;
    p.per_thread = (voff + sums + LANES - 1) / LANES * LANES;  // also holds the kernel transform's scratch
    if (p.per_thread < kernel_scratch(p.alpha, wide)) p.per_thread = kernel_scratch(p.alpha, wide);
    p.u = kernel_for(&p, uoff);
    p.scratch = p.u ? gan_grown(&scratch_buffer, sizeof(float) * (size_t)(p.per_thread * threads)) : NULL;
    if (!p.scratch) return 1;
    GOMP_parallel(run->blocked, &p, (unsigned)threads, 0);
    if (p.fresh) p.fresh->valid = 1;
    calls++;
    return 0;
}
#endif
