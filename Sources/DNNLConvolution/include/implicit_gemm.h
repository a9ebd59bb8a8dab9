#ifndef GAN_IMPLICIT_GEMM_H
#define GAN_IMPLICIT_GEMM_H
#include "dnnl_convolution.h"

/// Whether `gan_implicit_gemm_convolution` takes this call: channels-last activations, no
/// dilation, an AVX2 CPU (without AVX-512 the kernels beat oneDNN 2.6's jit:avx2; with it, its
/// AVX-512 kernels where 128 channels or more are written), at least 16 channels on each side
/// and a multiple of 16 on the side it writes (the output channels, or the input channels for an
/// input gradient). Mode 0 off (GAN_IGEMM=0
/// at start), 1 on (the default; with AVX-512 only where the side written is 128 channels or
/// more), 2 every call that fits (GAN_IGEMM=2; for tests and measurements).
int gan_implicit_gemm_fits(gan_dnnl_kind kind, const gan_dnnl_shape *shape);
/// Whether the kernels can write `channels` channels (at least 16, a multiple of 16): a layer
/// fits when both its sides have at least 16 and the side it writes passes this.
int gan_implicit_gemm_writes_channels(long channels);
int gan_implicit_gemm_enabled(void);
// The mode the process starts in: GAN_IGEMM=0 or 2, else 1.
int gan_implicit_gemm_start_mode(void);
void gan_implicit_gemm_set_enabled(int mode);
/// Calls taken so far (for tests: that the path is taken).
long gan_implicit_gemm_calls(void);
/// Whether the kernels use their AVX-512 register tiles (6 rows × 32 columns) instead of the
/// AVX2 ones: on by default where the CPU has AVX-512 (GAN_IGEMM_TILE=avx2 at start turns them
/// off); setting 1 on a CPU without it keeps them off. Both give the same bits.
int gan_implicit_gemm_wide_tiles(void);
void gan_implicit_gemm_set_wide_tiles(int on);

/// `gan_dnnl_convolution`'s forward, input gradient or weight gradient as matrix products
/// straight from the channels-last activations (no unfolded copy); `threads` OpenMP threads.
/// Returns non-zero, having written nothing, when it does not fit or memory runs out.
int gan_implicit_gemm_convolution(gan_dnnl_kind kind, const gan_dnnl_shape *shape, const float *a, const float *b,
                                  float *out, int threads);
#endif
