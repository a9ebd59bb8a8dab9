// The kept buffers behind Engine.BufferCache: for each size, a list threaded through the freed
// buffers themselves (the first word of a kept buffer points to the next one), found through an
// open-addressing table keyed by size. Taking or keeping a buffer is one lock, one or two probes
// and a pointer swap: no hashing of Swift dictionaries, no arrays growing or shrinking, no
// allocation. With the Swift version (a dictionary from size to an array of pointers, under an
// NSLock) adding two 4-element tensors took 343-360 ns, with this one 199-234 ns (a throwaway
// probe, fastest of 7 x 200,000; docs/performance-log.md, session 30).
#include "CSupport.h"
#include <pthread.h>
#include <stdlib.h>

struct gan_cache_slot {
    size_t size;   // 0: unused
    void *head;    // the first kept buffer of this size, NULL when none
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct gan_cache_slot *slots;  // slot_count of them, a power of two, at most half used
static size_t slot_count;             // 0 until the first buffer is kept
static unsigned slot_shift;           // 64 − log2(slot_count): the hash's top bits pick the slot
static size_t used_slots;
static size_t kept_bytes;
static long long capacity_bytes = -1;  // −1: not yet read from GAN_BUFFER_CACHE_MIB

static size_t slot_index(size_t size) {
    // Sizes are multiples of 64: drop those bits, then Fibonacci hashing spreads neighbours.
    return (size_t)(((unsigned long long)(size >> 6) * 0x9E3779B97F4A7C15ull) >> slot_shift);
}

// The slot of `size`, or the empty one where it would go; NULL while there is no table.
static struct gan_cache_slot *find(size_t size) {
    if (!slots) return NULL;
    size_t i = slot_index(size);
    while (slots[i].size != 0 && slots[i].size != size) i = (i + 1) & (slot_count - 1);
    return &slots[i];
}

// Doubles the table (or makes the first one); 0 when memory is short, leaving the old table.
static int grow(void) {
    size_t count = slot_count ? 2 * slot_count : 256;
    struct gan_cache_slot *fresh = calloc(count, sizeof *fresh);
    if (!fresh) return 0;
    struct gan_cache_slot *old = slots;
    size_t old_count = slot_count;
    slots = fresh;
    slot_count = count;
    slot_shift = 64 - (unsigned)__builtin_ctzll((unsigned long long)count);
    for (size_t i = 0; i < old_count; i++) {
        if (old[i].size == 0) continue;
        *find(old[i].size) = old[i];
    }
    free(old);
    return 1;
}

long long gan_buffer_cache_capacity_from(const char *mib) {
    char *end = NULL;
    long long value = mib ? strtoll(mib, &end, 10) : 0;
    // Unset or not a whole number: the default; a negative count keeps nothing, as 0 does.
    if (!mib || end == mib || *end != 0) return 1024ll << 20;
    return value < 0 ? 0 : value << 20;
}

static long long capacity_locked(void) {
    if (capacity_bytes < 0) capacity_bytes = gan_buffer_cache_capacity_from(getenv("GAN_BUFFER_CACHE_MIB"));
    return capacity_bytes;
}

void *gan_buffer_cache_take(size_t size) {
    pthread_mutex_lock(&lock);
    struct gan_cache_slot *s = find(size);
    void *p = s ? s->head : NULL;
    if (p) {
        s->head = *(void **)p;
        kept_bytes -= size;
    }
    pthread_mutex_unlock(&lock);
    return p;
}

void gan_buffer_cache_put(void *p, size_t size) {
    pthread_mutex_lock(&lock);
    int kept = 0;
    if ((long long)(kept_bytes + size) <= capacity_locked()) {
        struct gan_cache_slot *s = find(size);
        if ((!s || s->size == 0) && 2 * (used_slots + 1) > slot_count) {
            s = grow() ? find(size) : NULL;
        }
        if (s) {
            if (s->size == 0) {
                s->size = size;
                used_slots++;
            }
            *(void **)p = s->head;
            s->head = p;
            kept_bytes += size;
            kept = 1;
        }
    }
    pthread_mutex_unlock(&lock);
    if (!kept) free(p);
}

// Frees every kept buffer (the lists stay, empty); returns the bytes freed.
static size_t release_locked(void) {
    size_t bytes = kept_bytes;
    for (size_t i = 0; i < slot_count; i++) {
        for (void *p = slots[i].head; p;) {
            void *next = *(void **)p;
            free(p);
            p = next;
        }
        slots[i].head = NULL;
    }
    kept_bytes = 0;
    return bytes;
}

size_t gan_buffer_cache_release(void) {
    pthread_mutex_lock(&lock);
    size_t bytes = release_locked();
    pthread_mutex_unlock(&lock);
    return bytes;
}

size_t gan_buffer_cache_bytes(void) {
    pthread_mutex_lock(&lock);
    size_t bytes = kept_bytes;
    pthread_mutex_unlock(&lock);
    return bytes;
}

long long gan_buffer_cache_capacity(void) {
    pthread_mutex_lock(&lock);
    long long bytes = capacity_locked();
    pthread_mutex_unlock(&lock);
    return bytes;
}

void gan_buffer_cache_set_capacity(long long bytes) {
    pthread_mutex_lock(&lock);
    capacity_bytes = bytes < 0 ? 0 : bytes;
    if (kept_bytes > (size_t)capacity_bytes) release_locked();
    pthread_mutex_unlock(&lock);
}
