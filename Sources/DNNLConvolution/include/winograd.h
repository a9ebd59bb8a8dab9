#ifndef GAN_WINOGRAD_H
#define GAN_WINOGRAD_H
#include "dnnl_convolution.h"

/// Whether `gan_winograd_convolution` takes this call: a pass (forward, input gradient, weight
/// gradient) of a channels-last 5×5, stride-2 convolution padded 2 before and 1 after (the
/// WGAN-GP critic's layers) or 1 and 2 (Keras's "same": the dcgan generator's transposed layers,
/// whose forward is an input gradient) that halves an even square image, on an AVX-512 or AVX2 CPU, with
/// the channels read a multiple of 16 and those written a multiple of 64 (the forward and weight
/// gradient write the output channels, the input gradient the input channels). Mode 0 off
/// (GAN_WINOGRAD=0 at start); 1 (the default) where the tiles pay: 2×2 tiles on an even output
/// side with at least 96 of them (the critic's 64 → 128 layer: forward 1.33–1.53× the
/// implicit-GEMM kernels, input gradient 1.42× oneDNN's, weight gradient 1.54–1.57× the
/// kernels), 4×4 tiles on an odd side with at least 128 of them (its 128 → 256 layer's 7×7),
/// and with AVX2 on an even side too where both sides have 128 channels or more (the dcgan
/// generator's 14 → 28 layer: its step 1.04–1.07×),
/// their weight gradient with AVX-512 only with 256 output channels or more (with 128, the dcgan
/// generator's 7 → 14 layer, it ran 0.88–0.95× the kernels there; with AVX2 1.35–1.41×); 2 every
/// call that fits (GAN_WINOGRAD=2; for tests and measurements). The kernels run in AVX-512
/// vectors where the CPU has them, else in AVX2's (winograd_kernels.h, compiled for each).
int gan_winograd_fits(gan_dnnl_kind kind, const gan_dnnl_shape *shape);
int gan_winograd_enabled(void);
void gan_winograd_set_enabled(int mode);
/// Calls taken so far (for tests: that the path is taken), and of those with 4×4 tiles.
long gan_winograd_calls(void);
long gan_winograd_calls_4x4(void);
/// Calls that reused a transformed kernel made from byte-for-byte equal weights (for tests).
long gan_winograd_reused_kernels(void);
/// The tile side: 0 (the default) 2 on even output sides and 4 on odd ones; 2 or 4 every call
/// that fits in mode 2, while mode 1 takes 2 only on even sides and 4 only on odd ones
/// (GAN_WINOGRAD_TILE at start; for tests and measurements).
int gan_winograd_tile(void);
void gan_winograd_set_tile(int m);
/// Whether the kernels run in AVX-512 vectors (the CPU has them and they are not turned off),
/// else AVX2's; off, the AVX2 copy runs on an AVX-512 CPU too (tests compare the two's bits).
int gan_winograd_wide_vectors(void);
void gan_winograd_set_wide_vectors(int on);

/// The forward y = conv(x, w) (a = x [n, h, w, c], b = w OIHW, out = y [n, oh, ow, o]), the
/// input gradient (a = dy [n, oh, ow, o], b = w, out = dx [n, h, w, c]) or the weight gradient
/// (a = x, b = dy, out = dw OIHW) as Winograd F(2×2, 3×3) or F(4×4, 3×3) products on `threads`
/// OpenMP threads. The forward's and input gradient's values are each computed by one thread in
/// a fixed order, so their bits do not depend on the thread count, nor do the 4×4 tiles' weight
/// gradient's; the 2×2 tiles' weight gradient adds per-thread sums in thread order (as the
/// implicit-GEMM kernels' does), so its bits do, never on timing. Returns non-zero, having
/// written nothing, when the call does not fit or memory runs out.
int gan_winograd_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *shape, const float *a, const float *b, float *out,
                             int threads);
#endif
