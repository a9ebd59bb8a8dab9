#ifndef GAN_WINOGRAD_H
#define GAN_WINOGRAD_H
#include "dnnl_convolution.h"

/// Whether `gan_winograd_convolution` takes this call: the forward of a channels-last 5×5,
/// stride-2, pad-2 convolution that halves an even square image (the WGAN-GP critic's layers),
/// input channels a multiple of 16, output channels a multiple of 64, on an AVX-512 CPU. Mode 0
/// off (GAN_WINOGRAD=0 at start); 1 (the default) only where the output side is even, so that
/// its 2×2 tiles cover it exactly, and there are at least 96 tiles (the critic's 64 → 128 layer:
/// 1.33–1.53× the implicit-GEMM kernels; at 7×7 a quarter of the tiles' work is padding and it
/// ran 0.98–1.00×); 2 every call that fits (GAN_WINOGRAD=2; for tests and measurements).
int gan_winograd_fits(gan_dnnl_kind kind, const gan_dnnl_shape *shape);
int gan_winograd_enabled(void);
void gan_winograd_set_enabled(int mode);
/// Calls taken so far (for tests: that the path is taken).
long gan_winograd_calls(void);

/// The forward y = conv(x, w) (x [n, h, w, c], w OIHW, y [n, oh, ow, o]) as Winograd F(2×2, 3×3)
/// products on `threads` OpenMP threads. Every output value is computed by one thread in a fixed
/// order, so the bits do not depend on the thread count. Returns non-zero, having written
/// nothing, when the call does not fit or memory runs out.
int gan_winograd_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *shape, const float *x, const float *w, float *y,
                             int threads);
#endif
