#ifdef __linux__
// Convolutions through oneDNN's JIT kernels. Each distinct (kind, shape) gets a cached entry:
// the primitive and the reorders between plain and blocked layouts. Creating a primitive
// JIT-compiles code (milliseconds), so the cache is what makes per-step calls cheap. The blocked
// copies and oneDNN's scratchpad live in four buffers shared by all entries (grown as needed),
// so the memory they take is that of the largest call, not of every shape seen.
#include "dnnl_convolution.h"
#include "CSupport.h"
#include "channel_epilogue.h"
#include "grown_buffer.h"
#include "implicit_gemm.h"
#include "winograd.h"
#include "small_output_convolution.h"
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <xmmintrin.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CACHE_SIZE 96

typedef struct {
    dnnl_primitive_t reorder;  // plain → blocked for inputs, blocked → plain for the output; NULL if same
    dnnl_memory_t plain, blocked;
    size_t bytes;  // of the blocked copy
} role;

typedef struct {
    int used;
    int pinned;  // in use by a running chain: not to be evicted
    int nhwc;    // activations channels-last (see `wants_nhwc`), else the layout oneDNN prefers
    gan_dnnl_kind kind;
    gan_dnnl_shape shape;
    dnnl_primitive_t prim;
    role a, b, out;
    int arg_a, arg_b, arg_out;
    dnnl_memory_t scratchpad;
    size_t scratchpad_bytes;
} entry;

// libgomp's entry points (the runtime Debian's oneDNN is built with), declared here because
// clang's OpenMP lowering targets a different runtime.
extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int);

static void flush_denormals(void *unused) {
    (void)unused;
    _mm_setcsr(_mm_getcsr() | 0x8040);  // FTZ | DAZ
}

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static int ready = -1;  // -1 not tried, 0 failed, 1 ready
static entry cache[CACHE_SIZE];
static int next_slot;

static gan_buffer shared[5];  // blocked a, blocked b, blocked out, scratchpad, small-output scratch

static int setup_role(role *r, const dnnl_memory_desc_t *plain_md, const dnnl_memory_desc_t *prim_md, int is_output) {
    if (dnnl_memory_create(&r->plain, plain_md, engine, DNNL_MEMORY_NONE) != dnnl_success) return 1;
    if (dnnl_memory_desc_equal(plain_md, prim_md)) { r->blocked = NULL; r->reorder = NULL; return 0; }
    if (dnnl_memory_create(&r->blocked, prim_md, engine, DNNL_MEMORY_NONE) != dnnl_success) return 1;
    r->bytes = dnnl_memory_desc_get_size(prim_md);
    dnnl_primitive_desc_t rpd;
    const dnnl_memory_desc_t *from = is_output ? prim_md : plain_md, *to = is_output ? plain_md : prim_md;
    if (dnnl_reorder_primitive_desc_create(&rpd, from, engine, to, engine, NULL) != dnnl_success) return 1;
    dnnl_status_t s = dnnl_primitive_create(&r->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    return s != dnnl_success;
}

static int run_reorder(role *r, int is_output) {
    if (!r->reorder) return 0;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, is_output ? r->blocked : r->plain},
                               {DNNL_ARG_TO, is_output ? r->plain : r->blocked}};
    return dnnl_primitive_execute(r->reorder, stream, 2, args) != dnnl_success;
}

