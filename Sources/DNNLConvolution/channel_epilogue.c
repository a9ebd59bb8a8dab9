#ifdef __linux__
// The step after a convolution in inference: per-channel bias, then leaky ReLU, applied where the
// convolution left its output (oneDNN's channel-blocked layout) or while moving it to plain NCHW.
// Done here rather than by a separate pass over a plain copy because at batch 500 the generator's
// 14→28 output is 200 MB: every extra pass over it is a read and a write of all of it.
// The arithmetic is the engine's `affineLeakyRelu` (v = x + b; v > 0 ? v : slope · v, no FMA),
// so the values are the same bit for bit.
#include "channel_epilogue.h"
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);

gan_layout gan_plain_layout(float *base, long n, long c, long h, long w) {
    gan_layout l = {base, n, c, h, w, 1, c * h * w, h * w};
    return l;
}

int gan_layout_from_md(const dnnl_memory_desc_t *md, void *base, gan_layout *out) {
    if (md->ndims != 4 || md->data_type != dnnl_f32 || md->format_kind != dnnl_blocked || md->offset0 != 0) return 1;
    for (int i = 0; i < 4; i++) if (md->padded_offsets[i] != 0) return 1;
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    long block;
    if (b->inner_nblks == 0)  // NCHW, or NHWC: one block of all channels
        block = md->dims[1] > 1 && b->strides[1] == 1 && b->strides[3] == md->dims[1] ? md->dims[1] : 1;
    else if (b->inner_nblks == 1 && b->inner_idxs[0] == 1) block = b->inner_blks[0];
    else return 1;
    long w = md->dims[3];
    // Each (image, channel block) must be one dense run of h · w · block values.
    if (b->strides[3] != block || b->strides[2] != w * block || block > GAN_MAX_BLOCK) return 1;
    if (md->padded_dims[0] != md->dims[0] || md->padded_dims[2] != md->dims[2] || md->padded_dims[3] != w) return 1;
    out->base = base;
    out->n = md->dims[0]; out->c = md->dims[1]; out->h = md->dims[2]; out->w = w;
    out->block = block;
    out->stride_n = b->strides[0];
    out->stride_cb = b->strides[1];
    return 0;
}

static inline float act(float v, const gan_epilogue *e) { return e->activate && !(v > 0) ? e->slope * v : v; }

#if defined(__x86_64__)
static inline __m128 act4(__m128 v, const gan_epilogue *e) {
    if (!e->activate) return v;
    __m128 m = _mm_cmpgt_ps(v, _mm_setzero_ps());
    return _mm_or_ps(_mm_and_ps(m, v), _mm_andnot_ps(m, _mm_mul_ps(v, _mm_set1_ps(e->slope))));
}
#endif

typedef struct {
    const gan_layout *src;
    const gan_epilogue *e;
    float *dst;  // NULL: in place
} job;

// The bias of the channels of block `cb` (0 for padding channels and without a bias).
static void block_bias(const gan_layout *l, const gan_epilogue *e, long cb, float *bias) {
    long b = l->block, c0 = cb * b;
    for (long k = 0; k < b; k++) bias[k] = (e->bias && c0 + k < l->c) ? e->bias[c0 + k] : 0;
}

// One (image, channel block) in place: h · w pixels of `block` channels each.
static void in_place(const job *j, long n, long cb) {
    const gan_layout *l = j->src;
    float *p = l->base + n * l->stride_n + cb * l->stride_cb;
    long hw = l->h * l->w, b = l->block;
    float bias[GAN_MAX_BLOCK];
    block_bias(l, j->e, cb, bias);
    if (!j->e->bias && !j->e->activate) return;
#if defined(__x86_64__)
    if (b % 4 == 0) {
        __m128 bv[GAN_MAX_BLOCK / 4];
        for (long k = 0; k < b / 4; k++) bv[k] = _mm_loadu_ps(bias + 4 * k);
        for (long i = 0; i < hw; i++, p += b)
            for (long k = 0; k < b / 4; k++) {
                __m128 v = _mm_loadu_ps(p + 4 * k);
                if (j->e->bias) v = _mm_add_ps(v, bv[k]);
                _mm_storeu_ps(p + 4 * k, act4(v, j->e));
            }
        return;
    }
    if (b == 1) {
        __m128 bv = _mm_set1_ps(bias[0]);
        long i = 0;
        for (; i + 4 <= hw; i += 4) {
            __m128 v = _mm_loadu_ps(p + i);
            if (j->e->bias) v = _mm_add_ps(v, bv);
            _mm_storeu_ps(p + i, act4(v, j->e));
        }
        for (; i < hw; i++) p[i] = act(j->e->bias ? p[i] + bias[0] : p[i], j->e);
        return;
    }
#endif
    for (long i = 0; i < hw * b; i++) p[i] = act(j->e->bias ? p[i] + bias[i % b] : p[i], j->e);
}

