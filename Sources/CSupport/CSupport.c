#include "CSupport.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#include <pmmintrin.h>

void gan_set_flush_denormals(int enabled) {
    unsigned int csr = _mm_getcsr();
    const unsigned int bits = 0x8040; /* FTZ (bit 15) | DAZ (bit 6) */
    _mm_setcsr(enabled ? (csr | bits) : (csr & ~bits));
}

int gan_flush_denormals_enabled(void) { return (_mm_getcsr() & 0x8040) == 0x8040; }

int gan_cpu_has_avx512f(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}

int gan_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
}

#elif defined(__aarch64__)
#include <stdint.h>

void gan_set_flush_denormals(int enabled) {
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    const uint64_t fz = (uint64_t)1 << 24;
    fpcr = enabled ? (fpcr | fz) : (fpcr & ~fz);
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
}

int gan_flush_denormals_enabled(void) {
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return (fpcr >> 24) & 1;
}

int gan_cpu_has_avx512f(void) { return 0; }
int gan_cpu_has_avx2(void) { return 0; }

#else
void gan_set_flush_denormals(int enabled) { (void)enabled; }
int gan_flush_denormals_enabled(void) { return 0; }
int gan_cpu_has_avx512f(void) { return 0; }
int gan_cpu_has_avx2(void) { return 0; }
#endif

/* Set on threads that already run one part of a parallel split: kernels and sgemm called there
   must not split again. */
static _Thread_local int gan_serial_flag;
void gan_set_serial(int on) { gan_serial_flag = on; }
int gan_is_serial(void) { return gan_serial_flag; }

/* Relaxed: the count is read between steps, never used to order memory. */
static long long gan_flops;
void gan_flops_add(long long n) { __atomic_fetch_add(&gan_flops, n, __ATOMIC_RELAXED); }
long long gan_flops_total(void) { return __atomic_load_n(&gan_flops, __ATOMIC_RELAXED); }

#if defined(__GLIBC__)
#include <malloc.h>
int gan_pin_mmap_threshold(int bytes) { return mallopt(M_MMAP_THRESHOLD, bytes); }
#else
int gan_pin_mmap_threshold(int bytes) { (void)bytes; return 0; }
#endif
