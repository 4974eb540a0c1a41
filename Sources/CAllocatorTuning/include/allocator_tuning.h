#ifndef ALLOCATOR_TUNING_H
#define ALLOCATOR_TUNING_H

/// Serve allocations of at least `bytes` with their own mapping (glibc's M_MMAP_THRESHOLD),
/// which also stops glibc from raising that threshold on its own. Returns 1 on success, 0 where
/// the C library has no such setting.
int allocator_tuning_set_mmap_threshold(int bytes);

/// Bytes the allocator has handed out and not yet had back (in use), and bytes it holds free
/// (glibc's mallinfo2: uordblks + hblkhd, and fordblks). Both 0 without glibc.
void allocator_tuning_heap_bytes(unsigned long *in_use, unsigned long *held_free);

#endif
