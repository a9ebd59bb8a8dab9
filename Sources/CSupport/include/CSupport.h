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

#endif
