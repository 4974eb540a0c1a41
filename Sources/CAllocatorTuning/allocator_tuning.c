#include "allocator_tuning.h"
#include <stdlib.h>  /* defines __GLIBC__ on glibc systems */

#if defined(__GLIBC__)
#include <malloc.h>

int allocator_tuning_set_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}

void allocator_tuning_heap_bytes(unsigned long *in_use, unsigned long *held_free) {
    struct mallinfo2 info = mallinfo2();
    *in_use = info.uordblks + info.hblkhd;
    *held_free = info.fordblks;
}
#else
int allocator_tuning_set_mmap_threshold(int bytes) {
    (void)bytes;
    return 0;
}

void allocator_tuning_heap_bytes(unsigned long *in_use, unsigned long *held_free) {
    *in_use = 0;
    *held_free = 0;
}
#endif