// The views, when given, replace the plain x, OIHW weight and y: a phase of a strided
// convolution (below) reads and writes every other pixel or tap of the caller's buffers.
static int build_with_views(entry *e, const dnnl_memory_desc_t *x_view, const dnnl_memory_desc_t *w_view,
                            const dnnl_memory_desc_t *y_view) {
    const gan_dnnl_shape *s = &e->shape;
    dnnl_dims_t x = {s->n, s->c, s->h, s->w}, wt = {s->o, s->c, s->kh, s->kw}, y = {s->n, s->o, s->oh, s->ow};
    dnnl_dims_t strides = {s->sh, s->sw}, dil = {s->dh - 1, s->dw - 1}, pl = {s->pt, s->pl}, pr = {s->pb, s->pr};
    dnnl_memory_desc_t x_any, w_any, y_any, x_plain, w_plain, y_plain;
    dnnl_format_tag_t activations = e->nhwc ? dnnl_nhwc : dnnl_format_tag_any;
    dnnl_memory_desc_init_by_tag(&x_any, 4, x, dnnl_f32, activations);
    dnnl_memory_desc_init_by_tag(&w_any, 4, wt, dnnl_f32, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&y_any, 4, y, dnnl_f32, activations);
    dnnl_memory_desc_init_by_tag(&x_plain, 4, x, dnnl_f32, s->cl ? dnnl_nhwc : dnnl_nchw);
    dnnl_memory_desc_init_by_tag(&w_plain, 4, wt, dnnl_f32, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&y_plain, 4, y, dnnl_f32, s->cl ? dnnl_nhwc : dnnl_nchw);
    if (x_view) x_plain = *x_view;
    if (w_view) w_plain = *w_view;
    if (y_view) y_plain = *y_view;

    dnnl_convolution_desc_t fwd_d, d;
    if (dnnl_dilated_convolution_forward_desc_init(&fwd_d, dnnl_forward_training, dnnl_convolution_direct, &x_any, &w_any,
                                                   NULL, &y_any, strides, dil, pl, pr) != dnnl_success) return 1;
    dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
    dnnl_primitive_attr_t attr;
    dnnl_primitive_attr_create(&attr);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (dnnl_primitive_desc_create(&fwd_pd, &fwd_d, attr, engine, NULL) != dnnl_success) { dnnl_primitive_attr_destroy(attr); return 1; }
    const dnnl_memory_desc_t *plain_a, *plain_b, *plain_out;
    dnnl_query_t qa, qb, qo;
    switch (e->kind) {
    case GAN_DNNL_FORWARD:
        pd = fwd_pd; fwd_pd = NULL;
        plain_a = &x_plain; plain_b = &w_plain; plain_out = &y_plain;
        qa = dnnl_query_src_md; qb = dnnl_query_weights_md; qo = dnnl_query_dst_md;
        e->arg_a = DNNL_ARG_SRC; e->arg_b = DNNL_ARG_WEIGHTS; e->arg_out = DNNL_ARG_DST;
        break;
    case GAN_DNNL_BACKWARD_DATA:
        if (dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &x_any, &w_any, &y_any,
                                                             strides, dil, pl, pr) != dnnl_success) goto fail;
        if (dnnl_primitive_desc_create(&pd, &d, attr, engine, fwd_pd) != dnnl_success) goto fail;
        plain_a = &y_plain; plain_b = &w_plain; plain_out = &x_plain;
        qa = dnnl_query_diff_dst_md; qb = dnnl_query_weights_md; qo = dnnl_query_diff_src_md;
        e->arg_a = DNNL_ARG_DIFF_DST; e->arg_b = DNNL_ARG_WEIGHTS; e->arg_out = DNNL_ARG_DIFF_SRC;
        break;
    default:
        if (dnnl_dilated_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &x_any, &w_any, NULL, &y_any,
                                                                strides, dil, pl, pr) != dnnl_success) goto fail;
        if (dnnl_primitive_desc_create(&pd, &d, attr, engine, fwd_pd) != dnnl_success) goto fail;
        plain_a = &x_plain; plain_b = &y_plain; plain_out = &w_plain;
        qa = dnnl_query_src_md; qb = dnnl_query_diff_dst_md; qo = dnnl_query_diff_weights_md;
        e->arg_a = DNNL_ARG_SRC; e->arg_b = DNNL_ARG_DIFF_DST; e->arg_out = DNNL_ARG_DIFF_WEIGHTS;
        break;
    }
    if (setup_role(&e->a, plain_a, dnnl_primitive_desc_query_md(pd, qa, 0), 0) ||
        setup_role(&e->b, plain_b, dnnl_primitive_desc_query_md(pd, qb, 0), 0) ||
        setup_role(&e->out, plain_out, dnnl_primitive_desc_query_md(pd, qo, 0), 1)) goto fail;
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (dnnl_memory_create(&e->scratchpad, sp, engine, DNNL_MEMORY_NONE) != dnnl_success) goto fail;
    e->scratchpad_bytes = dnnl_memory_desc_get_size(sp);
    if (dnnl_primitive_create(&e->prim, pd) != dnnl_success) goto fail;
    dnnl_primitive_desc_destroy(pd);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    dnnl_primitive_attr_destroy(attr);
    return 0;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    dnnl_primitive_attr_destroy(attr);
    return 1;
}

static int build(entry *e) { return build_with_views(e, NULL, NULL, NULL); }

static void release_role(role *r) {
    if (r->reorder) dnnl_primitive_destroy(r->reorder);
    if (r->plain) dnnl_memory_destroy(r->plain);
    if (r->blocked) dnnl_memory_destroy(r->blocked);
}

static void release(entry *e) {
    if (!e->used) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->scratchpad) dnnl_memory_destroy(e->scratchpad);
    release_role(&e->a); release_role(&e->b); release_role(&e->out);
    memset(e, 0, sizeof *e);
}

