// A stride-2 5×5 convolution's input or weight gradient through oneDNN, direct against four
// stride-1 convolutions over every other pixel and tap ("phases", dnnl_convolution.c), timed in
// alternation (the host's speed drifts), with the largest difference between the two results.
// The figures quoted in docs/performance-log.md (session 17). Not part of the build. Run:
//   clang -O2 scripts/phase_convolution.c -o /tmp/phase_convolution -ldnnl -lm &&
//   OMP_NUM_THREADS=2 /tmp/phase_convolution C O H [REPS] [data|weights] [blocked|nhwc]
// for a convolution from C channels of H×H to O channels of H/2×H/2, padding 2, batch 64; e.g.
// the WGAN-GP critic's 128 → 256 layer: 128 256 14 60 data nhwc.
// The input-gradient phases run as forward convolutions of dy with flipped taps and swapped
// channels (a weight view with negative strides); the weight-gradient phases as stride-1 weight
// gradients of x's phases. Each phase reads its pixels and taps through strided views.
#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xmmintrin.h>

#define CHECK(x) do { if ((x) != dnnl_success) { fprintf(stderr, "line %d: %s failed\n", __LINE__, #x); exit(1); } } while (0)

static dnnl_engine_t engine;
static dnnl_stream_t stream;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
static float *data_of(dnnl_memory_t m) { void *p; dnnl_memory_get_data_handle(m, &p); return p; }

static dnnl_memory_t allocate(const dnnl_memory_desc_t *md) {
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, md, engine, DNNL_MEMORY_ALLOCATE));
    return m;
}

static dnnl_memory_t plain(long a, long b, long c, long d, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {a, b, c, d};
    dnnl_memory_desc_t md;
    CHECK(dnnl_memory_desc_init_by_tag(&md, 4, dims, dnnl_f32, tag));
    return allocate(&md);
}

// A view with any strides (negative ones too) at `base`: a dense descriptor given the strides
// afterwards, as dnnl_convolution.c makes them.
static dnnl_memory_t view(float *base, long a, long b, long c, long d, const long strides[4]) {
    dnnl_dims_t dims = {a, b, c, d};
    dnnl_memory_desc_t md;
    CHECK(dnnl_memory_desc_init_by_tag(&md, 4, dims, dnnl_f32, dnnl_abcd));
    for (int i = 0; i < 4; i++) md.format_desc.blocking.strides[i] = strides[i];
    dnnl_memory_t m;
    CHECK(dnnl_memory_create(&m, &md, engine, base));
    return m;
}

typedef struct { dnnl_primitive_t reorder; dnnl_memory_t from, to; } move;

// No reorder when the layouts are the same: the primitive then reads (or, for an output, writes)
// the plain buffer, as dnnl_convolution.c does.
static move make_move(dnnl_memory_t from, dnnl_memory_t to, int output) {
    const dnnl_memory_desc_t *a, *b;
    dnnl_memory_get_memory_desc(from, &a);
    dnnl_memory_get_memory_desc(to, &b);
    if (dnnl_memory_desc_equal(a, b)) {
        CHECK(output ? dnnl_memory_set_data_handle(from, data_of(to)) : dnnl_memory_set_data_handle(to, data_of(from)));
        return (move){NULL, from, to};
    }
    dnnl_primitive_desc_t pd;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, a, engine, b, engine, NULL));
    move m = {NULL, from, to};
    CHECK(dnnl_primitive_create(&m.reorder, pd));
    dnnl_primitive_desc_destroy(pd);
    return m;
}

static void run_move(const move *m) {
    if (!m->reorder) return;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, m->from}, {DNNL_ARG_TO, m->to}};
    CHECK(dnnl_primitive_execute(m->reorder, stream, 2, args));
}

// A convolution primitive with its own memories in the layouts it chose (`a`, `b` inputs, `out`).
typedef struct { dnnl_primitive_t p; dnnl_memory_t a, b, out, scratch; int arg_a, arg_b, arg_out; } conv;

