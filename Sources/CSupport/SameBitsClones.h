// For loops compiled once per x86 level (AVX-512, AVX2, baseline; the copy is chosen when the
// program loads) that must give the same bits on every CPU: contraction into fused
// multiply-adds is off for the rest of the file that includes this, since only some copies
// could contract.
#ifndef GAN_SAME_BITS_CLONES_H
#define GAN_SAME_BITS_CLONES_H

#pragma clang fp contract(off)

#if defined(__x86_64__) && defined(__clang__)
#define GAN_SAME_BITS_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GAN_SAME_BITS_CLONES
#endif

#endif
