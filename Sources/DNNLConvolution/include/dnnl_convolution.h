#ifndef GAN_DNNL_CONVOLUTION_H
#define GAN_DNNL_CONVOLUTION_H

/// What a call computes, in conv2d's terms (x: [n, c, h, w], weight: [o, c, kh, kw],
/// y: [n, o, oh, ow]).
typedef enum {
    GAN_DNNL_FORWARD = 0,         ///< a = x, b = weight, out = y
    GAN_DNNL_BACKWARD_DATA = 1,   ///< a = dy, b = weight, out = dx (a transposed convolution)
    GAN_DNNL_BACKWARD_WEIGHTS = 2, ///< a = x, b = dy, out = dweight
    GAN_DNNL_SMALL_OUTPUT = 3     ///< a forward convolution with o · kh · kw ≤ 64 on the engine's own kernel (chains only, last step)
} gan_dnnl_kind;

typedef struct {
    int n, c, h, w, o, oh, ow, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
    int cl;  ///< activations channels-last (x [n, h, w, c], y [n, oh, ow, o]) instead of NCHW
} gan_dnnl_shape;

/// Runs one convolution through oneDNN with plain NCHW / OIHW buffers (reordering to and from
/// oneDNN's blocked layouts inside). Primitives are created once per shape and kept.
/// Returns 0 on success, non-zero when oneDNN cannot do it (the caller falls back).
int gan_dnnl_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *shape,
                         const float *a, const float *b, float *out, int threads);

/// Which gradients of stride-2 convolutions `gan_dnnl_convolution` runs as four stride-1 ones
/// (see dnnl_convolution.c): 0 none, 1 input gradients, 2 input and weight gradients (the
/// default; GAN_DNNL_PHASES=0 or =data sets the start value).
int gan_dnnl_phases(void);
void gan_dnnl_set_phases(int mode);
/// Gradients run in phases so far (for tests: that the path is taken).
long gan_dnnl_phased_calls(void);
/// Successful `gan_dnnl_convolution` calls so far, whichever kernel ran them (oneDNN's, its
/// phases or the implicit-GEMM kernels): for tests, that the engine's own unfold path was not.
long gan_dnnl_convolution_calls(void);

/// `kind` (GAN_DNNL_FORWARD or GAN_DNNL_BACKWARD_DATA) as `gan_dnnl_convolution`, then `+ bias`
/// per output channel (NULL: none) and leaky ReLU with `slope`, applied while the output moves
/// to plain `out`: a layer and its activation in training without a separate pass over the output.
int gan_dnnl_activated_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *shape, const float *a, const float *b,
                                   const float *bias, float slope, float *out, int threads);
/// The backward of `gan_dnnl_activated_convolution` given the upstream gradient `g` and the
/// output `y` (both plain): gp = g where y > 0, slope · g elsewhere, made once in the layout both
/// backward primitives read; then `input_grad` (of `a`), `weight_grad` and `bias_grad` (Σ gp per
/// channel), each skipped when NULL. `a` and `weight` are the forward's inputs.
int gan_dnnl_activated_backward(gan_dnnl_kind kind, const gan_dnnl_shape *shape, const float *g, const float *y, float slope,
                                const float *a, const float *weight, float *input_grad, float *weight_grad, float *bias_grad,
                                int threads);
#define GAN_DNNL_MAX_CHAIN 16

/// One layer of an inference chain: a convolution (GAN_DNNL_FORWARD: input x, output y), a
/// transposed one (GAN_DNNL_BACKWARD_DATA: input dy, output dx) or, as the last step only, a
/// convolution with few outputs (GAN_DNNL_SMALL_OUTPUT, not through oneDNN), then `+ bias` per output
/// channel (NULL: none) and, when `activate`, leaky ReLU with `slope`.
typedef struct {
    gan_dnnl_kind kind;
    gan_dnnl_shape shape;
    const float *weight;
    const float *bias;
    float slope;
    int activate;
} gan_dnnl_step;

/// Runs `count` steps from plain NCHW `x` to plain NCHW `out`, keeping the activations in between
/// in oneDNN's layouts and applying each bias and activation where the values are. Returns
/// non-zero, having changed nothing the caller keeps except possibly `out`, when a step cannot be
/// chained (the caller falls back to one layer at a time).
int gan_dnnl_inference_chain(int count, const gan_dnnl_step *steps, const float *x, float *out, int threads);

#endif
