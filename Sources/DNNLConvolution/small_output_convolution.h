#ifndef GAN_SMALL_OUTPUT_CONVOLUTION_H
#define GAN_SMALL_OUTPUT_CONVOLUTION_H
#include "channel_epilogue.h"
#include <stddef.h>

#define GAN_SMALL_OUTPUT_MAX 64

/// A convolution in conv2d's terms with o · kh · kw ≤ GAN_SMALL_OUTPUT_MAX and no dilation:
/// weight [o, c, kh, kw], output [n, o, oh, ow], bias [o] or NULL.
typedef struct {
    int o, kh, kw, sh, sw, pt, pl, oh, ow;
    const float *weight;
    const float *bias;
} gan_small_conv;

/// Whether the kernel takes this size here: it is written in AVX-512 and AVX2, so never on other
/// CPUs (an inference chain checks it before running any of its steps).
int gan_small_output_fits(int o, int kh, int kw);
/// Floats of scratch one thread needs for `gan_small_output_convolution`.
size_t gan_small_output_scratch_floats(const gan_layout *x, const gan_epilogue *pre, const gan_small_conv *cv);
/// y (plain [n, o, oh, ow]) = the convolution of x (any `gan_layout`) after `pre` (NULL: none) is
/// applied to x's values, on `threads` OpenMP threads with `threads` × the scratch above.
/// Non-zero (y untouched) when the problem does not fit or the CPU lacks AVX-512.
int gan_small_output_convolution(const gan_layout *x, const gan_epilogue *pre, const gan_small_conv *cv, float *y,
                                 float *scratch, int threads);
#endif
