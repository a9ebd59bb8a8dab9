// The Winograd passes' kernels, included by winograd.c once per instruction set: with WG_ISA
// the target ("avx512f" or "avx2,fma"), WG(f) the function's name for it, VEC its vector of VL
// floats, TQ the vectors of a register tile's row, and VLOAD … VSET1 its intrinsics. Each copy
// does the same float operations in the same order, so the two give the same bits.
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
__attribute__((target(WG_ISA)))
static void WG(transform_kernel)(const plan *p, int first, int last, float *wt, float *gg, float *out) {
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
__attribute__((target(WG_ISA), always_inline))
static inline VEC WG(combine)(const float *coef, int cs, const VEC *x, int xs, int n) {
    VEC s = VZERO();
    int started = 0;
#pragma clang loop unroll(full)
    for (int k = 0; k < n; k++) {
        float c = coef[k * cs];
        if (c == 0) continue;
        VEC v = x[k * xs];
        if (!started) s = c == 1 ? v : c == -1 ? VSUB(VZERO(), v) : VMUL(VSET1(c), v);
        else s = c == 1 ? VADD(s, v) : c == -1 ? VSUB(s, v) : VFMA(VSET1(c), v, s);
        started = 1;
    }
    return s;
}

// Bᵀ d B of a vector of channels of an α×α patch (at[i·α + j], NULL: zeros) into dst[position] + c (NULL: not wanted).
__attribute__((target(WG_ISA), always_inline))
static inline void WG(transform_patch)(const transforms *t, const int A, const float *const *at, int c, float *const *dst) {
    VEC d[MAX_POSITIONS], u[MAX_POSITIONS];
#pragma clang loop unroll(full)
    for (int i = 0; i < A * A; i++) d[i] = at[i] ? VLOAD(at[i] + c) : VZERO();
#pragma clang loop unroll(full)
    for (int i = 0; i < A; i++)  // Bᵀ d
#pragma clang loop unroll(full)
        for (int j = 0; j < A; j++) u[i * A + j] = WG(combine)(t->bt[i], 1, d + j, A, A);
#pragma clang loop unroll(full)
    for (int i = 0; i < A; i++)  // (Bᵀ d) B
#pragma clang loop unroll(full)
        for (int j = 0; j < A; j++)
            if (dst[i * A + j]) VSTORE(dst[i * A + j] + c, WG(combine)(t->bt[j], 1, u + i * A, 1, A));
}

// Aᵀ M A of a vector of channels of one tile's sums (m[position] + c; NULL: zero) into its m×m outputs.
__attribute__((target(WG_ISA), always_inline))
static inline void WG(inverse_tile)(const transforms *t, const int A, const float *const *m, int c, VEC y[4][4]) {
    VEC mm[MAX_POSITIONS], q[6][4];
    const int M = A - 2;
#pragma clang loop unroll(full)
    for (int pos = 0; pos < A * A; pos++) mm[pos] = m[pos] ? VLOAD(m[pos] + c) : VZERO();
#pragma clang loop unroll(full)
    for (int l = 0; l < A; l++)  // Aᵀ M, column l
#pragma clang loop unroll(full)
        for (int i = 0; i < M; i++) q[l][i] = WG(combine)(t->at[i], 1, mm + l, A, A);
#pragma clang loop unroll(full)
    for (int i = 0; i < M; i++)  // (Aᵀ M) A
#pragma clang loop unroll(full)
        for (int j = 0; j < M; j++) y[i][j] = WG(combine)(t->at[j], 1, &q[0][i], 4, A);
}

// Â E Âᵀ of a vector of channels of one tile's m×m block of dy (at[i·m + j] + o, NULL: zeros), Â = A
// of F(m×m, 3×3), whose transpose maps the sums back to outputs, into dst[position] + to.
__attribute__((target(WG_ISA), always_inline))
static inline void WG(transform_block)(const transforms *t, const int A, const float *const *at, int o, float *const *dst, int to) {
    const int M = A - 2;
    VEC e[16], r[6][4];
#pragma clang loop unroll(full)
    for (int i = 0; i < M * M; i++) e[i] = at[i] ? VLOAD(at[i] + o) : VZERO();
#pragma clang loop unroll(full)
    for (int xi = 0; xi < A; xi++)
#pragma clang loop unroll(full)
        for (int j = 0; j < M; j++) r[xi][j] = WG(combine)(&t->at[0][xi], 6, e + j, M, M);
#pragma clang loop unroll(full)
    for (int xi = 0; xi < A; xi++)
#pragma clang loop unroll(full)
        for (int nu = 0; nu < A; nu++) VSTORE(dst[xi * A + nu] + to, WG(combine)(&t->at[0][nu], 6, r[xi], 1, M));
}

// V = Bᵀ d B of tile `tile`'s α×α patch in each phase image (zeros outside it), a vector of
// channels at a time, into row `row` of each position where the phase is active.
__attribute__((target(WG_ISA), always_inline))
static inline void WG(transform_input_t)(const plan *p, const transforms *t, const int A, int tile, float *vb, int row) {
    int H = p->h, C = p->c, img, y0, x0;
    tile_place(p, A - 2, tile, &img, &y0, &x0);
    for (int f = 0; f < 4; f++) {
        int a = f / 2, b = f % 2;
        const float *at[MAX_POSITIONS];  // phase image (a, b): rows 2r + a, columns 2q + b
        grid_pixels(p->x + (((long)img * H + a) * H + b) * C, 2L * H * C, 2L * C, p->side, y0 - 1, x0 - 1, A, at);
        float *dst[MAX_POSITIONS];
        for (int pos = 0; pos < A * A; pos++)
            dst[pos] = p->slot[pos][f] < 0 ? NULL : vb + p->voff[pos] + (long)row * p->lv[pos] + (long)p->slot[pos][f] * C;
        for (int c = 0; c < C; c += VL) WG(transform_patch)(t, A, at, c, dst);
    }
}

__attribute__((target(WG_ISA)))
static void WG(transform_input)(const plan *p, int tile, float *vb, int row) {
    ON_TILE_SIDE(WG(transform_input_t), p, tile, vb, row);
}

// The input gradient's V: Bᵀ d B of tile `tile`'s α×α patch of dy (zeros outside it), the same
// for every phase, into row `row` of every position.
__attribute__((target(WG_ISA), always_inline))
static inline void WG(transform_input_data_t)(const plan *p, const transforms *t, const int A, int tile, float *vb, int row) {
    int S = p->side, O = p->o, img, y0, x0;
    tile_place(p, A - 2, tile, &img, &y0, &x0);
    const float *at[MAX_POSITIONS];
    grid_pixels(p->x + (long)img * S * S * O, (long)S * O, O, S, y0 - 1, x0 - 1, A, at);
    float *dst[MAX_POSITIONS];
    for (int pos = 0; pos < A * A; pos++) dst[pos] = vb + p->voff[pos] + (long)row * p->lv[pos];
    for (int c = 0; c < O; c += VL) WG(transform_patch)(t, A, at, c, dst);
}

__attribute__((target(WG_ISA)))
static void WG(transform_input_data)(const plan *p, int tile, float *vb, int row) {
    ON_TILE_SIDE(WG(transform_input_data_t), p, tile, vb, row);
}

// c[r][0..64) = Σ_k a[r·ra + k·ka] · b[k·ldb + 0..64) for six rows r (plus c's values where
// `accumulate`), stored for the first `real`, TQ vectors of columns at a time: with AVX-512 the
// whole 64 (per k four loads and six broadcasts feed 24 FMAs, as in implicit_gemm.c's
// tile512x4); with AVX2 16 columns in each of four passes (two loads and six broadcasts feed
// twelve FMAs: twelve accumulators of sixteen registers). Each sum runs over k in order either
// way, so both give the same bits. The forward's and input gradient's rows are tiles (a row of
// V each, ka = 1); the weight gradient's are six (phase, channel) entries of V's row k (ra = 1).
__attribute__((target(WG_ISA), always_inline))
static inline void WG(product_tile)(const float *a, long ra, long ka, const float *b, long ldb, long K, float *c, long ldc,
                                    int real, int accumulate) {
    for (int q0 = 0; q0 < COLS; q0 += TQ * VL) {
        VEC acc[ROWS][TQ];
#pragma clang loop unroll(full)
        for (int r = 0; r < ROWS; r++)
#pragma clang loop unroll(full)
            for (int q = 0; q < TQ; q++)
                acc[r][q] = accumulate && r < real ? VLOAD(c + r * ldc + q0 + q * VL) : VZERO();
        for (long k = 0; k < K; k++) {
            VEC bq[TQ];
#pragma clang loop unroll(full)
            for (int q = 0; q < TQ; q++) bq[q] = VLOAD(b + k * ldb + q0 + q * VL);
#pragma clang loop unroll(full)
            for (int r = 0; r < ROWS; r++) {
                VEC v = VSET1(a[r * ra + k * ka]);
#pragma clang loop unroll(full)
                for (int q = 0; q < TQ; q++) acc[r][q] = VFMA(v, bq[q], acc[r][q]);
            }
        }
#pragma clang loop unroll(full)
        for (int r = 0; r < ROWS; r++)
            if (r < real)
#pragma clang loop unroll(full)
                for (int q = 0; q < TQ; q++) VSTORE(c + r * ldc + q0 + q * VL, acc[r][q]);
    }
}

// The two uses, each compiled with its strides fixed: rows that are tiles (forward, input
// gradient), and the weight gradient's sums over (phase, channel) rows (carried from block to
// block when blocked).
__attribute__((target(WG_ISA)))
static void WG(product_rows)(const float *v, long ldv, const float *u, long K, float *m, long ldm) {
    WG(product_tile)(v, ldv, 1, u, COLS, K, m, ldm, ROWS, 0);
}

__attribute__((target(WG_ISA)))
static void WG(product_sums)(const float *v, long ldv, const float *e, long lde, long K, float *s, long lds, int real,
                         int accumulate) {
    WG(product_tile)(v, 1, ldv, e, lde, K, s, lds, real, accumulate);
}

// Stores a tile's m×m output vectors, pixel (i, j) at base + (y0 + i) · row + (x0 + j) · col, leaving
// out those past the side S (the last tiles' overhang).
__attribute__((target(WG_ISA), always_inline))
static inline void WG(store_tile)(VEC y[4][4], int M, int y0, int x0, int S, float *base, long row, long col) {
    for (int i = 0; i < M && y0 + i < S; i++)
        for (int j = 0; j < M && x0 + j < S; j++) VSTORE(base + (y0 + i) * row + (x0 + j) * col, y[i][j]);
}

// Y = Aᵀ M A of one tile's sums (position pos's at m + pos · stride, [o]) into its (up to) m×m output pixels.
__attribute__((target(WG_ISA), always_inline))
static inline void WG(transform_output_t)(const plan *p, const transforms *t, const int A, int tile, const float *m, long stride) {
    int S = p->side, O = p->o, M = A - 2, img, y0, x0;
    tile_place(p, M, tile, &img, &y0, &x0);
    const float *at[MAX_POSITIONS];
    for (int pos = 0; pos < A * A; pos++) at[pos] = m + pos * stride;
    for (int oc = 0; oc < O; oc += VL) {
        VEC y[4][4];
        WG(inverse_tile)(t, A, at, oc, y);
        WG(store_tile)(y, M, y0, x0, S, p->y + (long)img * S * S * O + oc, (long)S * O, O);
    }
}

__attribute__((target(WG_ISA)))
static void WG(transform_output)(const plan *p, int tile, const float *m, long stride) {
    ON_TILE_SIDE(WG(transform_output_t), p, tile, m, stride);
}

// The input gradient's Y = Aᵀ M A of one tile's sums (position pos's at m + pos · stride, [4 · c],
// phase f's at column slot · c; an inactive phase's are zero) into each phase's (up to) m×m pixels of dx.
__attribute__((target(WG_ISA), always_inline))
static inline void WG(transform_output_data_t)(const plan *p, const transforms *t, const int A, int tile, const float *m,
                                           long stride) {
    int S = p->side, H = p->h, C = p->c, M = A - 2, img, y0, x0;
    tile_place(p, M, tile, &img, &y0, &x0);
    for (int f = 0; f < 4; f++) {
        int a = f / 2, b = f % 2;
        const float *at[MAX_POSITIONS];
        for (int pos = 0; pos < A * A; pos++)
            at[pos] = p->slot[pos][f] < 0 ? NULL : m + pos * stride + (long)p->slot[pos][f] * C;
        for (int c = 0; c < C; c += VL) {
            VEC y[4][4];
            WG(inverse_tile)(t, A, at, c, y);
            // Phase (a, b)'s pixel (si, sj) is dx's (2·si + a, 2·sj + b).
            WG(store_tile)(y, M, y0, x0, S, p->y + (((long)img * H + a) * H + b) * C + c, 2L * H * C, 2L * C);
        }
    }
}

__attribute__((target(WG_ISA)))
static void WG(transform_output_data)(const plan *p, int tile, const float *m, long stride) {
    ON_TILE_SIDE(WG(transform_output_data_t), p, tile, m, stride);
}

// The weight gradient's dy side: Â E Âᵀ of tile `tile`'s m×m block of dy (zeros outside it)
// into row `row` of each position's [o / 64][rows][64]: a register tile's 64 columns of
// consecutive rows lie together, so the products stream them in order.
__attribute__((target(WG_ISA), always_inline))
static inline void WG(transform_dy_t)(const plan *p, const transforms *t, const int A, int tile, float *eb, int row) {
    int S = p->side, O = p->o, M = A - 2, img, y0, x0;
    tile_place(p, M, tile, &img, &y0, &x0);
    const float *at[16];
    grid_pixels(p->dy + (long)img * S * S * O, (long)S * O, O, S, y0, x0, M, at);
    float *dst[MAX_POSITIONS];
    for (int o0 = 0; o0 < O; o0 += COLS) {
        for (int pos = 0; pos < A * A; pos++) dst[pos] = eb + (((long)pos * (O / COLS) + o0 / COLS) * p->rows + row) * COLS;
        for (int o = 0; o < COLS; o += VL) WG(transform_block)(t, A, at, o0 + o, dst, o);
    }
}

__attribute__((target(WG_ISA)))
static void WG(transform_dy)(const plan *p, int tile, float *eb, int row) {
    ON_TILE_SIDE(WG(transform_dy_t), p, tile, eb, row);
}

// The kernel transform's share of thread `me`, into its scratch `own` (kernel_scratch floats).
static void WG(transform_kernel_share)(const plan *p, int me, int parts, float *own) {
    int kernels = p->data ? p->o : p->c, wide = p->data ? p->c : p->o;  // wide: the side the transform runs along
    WG(transform_kernel)(p, kernels * me / parts, kernels * (me + 1) / parts, own, own + 25L * KGROUP * wide,
                     own + (25L * KGROUP + 3 * p->alpha) * wide);
}

static void WG(run_blocked)(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads(), P = p->positions;
    float *own = p->scratch + (long)me * p->per_thread;
    if (!p->kernel_ready) {
        WG(transform_kernel_share)(p, me, parts, own);
        GOMP_barrier();
    }
    const int T = BLOCK;
    float *vb = own, *mb = own + p->voff[P - 1] + (long)T * p->lv[P - 1];  // mb: [BLOCK][positions][ld]
    int blocks = (p->tiles + T - 1) / T;
    for (int blk = blocks * me / parts; blk < blocks * (me + 1) / parts; blk++) {
        int t0 = blk * T, count = p->tiles - t0 < T ? p->tiles - t0 : T;
        for (int r = 0; r < T; r++) {
            if (r < count) {
                if (p->data) WG(transform_input_data)(p, t0 + r, vb, r);
                else WG(transform_input)(p, t0 + r, vb, r);
            } else {  // the last block's missing tiles: zeros, whose sums nobody reads
                for (int pos = 0; pos < P; pos++)
                    memset(vb + p->voff[pos] + (long)r * p->lv[pos], 0, sizeof(float) * (size_t)p->kp[pos]);
            }
        }
        for (int pos = 0; pos < P; pos++)
            for (int nb = 0; nb < p->np[pos] / COLS; nb++) {
                const float *u = p->u + p->uoff[pos] + (long)nb * p->kp[pos] * COLS;
                for (int r = 0; r < T; r += ROWS)
                    WG(product_rows)(vb + p->voff[pos] + (long)r * p->lv[pos], p->lv[pos], u, p->kp[pos],
                                 mb + ((long)r * P + pos) * p->ld + nb * COLS, (long)P * p->ld);
            }
        for (int r = 0; r < count; r++) {
            const float *m = mb + (long)r * P * p->ld;
            if (p->data) WG(transform_output_data)(p, t0 + r, m, p->ld);
            else WG(transform_output)(p, t0 + r, m, p->ld);
        }
    }
}

// The staged forward and input gradient, chunk by chunk: the chunk's V, then the positions'
// products split by their cost (position, 64-column panel), then the chunk's outputs.
static void WG(run_staged)(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads(), P = p->positions;
    if (!p->kernel_ready) WG(transform_kernel_share)(p, me, parts, p->scratch + (long)me * p->per_thread);
    // Work units (position, 64-column panel), each done whole by one thread: those whose
    // cumulative cost (the product's depth) starts in the thread's part of the total.
    long total = 0;
    for (int pos = 0; pos < P; pos++) total += (long)(p->np[pos] / COLS) * p->kp[pos];
    long begin = total * me / parts, end = total * (me + 1) / parts, stride = (long)p->rows * p->ld;
    for (int t0 = 0; t0 < p->tiles; t0 += p->rows) {
        int count = p->tiles - t0 < p->rows ? p->tiles - t0 : p->rows;
        for (int r = count * me / parts; r < count * (me + 1) / parts; r++) {
            if (p->data) WG(transform_input_data)(p, t0 + r, p->v, r);
            else WG(transform_input)(p, t0 + r, p->v, r);
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
                    WG(product_rows)(v + (long)r * p->lv[pos], p->lv[pos], u, p->kp[pos], m + (long)r * p->ld, p->ld);
            }
        GOMP_barrier();  // the sums complete; V free for the next chunk
        for (int r = count * me / parts; r < count * (me + 1) / parts; r++) {
            const float *m = p->sums + (long)r * p->ld;
            if (p->data) WG(transform_output_data)(p, t0 + r, m, stride);
            else WG(transform_output)(p, t0 + r, m, stride);
        }
    }
}

// dW = Gᵀ S G per phase for input channel ci, S the sum of `count` arrays of sums laid out as
// the forward's packed kernel is (uoff; [kp][o] per position), added in order. The taps gather
// in `scratch` as [tap][o] and go to dW as each output channel's 25 consecutive floats.
// `scratch` holds (α² + 3α + 25) · o floats.
__attribute__((target(WG_ISA)))
static void WG(weights_to_taps)(const plan *p, int ci, const float *const *sums, int count, float *scratch) {
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
static void WG(run_weights_blocked)(void *arg) {
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
            WG(transform_input)(p, t0 + r, vb, r);
            WG(transform_dy)(p, t0 + r, eb, r);
        }
        for (int pos = 0; pos < P; pos++)
            for (int m = 0; m < p->kp[pos]; m += ROWS) {
                int real = p->kp[pos] - m < ROWS ? p->kp[pos] - m : ROWS;
                for (int nb = 0; nb < O / COLS; nb++)
                    WG(product_sums)(vb + p->voff[pos] + m, p->lv[pos], eb + ((long)pos * (O / COLS) + nb) * T * COLS, COLS, count,
                                 sb + p->uoff[pos] + (long)m * O + nb * COLS, O, real, 1);
            }
    }
    GOMP_barrier();
    const float *sums[64];
    for (int t = 0; t < parts && t < 64; t++) sums[t] = p->scratch + (long)t * p->per_thread + sums_at;
    for (int ci = C * me / parts; ci < C * (me + 1) / parts; ci++) WG(weights_to_taps)(p, ci, sums, parts, own);  // V's space is free now
}

