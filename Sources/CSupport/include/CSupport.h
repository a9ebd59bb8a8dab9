#ifndef GAN_CSUPPORT_H
#define GAN_CSUPPORT_H

/// Sets flush-to-zero and denormals-are-zero on the calling thread (MXCSR on x86, FPCR on arm64).
/// Denormal floats make some GAN runs 1.6-2x slower after a few hundred steps.
void gan_set_flush_denormals(int enabled);

/// 1 when the calling thread flushes denormals to zero.
int gan_flush_denormals_enabled(void);

/// 1 when the CPU supports AVX-512F (used to choose the OpenBLAS core type).
int gan_cpu_has_avx512f(void);

/// 1 when the CPU supports AVX2 and FMA.
int gan_cpu_has_avx2(void);

/// Marks the calling thread as running one part of a parallel split (kernels and sgemm called
/// on it then stay on it), or clears the mark.
void gan_set_serial(int on);

/// 1 when the calling thread is marked by gan_set_serial.
int gan_is_serial(void);

/// Uniforms from Philox4x32-10 (RandomGenerator) for counters start … start + 16·groups − 1 under
/// `key`, 64 values per group: out[4i + j] = (word j of block i >> 8) · scale + offset, with AVX-512;
/// returns 0, having done nothing, when the CPU lacks it.
int gan_uniform_wide(float *out, long groups, unsigned long long start, unsigned long long key, float scale, float offset);

/// Adam's update (see OptimizerKernels.adam for the order of operations) with AVX-512, on n
/// values; returns 0, having done nothing, when the CPU lacks AVX-512.
int gan_adam_wide(float *p, const float *g, float *m, float *v, long n, float b1, float b2, float eps, float wd,
                  float s, float c);

#endif
