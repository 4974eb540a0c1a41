#if canImport(CMalloc)
import CMalloc
#endif

/// glibc malloc settings for the operator, a process that lives long and allocates in bursts
/// (each tick of its schedules), applied when `talos-etcd-backup run` starts.
///
/// Why: with glibc's defaults, the operator's resident memory with 1,000 schedules grew from
/// tick to tick (51 MiB after the first, 61.7 to 70.7 MiB after five or six ticks in five runs)
/// while heaptrack showed its live heap flat (16.5 MiB between ticks, 24 at each peak). malloc
/// kept what each peak had freed: spread over several arenas (up to eight per core), in pages
/// that stay partly used, and under an mmap threshold that rises with every large block freed,
/// so that large buffers came from the heap too. One arena, a fixed mmap threshold of 64 KiB
/// (large buffers are mapped and unmapped whole), and freed memory at the heap's top given back
/// from 64 KiB on: two runs then stayed at 58.4 and 58.6 MiB after five and seven ticks
/// (docs/performance.md). One arena means threads take turns in malloc; the operator's work is
/// API requests, not allocation, and a tick was not measurably slower.
///
/// A setting whose glibc variable (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_TRIM_THRESHOLD_`, `MALLOC_TOP_PAD_`) is set in the environment is left to it, and
/// `GLIBC_TUNABLES` naming any `glibc.malloc.` tunable leaves all four to glibc: an operator
/// can still tune malloc the usual way.
public enum AllocatorSettings {
    /// One `mallopt` parameter and the glibc environment variable that sets it too.
    public struct Setting: Sendable, Equatable {
        public var environmentVariable: String
        public var parameter: Int32
        public var value: Int32
    }

    /// The operator's settings, before the environment is consulted.
    public static var operatorDefaults: [Setting] {
        #if canImport(CMalloc)
        [
            Setting(environmentVariable: "MALLOC_ARENA_MAX", parameter: M_ARENA_MAX, value: 1),
            Setting(environmentVariable: "MALLOC_MMAP_THRESHOLD_", parameter: M_MMAP_THRESHOLD, value: 64 * 1024),
            Setting(environmentVariable: "MALLOC_TRIM_THRESHOLD_", parameter: M_TRIM_THRESHOLD, value: 64 * 1024),
            Setting(environmentVariable: "MALLOC_TOP_PAD_", parameter: M_TOP_PAD, value: 0),
        ]
        #else
        []  // not glibc: nothing to set
        #endif
    }

    /// The settings to apply under `environment`: those the environment does not set itself.
    public static func settings(for environment: [String: String]) -> [Setting] {
        if environment["GLIBC_TUNABLES"]?.contains("glibc.malloc.") == true { return [] }
        return operatorDefaults.filter { environment[$0.environmentVariable] == nil }
    }

    /// Applies ``settings(for:)`` with `mallopt`; returns the variables of those glibc refused
    /// (none, with any glibc of the last decade).
    @discardableResult
    public static func apply(for environment: [String: String]) -> [String] {
        #if canImport(CMalloc)
        settings(for: environment).filter { mallopt($0.parameter, $0.value) != 1 }.map(\.environmentVariable)
        #else
        []
        #endif
    }
}