// Channels-last activations for convolutions whose output has at least 14×14 pixels: there
// oneDNN 2.6 picks its brgemm forward kernel and a faster weight-gradient kernel than for its
// blocked layout (64×128×28×28 → 14×14, k5 s2: forward 42 against 55 ms, weight gradient 50
// against 59, input gradient equal; on 7×7 outputs blocked is as fast or faster). Training
// calls only: an inference chain keeps the blocked layout every step of it can share.
// GAN_DNNL_NHWC=0 turns it off (to compare).
static int wants_nhwc(const gan_dnnl_shape *s) {
    static int enabled = -1;
    if (enabled < 0) {
        const char *v = getenv("GAN_DNNL_NHWC");
        enabled = !(v && strcmp(v, "0") == 0);
    }
    return enabled && (long)s->oh * s->ow >= 196 && s->c <= GAN_MAX_BLOCK && s->o <= GAN_MAX_BLOCK;
}

static entry *lookup_layout(gan_dnnl_kind kind, const gan_dnnl_shape *shape, int nhwc) {
    for (int i = 0; i < CACHE_SIZE; i++)
        if (cache[i].used && cache[i].kind == kind && cache[i].nhwc == nhwc &&
            memcmp(&cache[i].shape, shape, sizeof *shape) == 0) return &cache[i];
    while (cache[next_slot].pinned) next_slot = (next_slot + 1) % CACHE_SIZE;
    entry *e = &cache[next_slot];
    next_slot = (next_slot + 1) % CACHE_SIZE;
    release(e);
    e->used = 1; e->kind = kind; e->shape = *shape; e->nhwc = nhwc;
    if (build(e)) { release(e); return NULL; }
    return e;
}

// Channels-last callers get channels-last primitives: then their activations need no reorder.
static entry *lookup(gan_dnnl_kind kind, const gan_dnnl_shape *shape) {
    return lookup_layout(kind, shape, shape->cl || wants_nhwc(shape));
}

// Called with the lock held: the engine and stream once, and the OpenMP thread count.
static int prepare(int threads) {
    // The engine's spinning workers would take a core from oneDNN's OpenMP team.
    gan_handoff_quiesce_all();
    if (ready < 0) {
        // oneDNN runs on libgomp's threads, which start without flush-to-zero / denormals-are-zero
        // (the engine sets both on its own threads: denormal arithmetic is ~100x slower).
        GOMP_parallel(flush_denormals, NULL, 0, 0);
        ready = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success &&
                dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success;
    }
    if (ready && threads > 0 && threads != omp_get_max_threads()) {
        omp_set_num_threads(threads);
        GOMP_parallel(flush_denormals, NULL, 0, 0);  // new threads start without FTZ too
    }
    return ready;
}

// Points the role's blocked memory at shared buffer `slot` (grown to fit); 0 on success.
static int bind_blocked(role *r, int slot) {
    if (!r->blocked) return 0;
    void *p = gan_grown(&shared[slot], r->bytes);
    return !p || dnnl_memory_set_data_handle(r->blocked, p) != dnnl_success;
}

static int bind_scratchpad(entry *e) {
    void *sp = gan_grown(&shared[3], e->scratchpad_bytes);
    return !sp || dnnl_memory_set_data_handle(e->scratchpad, sp) != dnnl_success;
}

static int execute(entry *e, dnnl_memory_t a, dnnl_memory_t b, dnnl_memory_t out) {
    dnnl_exec_arg_t args[4] = {{e->arg_a, a}, {e->arg_b, b}, {e->arg_out, out}, {DNNL_ARG_SCRATCHPAD, e->scratchpad}};
    return dnnl_primitive_execute(e->prim, stream, 4, args) != dnnl_success;
}

static dnnl_memory_t primitive_side(const role *r) { return r->blocked ? r->blocked : r->plain; }

static const dnnl_memory_desc_t *md_of(dnnl_memory_t m) {
    const dnnl_memory_desc_t *md = NULL;
    dnnl_memory_get_memory_desc(m, &md);
    return md;
}

