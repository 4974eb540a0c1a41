#ifndef ALLOCATOR_TUNING_H
#define ALLOCATOR_TUNING_H

/// Serve allocations of at least `bytes` with their own mapping (glibc's M_MMAP_THRESHOLD),
/// which also stops glibc from raising that threshold on its own. Returns 1 on success, 0 where
/// the C library has no such setting.
int allocator_tuning_set_mmap_threshold(int bytes);

#endif