// weights = 0: forward (a = x, b = weight, out = y); 1: weight gradient (a = x, b = dy, out = dweight);
// 2: input gradient (a = dy, b = weight, out = dx).
static conv make_conv(int what, long n, long c, long o, long ih, long oh, long kh, long kw, long stride,
                      long pt, long pl, long pb, long pr, long ow, long iw, dnnl_format_tag_t activations) {
    dnnl_dims_t x = {n, c, ih, iw}, w = {o, c, kh, kw}, y = {n, o, oh, ow}, s = {stride, stride}, dil = {0, 0};
    dnnl_dims_t before = {pt, pl}, after = {pb, pr};
    dnnl_memory_desc_t xm, wm, ym;
    CHECK(dnnl_memory_desc_init_by_tag(&xm, 4, x, dnnl_f32, activations));
    CHECK(dnnl_memory_desc_init_by_tag(&wm, 4, w, dnnl_f32, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&ym, 4, y, dnnl_f32, activations));
    dnnl_primitive_attr_t attr;
    dnnl_primitive_attr_create(&attr);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_convolution_desc_t fd, d;
    CHECK(dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &xm, &wm, NULL, &ym,
                                                     s, dil, before, after));
    dnnl_primitive_desc_t fpd, pd;
    CHECK(dnnl_primitive_desc_create(&fpd, &fd, attr, engine, NULL));
    conv r;
    dnnl_query_t qa, qb, qo;
    if (what == 0) {
        pd = fpd;
        qa = dnnl_query_src_md; qb = dnnl_query_weights_md; qo = dnnl_query_dst_md;
        r.arg_a = DNNL_ARG_SRC; r.arg_b = DNNL_ARG_WEIGHTS; r.arg_out = DNNL_ARG_DST;
    } else if (what == 1) {
        CHECK(dnnl_dilated_convolution_backward_weights_desc_init(&d, dnnl_convolution_direct, &xm, &wm, NULL, &ym, s, dil, before, after));
        CHECK(dnnl_primitive_desc_create(&pd, &d, attr, engine, fpd));
        qa = dnnl_query_src_md; qb = dnnl_query_diff_dst_md; qo = dnnl_query_diff_weights_md;
        r.arg_a = DNNL_ARG_SRC; r.arg_b = DNNL_ARG_DIFF_DST; r.arg_out = DNNL_ARG_DIFF_WEIGHTS;
    } else {
        CHECK(dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct, &xm, &wm, &ym, s, dil, before, after));
        CHECK(dnnl_primitive_desc_create(&pd, &d, attr, engine, fpd));
        qa = dnnl_query_diff_dst_md; qb = dnnl_query_weights_md; qo = dnnl_query_diff_src_md;
        r.arg_a = DNNL_ARG_DIFF_DST; r.arg_b = DNNL_ARG_WEIGHTS; r.arg_out = DNNL_ARG_DIFF_SRC;
    }
    r.a = allocate(dnnl_primitive_desc_query_md(pd, qa, 0));
    r.b = allocate(dnnl_primitive_desc_query_md(pd, qb, 0));
    r.out = allocate(dnnl_primitive_desc_query_md(pd, qo, 0));
    r.scratch = allocate(dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0));
    CHECK(dnnl_primitive_create(&r.p, pd));
    return r;
}

static void run_conv(const conv *c) {
    dnnl_exec_arg_t args[4] = {{c->arg_a, c->a}, {c->arg_b, c->b}, {c->arg_out, c->out}, {DNNL_ARG_SCRATCHPAD, c->scratch}};
    CHECK(dnnl_primitive_execute(c->p, stream, 4, args));
}

