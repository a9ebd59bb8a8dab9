#ifndef GAN_DNNL_MATMUL_H
#define GAN_DNNL_MATMUL_H

/// Row-major C = op(A) · op(B) (M×K times K×N, no alpha or beta) on oneDNN's matmul primitive,
/// on the calling thread alone. Callable from several threads at once: each runs its own product.
/// Returns 0 on success, non-zero when oneDNN cannot do it (the caller falls back to sgemm).
int gan_dnnl_sgemm(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   float *c, int ldc);

/// Products `gan_dnnl_sgemm` has run (successful calls, all threads).
long gan_dnnl_sgemm_calls(void);

#endif