// The staged weight gradient: per chunk of tiles their V and dy sides, then each position's sums
// over them in groups of six rows split between the threads (added to the earlier chunks'), then
// the taps by input channel.
static void WG(run_weights_staged)(void *arg) {
    const plan *p = arg;
    int me = omp_get_thread_num(), parts = omp_get_num_threads(), O = p->o, C = p->c, P = p->positions;
    int groups = 0;
    for (int pos = 0; pos < P; pos++) groups += (p->kp[pos] + ROWS - 1) / ROWS;
    float *S = p->u;
    for (int t0 = 0; t0 < p->tiles; t0 += p->rows) {
        int count = p->tiles - t0 < p->rows ? p->tiles - t0 : p->rows;
        for (int r = count * me / parts; r < count * (me + 1) / parts; r++) {
            WG(transform_input)(p, t0 + r, p->v, r);
            WG(transform_dy)(p, t0 + r, p->sums, r);
        }
        GOMP_barrier();
        for (int g = groups * me / parts, pos = 0, before = 0; g < groups * (me + 1) / parts; g++) {
            while (g >= before + (p->kp[pos] + ROWS - 1) / ROWS) before += (p->kp[pos++] + ROWS - 1) / ROWS;
            int m = (g - before) * ROWS, real = p->kp[pos] - m < ROWS ? p->kp[pos] - m : ROWS;
            for (int nb = 0; nb < O / COLS; nb++)
                WG(product_sums)(p->v + p->voff[pos] + m, p->lv[pos], p->sums + ((long)pos * (O / COLS) + nb) * p->rows * COLS, COLS,
                             count, S + p->uoff[pos] + (long)m * O + nb * COLS, O, real, t0 > 0);
        }
        GOMP_barrier();
    }
    const float *sums[1] = {S};
    float *own = p->scratch + (long)me * p->per_thread;
    for (int ci = C * me / parts; ci < C * (me + 1) / parts; ci++) WG(weights_to_taps)(p, ci, sums, 1, own);
}

