import CAllocatorTuning

/// Process-wide allocator setting for streaming large parts.
public enum AllocatorTuning {
    /// Makes glibc serve every allocation of 1 MiB or more with its own mapping, returned to
    /// the system when freed. Without it, glibc raises its mmap threshold after the first
    /// 16 MiB part is freed and later parts come from heap arenas that fragment across threads,
    /// so resident memory creeps up with the number of parts uploaded (measured: 197 MiB peak
    /// after 1 GiB, 228 MiB after 4 GiB). Call once at startup, before other threads allocate.
    public static func returnLargeBuffersToTheSystem() {
        _ = allocator_tuning_set_mmap_threshold(1 << 20)
    }

    /// Bytes allocated and in use, and bytes the allocator holds free, for telling buffering
    /// (in use grows) from fragmentation (free grows) in the benchmarks.
    public static func heapBytes() -> (inUse: Int, heldFree: Int) {
        var inUse: UInt = 0, heldFree: UInt = 0
        allocator_tuning_heap_bytes(&inUse, &heldFree)
        return (Int(inUse), Int(heldFree))
    }
}