static int by_value(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s C O H [REPS] [data|weights] [blocked|nhwc]\n", argv[0]); return 2; }
    _mm_setcsr(_mm_getcsr() | 0x8040);
    const long n = 64, k = 5, pad = 2;
    long c = atol(argv[1]), o = atol(argv[2]), h = atol(argv[3]), oh = h / 2;
    int reps = argc > 4 ? atoi(argv[4]) : 40;
    int weights = argc > 5 && strcmp(argv[5], "weights") == 0;
    int nhwc = argc > 6 && strcmp(argv[6], "nhwc") == 0;
    if (c < 1 || o < 1 || h < 4 || h % 2 || reps < 1) { fprintf(stderr, "C, O ≥ 1, even H ≥ 4, REPS ≥ 1\n"); return 2; }
    dnnl_format_tag_t act = nhwc ? dnnl_nhwc : dnnl_format_tag_any;
    CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));

    // Plain x and dy (NCHW, or NHWC with channels-last primitives, as the engine passes them), OIHW
    // weight; the gradients of both ways.
    dnnl_format_tag_t pa = nhwc ? dnnl_acdb : dnnl_abcd;
    dnnl_memory_t x = plain(n, c, h, h, pa), dy = plain(n, o, oh, oh, pa), w = plain(o, c, k, k, dnnl_abcd);
    dnnl_memory_t direct_out = weights ? plain(o, c, k, k, dnnl_abcd) : plain(n, c, h, h, pa);
    dnnl_memory_t phased_out = weights ? plain(o, c, k, k, dnnl_abcd) : plain(n, c, h, h, pa);
    srand(1);
    for (long i = 0; i < n * c * h * h; i++) data_of(x)[i] = rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < n * o * oh * oh; i++) data_of(dy)[i] = rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < o * c * k * k; i++) data_of(w)[i] = rand() / (float)RAND_MAX - 0.5f;

    conv direct = make_conv(weights ? 1 : 2, n, c, o, h, oh, k, k, 2, pad, pad, pad - 1, pad - 1, oh, h, act);
    move direct_in[2] = {make_move(weights ? x : dy, direct.a, 0), make_move(weights ? dy : w, direct.b, 0)};
    move direct_back = make_move(direct.out, direct_out, 1);

    // Phase (rh, rw): x pixels 2m + r meet taps 2j + r (padding 2 is even), one pixel of padding before.
    conv part[4];
    move part_in[4][2], part_back[4];
    for (int i = 0; i < 4; i++) {
        int rh = i / 2, rw = i % 2;
        long th = rh ? 2 : 3, tw = rw ? 2 : 3;  // taps of the phase
        const long x_strides[4] = {c * h * h, nhwc ? 1 : h * h, 2 * h * (nhwc ? c : 1), nhwc ? 2 * c : 2};
        float *x_base = (weights ? data_of(x) : data_of(phased_out)) + (rh * h + rw) * (nhwc ? c : 1);
        dnnl_memory_t x_phase = view(x_base, n, c, oh, oh, x_strides);
        if (weights) {
            // dW[:, :, 2j + rh, 2j' + rw] = the stride-1 weight gradient of x's phase and dy.
            part[i] = make_conv(1, n, c, o, oh, oh, th, tw, 1, 1, 1, th - 2, tw - 2, oh, oh, act);
            const long w_strides[4] = {c * k * k, k * k, 2 * k, 2};
            part_in[i][0] = make_move(x_phase, part[i].a, 0);
            part_in[i][1] = make_move(dy, part[i].b, 0);
            part_back[i] = make_move(part[i].out, view(data_of(phased_out) + rh * k + rw, o, c, th, tw, w_strides), 1);
        } else {
            // dx's phase = the forward convolution of dy with the phase's taps flipped, channels swapped.
            part[i] = make_conv(0, n, o, c, oh, oh, th, tw, 1, th - 2, tw - 2, 1, 1, oh, oh, act);
            const long w_strides[4] = {k * k, c * k * k, -2 * k, -2};
            part_in[i][0] = make_move(dy, part[i].a, 0);
            part_in[i][1] = make_move(view(data_of(w) + (rh + 2 * (th - 1)) * k + rw + 2 * (tw - 1), c, o, th, tw, w_strides), part[i].b, 0);
            part_back[i] = make_move(part[i].out, x_phase, 1);
        }
    }

    // The phases after the first read dy from the first's copy where they want the same layout.
    int dy_role = weights ? 1 : 0, dy_shared[4] = {0};
    for (int i = 1; i < 4; i++) {
        dnnl_memory_t mine = dy_role ? part[i].b : part[i].a, first = dy_role ? part[0].b : part[0].a;
        const dnnl_memory_desc_t *a, *b;
        dnnl_memory_get_memory_desc(mine, &a);
        dnnl_memory_get_memory_desc(first, &b);
        if (part_in[0][dy_role].reorder && dnnl_memory_desc_equal(a, b)) {
            CHECK(dnnl_memory_set_data_handle(mine, data_of(first)));
            dy_shared[i] = 1;
        }
    }

    // Timed as the engine runs them: the inputs moved from plain into the primitives' layouts (dy
    // once for the four phases, which read it in the same layout), the primitives, the results
    // moved back to plain.
    double *ratio = malloc(sizeof(double) * reps), direct_total = 0, phased_total = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = now();
        for (int j = 0; j < 2; j++) run_move(&direct_in[j]);
        run_conv(&direct);
        run_move(&direct_back);
        dnnl_stream_wait(stream);
        double t1 = now();
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 2; j++) if (!(j == dy_role && dy_shared[i])) run_move(&part_in[i][j]);
            run_conv(&part[i]);
            run_move(&part_back[i]);
        }
        dnnl_stream_wait(stream);
        double t2 = now();
        if (r < 0) continue;  // warm-up
        ratio[r] = (t1 - t0) / (t2 - t1);
        direct_total += t1 - t0;
        phased_total += t2 - t1;
    }
    qsort(ratio, reps, sizeof *ratio, by_value);
    double flop = 2.0 * n * c * o * oh * oh * k * k;
    long count = weights ? o * c * k * k : n * c * h * h;
    double worst = 0, largest = 0;
    for (long i = 0; i < count; i++) {
        worst = fmax(worst, fabs(data_of(direct_out)[i] - data_of(phased_out)[i]));
        largest = fmax(largest, fabs(data_of(direct_out)[i]));
    }
    printf("%s gradient, %ld→%ld channels, %ld×%ld → %ld×%ld, %s: direct %.2f ms (%.0f GFLOP/s), phases %.2f ms (%.0f GFLOP/s); "
           "direct / phases median %.3f (quartiles %.3f–%.3f) over %d pairs; largest difference %.2g (largest value %.3g)\n",
           weights ? "weight" : "input", c, o, h, h, oh, oh, nhwc ? "channels-last" : "oneDNN's layout",
           direct_total / reps * 1e3, flop / (direct_total / reps) / 1e9, phased_total / reps * 1e3, flop / (phased_total / reps) / 1e9,
           ratio[reps / 2], ratio[reps / 4], ratio[3 * reps / 4], reps, worst, largest);
    if (!(worst <= 1e-4 * fmax(1, largest))) { fprintf(stderr, "the two ways differ\n"); return 1; }
    return 0;
}
