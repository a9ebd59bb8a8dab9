#ifdef __linux__
#include "grown_buffer.h"
#include <sys/mman.h>

// mmap, not malloc: freeing a large malloc'd block raises glibc's mmap threshold, after which the
// engine's own multi-megabyte tensors come from the heap and are never returned (+100 MiB RSS
// on dcgan when these buffers went through malloc).
void *gan_grown(gan_buffer *b, size_t bytes) {
    if (b->p && bytes <= b->bytes) return b->p;
    if (b->p) munmap(b->p, b->bytes);
    b->bytes = bytes ? bytes : 64;
    b->p = mmap(NULL, b->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->p == MAP_FAILED) { b->p = NULL; b->bytes = 0; }
    return b->p;
}
#endif