// Runs entry e from plain a, b into plain out; with `ep`, the bias and activation are applied
// while the output moves to plain (or in place when the primitive writes plain). `kept` (bits
// 1: a, 2: b) says that input's blocked copy in its shared buffer is already this call's. Lock held.
static int run_entry_keeping(entry *e, const float *a, const float *b, float *out, const gan_epilogue *ep, int kept) {
    dnnl_memory_set_data_handle(e->a.plain, (void *)a);
    dnnl_memory_set_data_handle(e->b.plain, (void *)b);
    dnnl_memory_set_data_handle(e->out.plain, out);
    if (bind_blocked(&e->a, 0) || bind_blocked(&e->b, 1) || bind_blocked(&e->out, 2) || bind_scratchpad(e) ||
        (!(kept & 1) && run_reorder(&e->a, 0)) || (!(kept & 2) && run_reorder(&e->b, 0)) ||
        execute(e, primitive_side(&e->a), primitive_side(&e->b), primitive_side(&e->out)))
        return 1;
    if (!ep) return run_reorder(&e->out, 1) || dnnl_stream_wait(stream) != dnnl_success;
    gan_layout l;
    void *blocked = NULL;
    if (e->out.blocked) dnnl_memory_get_data_handle(e->out.blocked, &blocked);
    if (dnnl_stream_wait(stream) != dnnl_success) return 1;
    if (blocked && !gan_layout_from_md(md_of(e->out.blocked), blocked, &l)) {
        gan_epilogue_to_plain(&l, ep, out);
        return 0;
    }
    // A plain output, or a layout the epilogue does not know: reorder, then apply it in place.
    if (run_reorder(&e->out, 1) || dnnl_stream_wait(stream) != dnnl_success) return 1;
    const dnnl_dims_t *d = &md_of(e->out.plain)->dims;
    l = gan_plain_layout(out, (*d)[0], (*d)[1], (*d)[2], (*d)[3]);
    gan_epilogue_in_place(&l, ep);
    return 0;
}

static int run_entry(entry *e, const float *a, const float *b, float *out, const gan_epilogue *ep) {
    return run_entry_keeping(e, a, b, out, ep, 0);
}

// MARK: stride-2 gradients in four phases
//
// With stride 2, input pixel 2m + r meets only the kernel taps of one parity along each axis, so
// a stride-2 convolution is the sum of four stride-1 ones ("phases"), each between every other
// pixel of x and every other tap of the weight. Its input gradient is then four stride-1
// convolutions, each writing its own quarter of dx, and its weight gradient four stride-1 weight
// gradients, each writing its own taps: no sums, only strided views of the caller's buffers.
// oneDNN 2.6 runs these faster than its stride-2 kernels on 7×7 outputs (128 → 256 channels,
// batch 64: input gradient 4 %, weight gradient 11–12 %; 64 → 128: 4 % and 7 %), and slower on
// 14×14 ones (input gradient 11 % slower), hence `wants_phases`. scripts/phase_convolution.c
// measures it; in a WGAN-GP step (`gan bench train --model dcgan-bn --loss wgan-gp --alternate
// dnnl-phases`) it is worth 1–2 %. GAN_DNNL_PHASES=0 turns it off, =data keeps the input
// gradients' phases only, =2 turns both on where they are off by default (CPUs without AVX-512).

typedef struct {
    int tap_parity;  // s: the taps 2j + s meet this phase's pixels
    int taps, size;  // of the phase's kernel and of its input (pixels r, r + 2, …)
    int pad_before, pad_after;
} phase_axis;

// The phase of pixels ≡ r (mod 2) along one axis of a stride-2 convolution with kernel `k` and
// padding `pad` before: y[o] = Σ_j x[2(o + j − pad_before) + r] · w[2j + s]. Non-zero when it
// cannot be run as a stride-1 convolution with non-negative padding.
static int phase_axis_of(int r, int in, int out, int k, int pad, phase_axis *a) {
    a->tap_parity = (r + pad) & 1;
    a->taps = (k - a->tap_parity + 1) / 2;
    a->size = (in - r + 1) / 2;
    a->pad_before = (pad + r - a->tap_parity) / 2;
    a->pad_after = out - 1 + a->taps - a->size - a->pad_before;
    return a->taps < 1 || a->size < 1 || a->pad_before < 0 || a->pad_after < 0;
}

#define PHASED_CACHE 16

typedef struct {
    int used;
    int failed;  // oneDNN cannot run these phases: the shape goes direct, without trying again
    gan_dnnl_kind kind;
    gan_dnnl_shape shape;
    entry part[4];
    long x_offset[4], w_offset[4];  // floats from the start of x / the weight to the phase's first
    int dy_kept[4];                 // the phase reads dy in the layout phase 0 made (bit for run_entry_keeping)
} phased;

static phased phased_cache[PHASED_CACHE];
static int next_phased;
static long phased_calls, convolution_calls;

long gan_dnnl_phased_calls(void) { return phased_calls; }

long gan_dnnl_convolution_calls(void) { return convolution_calls; }

static int phase_mode = -1;  // 0 off, 1 input gradients, 2 both; -1 not read from the environment yet

