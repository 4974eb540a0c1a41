#include "allocator_tuning.h"

#if defined(__GLIBC__)
#include <malloc.h>

int allocator_tuning_set_mmap_threshold(int bytes) {
    return mallopt(M_MMAP_THRESHOLD, bytes);
}
#else
int allocator_tuning_set_mmap_threshold(int bytes) {
    (void)bytes;
    return 0;
}
#endif
