// The timeline behind `gan bench train --trace`: spans of work (a matrix product, an Adam part,
// an activation pass, a part of a parallel split, a wait for the workers) recorded by whichever
// thread ran them, into one buffer allocated when recording starts. A span costs a clock read at
// each end and an atomic increment; when no recording runs, the callers test one flag and skip.
#include "CSupport.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

int gan_trace_flag;
static gan_trace_event *events;
static long capacity;
static atomic_long count;
static atomic_int next_thread;
static atomic_uint generation;
static _Thread_local int thread_index;
static _Thread_local unsigned thread_generation;

long long gan_trace_clock(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

int gan_trace_thread(void) {
    unsigned g = atomic_load(&generation);
    if (thread_generation != g) {
        thread_index = atomic_fetch_add(&next_thread, 1);
        thread_generation = g;
    }
    return thread_index;
}

int gan_trace_begin(long events_capacity) {
    gan_trace_flag = 0;
    free(events);
    events = events_capacity > 0 ? malloc((size_t)events_capacity * sizeof *events) : NULL;
    if (!events) {
        capacity = 0;
        return 1;
    }
    capacity = events_capacity;
    atomic_store(&count, 0);
    atomic_store(&next_thread, 0);
    atomic_fetch_add(&generation, 1);
    gan_trace_thread();  // the caller is thread 0
    __atomic_store_n(&gan_trace_flag, 1, __ATOMIC_RELEASE);
    return 0;
}

void gan_trace_end(void) { __atomic_store_n(&gan_trace_flag, 0, __ATOMIC_RELEASE); }

long gan_trace_size(void) {
    long n = atomic_load(&count);
    return n < capacity ? n : capacity;
}

long gan_trace_dropped(void) {
    long n = atomic_load(&count);
    return n > capacity ? n - capacity : 0;
}

const gan_trace_event *gan_trace_events(void) { return events; }

void gan_trace_add(int kind, int a, int b, int c, int d, long long start) { gan_trace_add_span(kind, a, b, c, d, start, gan_trace_clock()); }

void gan_trace_add_span(int kind, int a, int b, int c, int d, long long start, long long end) {
    if (!gan_trace_recording()) return;
    long i = atomic_fetch_add(&count, 1);
    if (i >= capacity) return;
    events[i] = (gan_trace_event){start, end, kind, gan_trace_thread(), a, b, c, d};
}