int gan_dnnl_phases(void) {
    if (phase_mode < 0) {
        const char *v = getenv("GAN_DNNL_PHASES");
        // Unset: on with AVX-512 only. oneDNN's jit:avx2 kernels ran the dcgan critic's 64→64
        // 14→7 gradients slower in phases (Zen 3: input gradient 48–56 GFLOP/s against 68–84
        // direct, weights 53–59 against 59–68; `gan bench engine --breakdown`).
        int wide = gan_cpu_has_avx512f();
        phase_mode = v && strcmp(v, "0") == 0 ? 0 : v && strcmp(v, "data") == 0 ? 1 : v && strcmp(v, "2") == 0 ? 2 : wide ? 2 : 0;
    }
    return phase_mode;
}

void gan_dnnl_set_phases(int mode) { phase_mode = mode < 0 ? 0 : mode > 2 ? 2 : mode; }

static int phases_enabled(gan_dnnl_kind kind) {
    int mode = gan_dnnl_phases();
    return kind == GAN_DNNL_BACKWARD_DATA ? mode >= 1 : kind == GAN_DNNL_BACKWARD_WEIGHTS && mode == 2;
}

// Outputs below 14×14 only: on the WGAN-GP critic's 28×28 → 14×14 layer (64 → 128 channels,
// channels-last) the input gradient's phases were 11 % slower and the weight gradient's no faster.
static int wants_phases(gan_dnnl_kind kind, const gan_dnnl_shape *s) {
    return phases_enabled(kind) && s->sh == 2 && s->sw == 2 && s->dh == 1 && s->dw == 1 && (long)s->oh * s->ow < 196;
}

static void release_phased(phased *p) {
    for (int i = 0; i < 4; i++) release(&p->part[i]);
    memset(p, 0, sizeof *p);
}

// A view of every other pixel (or tap) of a plain buffer. dnnl_memory_desc_init_by_strides
// refuses it when a dimension's span passes the next one's stride (4 rows 14 floats apart in a
// 7×7 channel of 49): the view is made dense and given its strides afterwards, which reorders
// accept (oneDNN 2.x's descriptor is a public struct).
static int strided_view(dnnl_memory_desc_t *md, const dnnl_dims_t dims, const dnnl_dims_t strides) {
    if (dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_abcd) != dnnl_success) return 1;
    for (int i = 0; i < 4; i++) md->format_desc.blocking.strides[i] = strides[i];
    return 0;
}

// The input gradient's phase runs as a forward convolution of dy with the phase's taps flipped
// and the channels swapped (a weight view with negative strides): oneDNN 2.6 runs that on its
// brgemm kernel channels-last, and its stride-1 input-gradient kernel measured no faster than
// the stride-2 one. The weight gradient's phase is a stride-1 weight gradient of x's phase.
static int build_phased(phased *p) {
    const gan_dnnl_shape *s = &p->shape;
    int data = p->kind == GAN_DNNL_BACKWARD_DATA;
    long c = s->c, h = s->h, w = s->w, kh = s->kh, kw = s->kw;
    for (int i = 0; i < 4; i++) {
        int rh = i / 2, rw = i % 2;
        phase_axis ah, aw;
        if (phase_axis_of(rh, s->h, s->oh, s->kh, s->pt, &ah) || phase_axis_of(rw, s->w, s->ow, s->kw, s->pl, &aw)) return 1;
        entry *e = &p->part[i];
        e->used = 1; e->nhwc = s->cl;
        // x's phase: every other pixel of x (NCHW, else NHWC) from pixel (rh, rw).
        dnnl_dims_t xd = {s->n, s->c, ah.size, aw.size};
        dnnl_dims_t xs = {c * h * w, s->cl ? 1 : h * w, 2 * w * (s->cl ? c : 1), s->cl ? 2 * c : 2};
        p->x_offset[i] = (rh * w + rw) * (s->cl ? c : 1);
        dnnl_memory_desc_t x_view, w_view;
        if (strided_view(&x_view, xd, xs)) return 1;
        if (data) {
            // dx_r[m] = Σ_t dy[m + t − before] · w[s + 2(taps − 1 − t)], before = taps − 1 − pad_before.
            int bh = ah.taps - 1 - ah.pad_before, bw = aw.taps - 1 - aw.pad_before;
            int ah_after = ah.size - 1 + ah.taps - s->oh - bh, aw_after = aw.size - 1 + aw.taps - s->ow - bw;
            if (bh < 0 || bw < 0 || ah_after < 0 || aw_after < 0) return 1;
            e->kind = GAN_DNNL_FORWARD;
            e->shape = (gan_dnnl_shape){s->n, s->o, s->oh, s->ow, s->c, ah.size, aw.size, ah.taps, aw.taps, 1, 1,
                                        bh, bw, ah_after, aw_after, 1, 1, s->cl};
            dnnl_dims_t wd = {s->c, s->o, ah.taps, aw.taps}, ws = {kh * kw, c * kh * kw, -2 * kw, -2};
            p->w_offset[i] = (ah.tap_parity + 2L * (ah.taps - 1)) * kw + aw.tap_parity + 2L * (aw.taps - 1);
            if (strided_view(&w_view, wd, ws) || build_with_views(e, NULL, &w_view, &x_view)) return 1;
        } else {
            e->kind = GAN_DNNL_BACKWARD_WEIGHTS;
            e->shape = (gan_dnnl_shape){s->n, s->c, ah.size, aw.size, s->o, s->oh, s->ow, ah.taps, aw.taps, 1, 1,
                                        ah.pad_before, aw.pad_before, ah.pad_after, aw.pad_after, 1, 1, s->cl};
            dnnl_dims_t wd = {s->o, s->c, ah.taps, aw.taps}, ws = {c * kh * kw, kh * kw, 2 * kw, 2};
            p->w_offset[i] = ah.tap_parity * kw + aw.tap_parity;
            if (strided_view(&w_view, wd, ws) || build_with_views(e, &x_view, &w_view, NULL)) return 1;
        }
        role *dy = data ? &e->a : &e->b, *dy0 = data ? &p->part[0].a : &p->part[0].b;
        p->dy_kept[i] = i > 0 && dy->blocked && dy0->blocked &&
                        dnnl_memory_desc_equal(md_of(dy->blocked), md_of(dy0->blocked)) ? (data ? 1 : 2) : 0;
    }
    return 0;
}

