#ifndef GAN_GROWN_BUFFER_H
#define GAN_GROWN_BUFFER_H
#include <stddef.h>

/// A scratch buffer that only grows (zeroed: empty).
typedef struct { void *p; size_t bytes; } gan_buffer;

/// `b`'s memory, first replaced by a larger mapping when it holds fewer than `bytes`; NULL when
/// out of memory (then `b` is empty).
void *gan_grown(gan_buffer *b, size_t bytes);
#endif
