#ifndef GAN_CHANNEL_EPILOGUE_H
#define GAN_CHANNEL_EPILOGUE_H
#include <oneapi/dnnl/dnnl.h>

#define GAN_MAX_BLOCK 512

/// A 4-D float tensor whose (image, channel block) runs are dense: plain NCHW (block 1),
/// oneDNN's nChw{block}c, or NHWC (one block of all c channels). Strides count floats.
typedef struct {
    float *base;
    long n, c, h, w, block, stride_n, stride_cb;
} gan_layout;

/// What follows the convolution: `x + bias[c]` (no bias: NULL), then leaky ReLU with `slope`
/// when `activate`.
typedef struct {
    const float *bias;
    float slope;
    int activate;
} gan_epilogue;

/// Plain NCHW at `base`.
gan_layout gan_plain_layout(float *base, long n, long c, long h, long w);
/// Fills `out` for the memory `md` at `base`; non-zero for layouts it does not describe.
int gan_layout_from_md(const dnnl_memory_desc_t *md, void *base, gan_layout *out);
/// Applies `e` where the values are (on oneDNN's OpenMP threads).
void gan_epilogue_in_place(const gan_layout *l, const gan_epilogue *e);
/// Applies `e` while copying `src` into plain NCHW `dst`.
void gan_epilogue_to_plain(const gan_layout *src, const gan_epilogue *e, float *dst);
/// Applies `e` to the values of image `n`, channel block `cb`, writing them into the plain
/// [c, h, w] `image` (on the calling thread).
void gan_epilogue_block_to_plain(const gan_layout *src, const gan_epilogue *e, long n, long cb, float *image);
/// The gradient through leaky ReLU, moved into `dst`'s layout: g where y > 0, slope · g elsewhere,
/// from plain NCHW `g` (upstream gradient) and `y` (the activation's output), shaped as `dst`
/// (padding channels of a last partial block set to 0). With `sums`, also sums[c] = the sum of
/// channel c's values over images and pixels (per image in float, across images in double, the
/// threads' parts added in order). On oneDNN's OpenMP threads; non-zero if memory ran out.
int gan_leaky_gradient_to_layout(const float *g, const float *y, float slope, const gan_layout *dst, float *sums);
#endif