static void to_plain(const job *j, long n, long cb) {
    gan_epilogue_block_to_plain(j->src, j->e, n, cb, j->dst + n * j->src->c * j->src->h * j->src->w);
}

void gan_epilogue_block_to_plain(const gan_layout *l, const gan_epilogue *e, long n, long cb, float *image) {
    const float *s = l->base + n * l->stride_n + cb * l->stride_cb;
    long hw = l->h * l->w, b = l->block, c0 = cb * b;
    long channels = l->c - c0 < b ? l->c - c0 : b;
    float *d = image + c0 * hw;
    float bias[GAN_MAX_BLOCK];
    block_bias(l, e, cb, bias);
    long k = 0;
#if defined(__x86_64__)
    if (b % 4 == 0) {
        for (; k + 4 <= channels; k += 4) {
            __m128 b0 = _mm_set1_ps(bias[k]), b1 = _mm_set1_ps(bias[k + 1]), b2 = _mm_set1_ps(bias[k + 2]), b3 = _mm_set1_ps(bias[k + 3]);
            long i = 0;
            for (; i + 4 <= hw; i += 4) {
                __m128 r0 = _mm_loadu_ps(s + (i + 0) * b + k), r1 = _mm_loadu_ps(s + (i + 1) * b + k);
                __m128 r2 = _mm_loadu_ps(s + (i + 2) * b + k), r3 = _mm_loadu_ps(s + (i + 3) * b + k);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  // now row q holds channel k + q for pixels i…i+3
                if (e->bias) { r0 = _mm_add_ps(r0, b0); r1 = _mm_add_ps(r1, b1); r2 = _mm_add_ps(r2, b2); r3 = _mm_add_ps(r3, b3); }
                _mm_storeu_ps(d + (k + 0) * hw + i, act4(r0, e));
                _mm_storeu_ps(d + (k + 1) * hw + i, act4(r1, e));
                _mm_storeu_ps(d + (k + 2) * hw + i, act4(r2, e));
                _mm_storeu_ps(d + (k + 3) * hw + i, act4(r3, e));
            }
            for (; i < hw; i++)
                for (long q = 0; q < 4; q++) {
                    float v = s[i * b + k + q];
                    d[(k + q) * hw + i] = act(e->bias ? v + bias[k + q] : v, e);
                }
        }
    }
#endif
    for (; k < channels; k++)
        for (long i = 0; i < hw; i++) {
            float v = s[i * b + k];
            d[k * hw + i] = act(e->bias ? v + bias[k] : v, e);
        }
}

static void run_job(void *arg) {
    const job *j = arg;
    long blocks = (j->src->c + j->src->block - 1) / j->src->block, items = j->src->n * blocks;
    long t = omp_get_thread_num(), parts = omp_get_num_threads();
    for (long i = t * items / parts; i < (t + 1) * items / parts; i++) {
        if (j->dst) to_plain(j, i / blocks, i % blocks);
        else in_place(j, i / blocks, i % blocks);
    }
}

void gan_epilogue_in_place(const gan_layout *l, const gan_epilogue *e) {
    job j = {l, e, NULL};
    GOMP_parallel(run_job, &j, 0, 0);
}

void gan_epilogue_to_plain(const gan_layout *src, const gan_epilogue *e, float *dst) {
    job j = {src, e, dst};
    GOMP_parallel(run_job, &j, 0, 0);
}

// The backward of bias + leaky ReLU before a convolution's backward: the same arithmetic as the
// engine's LeakyGradK (y > 0 ? g : slope · g), written straight into the blocked layout both
// backward primitives read, so the gradient is made and reordered in one pass instead of three.
typedef struct {
    const float *g, *y;
    float slope;
    const gan_layout *dst;
    double *partials;  // [threads][c], NULL: no sums
} leaky_job;

static inline float leaky_grad(float g, float y, float slope) { return y > 0 ? g : slope * g; }

#if defined(__x86_64__)
static inline __m128 leaky_grad4(__m128 g, __m128 y, __m128 slope) {
    __m128 m = _mm_cmpgt_ps(y, _mm_setzero_ps());
    return _mm_or_ps(_mm_and_ps(m, g), _mm_andnot_ps(m, _mm_mul_ps(slope, g)));
}
#endif