static phased *lookup_phased(gan_dnnl_kind kind, const gan_dnnl_shape *shape) {
    for (int i = 0; i < PHASED_CACHE; i++)
        if (phased_cache[i].used && phased_cache[i].kind == kind && memcmp(&phased_cache[i].shape, shape, sizeof *shape) == 0)
            return phased_cache[i].failed ? NULL : &phased_cache[i];
    phased *p = &phased_cache[next_phased];
    next_phased = (next_phased + 1) % PHASED_CACHE;
    release_phased(p);
    p->used = 1; p->kind = kind; p->shape = *shape;
    if (build_phased(p)) {
        for (int i = 0; i < 4; i++) release(&p->part[i]);
        p->failed = 1;
    }
    return p->failed ? NULL : p;
}

// Input gradient: a = dy, b = weight, out = dx. Weight gradient: a = x, b = dy, out = dweight.
// Phase 0 leaves its blocked dy in its shared buffer for the phases that read the same layout.
static int run_phased(phased *p, const float *a, const float *b, float *out) {
    int data = p->kind == GAN_DNNL_BACKWARD_DATA;
    for (int i = 0; i < 4; i++) {
        const float *pa = data ? a : a + p->x_offset[i], *pb = data ? b + p->w_offset[i] : b;
        float *po = out + (data ? p->x_offset[i] : p->w_offset[i]);
        if (run_entry_keeping(&p->part[i], pa, pb, po, NULL, p->dy_kept[i])) return 1;
    }
    return 0;
}