// Image n, channel block cb; adds each channel's sum to `acc` (NULL: none).
static void leaky_block(const leaky_job *j, long n, long cb, double *acc) {
    const gan_layout *l = j->dst;
    long hw = l->h * l->w, b = l->block, c0 = cb * b;
    long channels = l->c - c0 < b ? l->c - c0 : b;
    const float *g = j->g + (n * l->c + c0) * hw, *y = j->y + (n * l->c + c0) * hw;
    float *d = l->base + n * l->stride_n + cb * l->stride_cb;
    long k = 0;
#if defined(__x86_64__)
    __m128 sl = _mm_set1_ps(j->slope);
    if (b % 4 == 0) {
        for (; k + 4 <= channels; k += 4) {
            __m128 s0 = _mm_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
            long i = 0;
            for (; i + 4 <= hw; i += 4) {
                __m128 r0 = leaky_grad4(_mm_loadu_ps(g + (k + 0) * hw + i), _mm_loadu_ps(y + (k + 0) * hw + i), sl);
                __m128 r1 = leaky_grad4(_mm_loadu_ps(g + (k + 1) * hw + i), _mm_loadu_ps(y + (k + 1) * hw + i), sl);
                __m128 r2 = leaky_grad4(_mm_loadu_ps(g + (k + 2) * hw + i), _mm_loadu_ps(y + (k + 2) * hw + i), sl);
                __m128 r3 = leaky_grad4(_mm_loadu_ps(g + (k + 3) * hw + i), _mm_loadu_ps(y + (k + 3) * hw + i), sl);
                s0 = _mm_add_ps(s0, r0); s1 = _mm_add_ps(s1, r1); s2 = _mm_add_ps(s2, r2); s3 = _mm_add_ps(s3, r3);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);  // now row q holds pixel i + q for channels k…k+3
                _mm_storeu_ps(d + (i + 0) * b + k, r0);
                _mm_storeu_ps(d + (i + 1) * b + k, r1);
                _mm_storeu_ps(d + (i + 2) * b + k, r2);
                _mm_storeu_ps(d + (i + 3) * b + k, r3);
            }
            float lanes[4][4];
            _mm_storeu_ps(lanes[0], s0); _mm_storeu_ps(lanes[1], s1); _mm_storeu_ps(lanes[2], s2); _mm_storeu_ps(lanes[3], s3);
            for (long q = 0; q < 4; q++) {
                float s = (lanes[q][0] + lanes[q][1]) + (lanes[q][2] + lanes[q][3]);
                for (long r = i; r < hw; r++) {
                    float v = leaky_grad(g[(k + q) * hw + r], y[(k + q) * hw + r], j->slope);
                    d[r * b + k + q] = v;
                    s += v;
                }
                if (acc) acc[c0 + k + q] += s;
            }
        }
    }
#endif
    for (; k < channels; k++) {
        float s = 0;
        for (long i = 0; i < hw; i++) {
            float v = leaky_grad(g[k * hw + i], y[k * hw + i], j->slope);
            d[i * b + k] = v;
            s += v;
        }
        if (acc) acc[c0 + k] += s;
    }
    for (; k < b; k++)
        for (long i = 0; i < hw; i++) d[i * b + k] = 0;
}

static void run_leaky(void *arg) {
    const leaky_job *j = arg;
    const gan_layout *l = j->dst;
    long blocks = (l->c + l->block - 1) / l->block, items = l->n * blocks;
    long t = omp_get_thread_num(), parts = omp_get_num_threads();
    double *acc = j->partials ? j->partials + t * l->c : NULL;
    if (acc) memset(acc, 0, sizeof(double) * (size_t)l->c);
    for (long i = t * items / parts; i < (t + 1) * items / parts; i++) leaky_block(j, i / blocks, i % blocks, acc);
}

extern int omp_get_max_threads(void);

int gan_leaky_gradient_to_layout(const float *g, const float *y, float slope, const gan_layout *dst, float *sums) {
    int threads = omp_get_max_threads();
    double *partials = sums ? calloc((size_t)threads * (size_t)dst->c, sizeof(double)) : NULL;
    if (sums && !partials) return 1;
    leaky_job j = {g, y, slope, dst, partials};
    GOMP_parallel(run_leaky, &j, (unsigned)threads, 0);
    if (sums) {
        for (long c = 0; c < dst->c; c++) {
            double s = 0;
            for (int t = 0; t < threads; t++) s += partials[t * dst->c + c];
            sums[c] = (float)s;
        }
        free(partials);
    }
    return 0;
}
#endif