int gan_dnnl_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *shape, const float *a, const float *b, float *out, int threads) {
    pthread_mutex_lock(&lock);
    int rc = 1;
    if (prepare(threads)) {
        // Channels-last calls on AVX2 go to the implicit-GEMM kernels when they fit (faster than
        // jit:avx2 there); on any failure oneDNN still runs them.
        if (gan_winograd_fits(kind, shape) && !gan_winograd_convolution(kind, shape, a, b, out, threads)) {
            rc = 0;  // the critic's 5×5 stride-2 forward with half the multiplications (winograd.c)
        } else if (gan_implicit_gemm_fits(kind, shape) && !gan_implicit_gemm_convolution(kind, shape, a, b, out, threads)) {
            rc = 0;
        } else {
            phased *p = wants_phases(kind, shape) ? lookup_phased(kind, shape) : NULL;
            entry *e = p ? NULL : lookup(kind, shape);
            rc = p ? run_phased(p, a, b, out) : !e || run_entry(e, a, b, out, NULL);
            phased_calls += p && !rc;
        }
        convolution_calls += !rc;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

int gan_dnnl_activated_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *shape, const float *a, const float *b,
                                   const float *bias, float slope, float *out, int threads) {
    if (kind != GAN_DNNL_FORWARD && kind != GAN_DNNL_BACKWARD_DATA) return 1;
    pthread_mutex_lock(&lock);
    entry *e = prepare(threads) ? lookup(kind, shape) : NULL;
    gan_epilogue ep = {bias, slope, 1};
    int rc = !e || run_entry(e, a, b, out, &ep);
    pthread_mutex_unlock(&lock);
    return rc;
}

// The leaky-ReLU gradient gp is made once, in the layout both backward primitives read it in
// (shared buffer 0): as the input-gradient primitive's `a` and as the weight-gradient
// primitive's `a` (transposed convolution: gp is conv2d's x) or `b` (convolution: gp is dy).
int gan_dnnl_activated_backward(gan_dnnl_kind kind, const gan_dnnl_shape *s, const float *g, const float *y, float slope,
                                const float *a, const float *weight, float *input_grad, float *weight_grad, float *bias_grad,
                                int threads) {
    if (kind != GAN_DNNL_FORWARD && kind != GAN_DNNL_BACKWARD_DATA) return 1;
    int transposed = kind == GAN_DNNL_BACKWARD_DATA;
    pthread_mutex_lock(&lock);
    int rc = 1;
    entry *ei = NULL, *ew = NULL;
    if (!prepare(threads)) goto done;
    if (input_grad) {
        if (!(ei = lookup(transposed ? GAN_DNNL_FORWARD : GAN_DNNL_BACKWARD_DATA, s))) goto done;
        ei->pinned = 1;  // the next lookup must not evict it
    }
    if (weight_grad && !(ew = lookup(GAN_DNNL_BACKWARD_WEIGHTS, s))) goto done;
    role *ri = ei ? &ei->a : NULL, *rw = ew ? (transposed ? &ew->a : &ew->b) : NULL;
    if (ri && rw && !dnnl_memory_desc_equal(md_of(primitive_side(ri)), md_of(primitive_side(rw)))) goto done;
    long n = s->n, c = transposed ? s->c : s->o, h = transposed ? s->h : s->oh, w = transposed ? s->w : s->ow;
    const dnnl_memory_desc_t *md = ri ? md_of(primitive_side(ri)) : rw ? md_of(primitive_side(rw)) : NULL;
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : (size_t)(n * c * h * w) * sizeof(float);
    void *gp = gan_grown(&shared[0], bytes);
    if (!gp) goto done;
    gan_layout l = gan_plain_layout(gp, n, c, h, w);
    if (md && gan_layout_from_md(md, gp, &l)) goto done;
    if (gan_leaky_gradient_to_layout(g, y, slope, &l, bias_grad)) goto done;
    if (ei) {
        dnnl_memory_set_data_handle(ei->b.plain, (void *)weight);
        dnnl_memory_set_data_handle(ei->out.plain, input_grad);
        if (dnnl_memory_set_data_handle(primitive_side(ri), gp) != dnnl_success ||
            bind_blocked(&ei->b, 1) || bind_blocked(&ei->out, 2) || bind_scratchpad(ei) || run_reorder(&ei->b, 0) ||
            execute(ei, primitive_side(ri), primitive_side(&ei->b), primitive_side(&ei->out)) || run_reorder(&ei->out, 1))
            goto done;
    }
    if (ew) {
        role *other = transposed ? &ew->b : &ew->a;  // the forward's input: conv2d's dy, or x
        dnnl_memory_set_data_handle(other->plain, (void *)a);
        dnnl_memory_set_data_handle(ew->out.plain, weight_grad);
        if (dnnl_memory_set_data_handle(primitive_side(rw), gp) != dnnl_success ||
            bind_blocked(other, 1) || bind_blocked(&ew->out, 2) || bind_scratchpad(ew) || run_reorder(other, 0))
            goto done;
        dnnl_memory_t ma = transposed ? primitive_side(rw) : primitive_side(other);
        dnnl_memory_t mb = transposed ? primitive_side(other) : primitive_side(rw);
        if (execute(ew, ma, mb, primitive_side(&ew->out)) || run_reorder(&ew->out, 1)) goto done;
    }
    rc = dnnl_stream_wait(stream) != dnnl_success;
done:
    if (ei) ei->pinned = 0;
    pthread_mutex_unlock(&lock);
    return rc;
}

static gan_small_conv small_conv(const gan_dnnl_step *st) {
    const gan_dnnl_shape *s = &st->shape;
    gan_small_conv cv = {s->o, s->kh, s->kw, s->sh, s->sw, s->pt, s->pl, s->oh, s->ow, st->weight, st->bias};
    return cv;
}

// Between steps the activations stay in the primitives' own (blocked) layout, in shared buffers
// 0 and 2 taken in turn; only the chain's input and output are reordered. A last step with few
// outputs (GAN_DNNL_SMALL_OUTPUT) reads the previous step's blocked output directly and applies
// that step's bias and activation as it copies each image into its scratch (buffer 4).
int gan_dnnl_inference_chain(int count, const gan_dnnl_step *steps, const float *x, float *out, int threads) {
    if (count < 1 || count > GAN_DNNL_MAX_CHAIN) return 1;
    int small_last = steps[count - 1].kind == GAN_DNNL_SMALL_OUTPUT;
    int dnnl_steps = count - small_last;
    // Before any primitive is built or run: a last step the small-output kernel cannot take here
    // (too many outputs, dilation, a CPU without AVX-512 or AVX2) sends the caller layer by layer.
    if (small_last) {
        const gan_dnnl_shape *s = &steps[count - 1].shape;
        if (!gan_small_output_fits(s->o, s->kh, s->kw) || s->dh != 1 || s->dw != 1) return 1;
    }
    pthread_mutex_lock(&lock);
    entry *es[GAN_DNNL_MAX_CHAIN] = {0};
    int rc = 1;
    if (!prepare(threads)) goto done;
    for (int i = 0; i < dnnl_steps; i++) {
        if (steps[i].kind != GAN_DNNL_FORWARD && steps[i].kind != GAN_DNNL_BACKWARD_DATA) goto done;
        if (!(es[i] = lookup_layout(steps[i].kind, &steps[i].shape, 0))) goto done;
        es[i]->pinned = 1;
    }
    // Each step must read the layout the previous one wrote, and the epilogue must know it.
    for (int i = 0; i < dnnl_steps; i++) {
        gan_layout probe;
        if (gan_layout_from_md(md_of(primitive_side(&es[i]->out)), NULL, &probe)) goto done;
        if (i > 0 && !dnnl_memory_desc_equal(md_of(primitive_side(&es[i - 1]->out)), md_of(primitive_side(&es[i]->a)))) goto done;
    }
    void *current = (void *)x;
    int slot = -1;  // shared buffer holding `current`, -1 for x
    gan_layout l = gan_plain_layout((float *)x, steps[0].shape.n, steps[0].shape.c, steps[0].shape.h, steps[0].shape.w);
    if (dnnl_steps > 0) {
        dnnl_memory_set_data_handle(es[0]->a.plain, (void *)x);
        if (es[0]->a.blocked) {
            if (bind_blocked(&es[0]->a, 0) || run_reorder(&es[0]->a, 0)) goto done;
            dnnl_memory_get_data_handle(es[0]->a.blocked, &current);
            slot = 0;
        }
    }
    for (int i = 0; i < dnnl_steps; i++) {
        entry *e = es[i];
        int last = i == count - 1;
        dnnl_memory_set_data_handle(e->b.plain, (void *)steps[i].weight);
        if (bind_blocked(&e->b, 1) || bind_scratchpad(e) || run_reorder(&e->b, 0)) goto done;
        dnnl_memory_t in = primitive_side(&e->a), result = primitive_side(&e->out);
        dnnl_memory_set_data_handle(in, current);
        void *dst;
        int next = slot == 2 ? 0 : 2;
        if (last && !e->out.blocked) dst = out;
        else dst = gan_grown(&shared[next], dnnl_memory_desc_get_size(md_of(result)));
        if (!dst || dnnl_memory_set_data_handle(result, dst) != dnnl_success) goto done;
        if (execute(e, in, primitive_side(&e->b), result) || dnnl_stream_wait(stream) != dnnl_success) goto done;
        gan_layout_from_md(md_of(result), dst, &l);
        gan_epilogue ep = {steps[i].bias, steps[i].slope, steps[i].activate};
        if (last && e->out.blocked) gan_epilogue_to_plain(&l, &ep, out);
        else if (!(small_last && i == dnnl_steps - 1)) gan_epilogue_in_place(&l, &ep);
        current = dst;
        slot = next;
    }
    if (small_last) {
        const gan_dnnl_step *st = &steps[count - 1];
        gan_epilogue pre = {NULL, 0, 0};
        if (dnnl_steps > 0) pre = (gan_epilogue){steps[dnnl_steps - 1].bias, steps[dnnl_steps - 1].slope, steps[dnnl_steps - 1].activate};
        gan_small_conv cv = small_conv(st);
        int t = omp_get_max_threads();
        float *scratch = gan_grown(&shared[4], gan_small_output_scratch_floats(&l, &pre, &cv) * sizeof(float) * (size_t)t);
        if (!scratch || gan_small_output_convolution(&l, &pre, &cv, out, scratch, t)) goto done;
        if (st->activate) {
            const gan_dnnl_shape *s = &st->shape;
            gan_layout y = gan_plain_layout(out, s->n, s->o, s->oh, s->ow);
            gan_epilogue act = {NULL, st->slope, 1};
            gan_epilogue_in_place(&y, &act);
        }
    }
    rc = 0;
done:
    for (int i = 0; i < dnnl_steps; i++) if (es[i]) es[i]->pinned = 0;
    pthread_mutex_unlock(&lock);
    return rc;
}
#endif
