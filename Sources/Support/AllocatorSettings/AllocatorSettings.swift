#if canImport(CMalloc)
import CMalloc
#endif
import Synchronization

/// glibc malloc settings for the operator, a process that lives long and allocates in bursts
/// (each tick of its schedules), applied when `talos-etcd-backup run` starts, before the
/// command is parsed and before any worker thread exists.
///
/// Why: with glibc's defaults, the operator's resident memory with 1,000 schedules grew from
/// tick to tick (51 to 58 MiB after the first, 61.7 to 70.7 MiB after five or six ticks in four
/// runs) while heaptrack showed its live heap flat (16.5 MiB between ticks, 24 at each peak).
/// malloc kept what each peak had freed: spread over several arenas (up to eight per core), in
/// pages that stay partly used, and under an mmap threshold that rises with every large block
/// freed. One arena, a fixed mmap threshold, and freed memory at the heap's top given back from
/// 64 KiB on: runs then stayed at 57.8 to 59.1 MiB after five to seven ticks
/// (docs/performance.md).
///
/// The mmap threshold is 4 MiB, not lower: at 64 KiB the snapshot path mapped and unmapped its
/// buffers from 64 KiB up whole, with 12 to 15 times the page faults of glibc's defaults (about
/// 630,000 against 42,000 to 53,000 for 1 GiB) and 1.3 to 1.6 times the CPU; at 1 MiB still 3
/// to 6 times the faults; at 4 MiB 50,000 to 75,000 and the defaults' CPU, and the control
/// plane stayed at 59.1 MiB. Buffers of 4 MiB and more (the uploader's 8 MiB parts, reused
/// through a backup) are still mapped, so they go back to the system when a backup ends.
///
/// A setting whose glibc variable (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`,
/// `MALLOC_TRIM_THRESHOLD_`, `MALLOC_TOP_PAD_`) is set to a number in the environment, or
/// whose tunable (`glibc.malloc.arena_max`, `.mmap_threshold`, `.trim_threshold`, `.top_pad`)
/// `GLIBC_TUNABLES` names, is left to glibc: an operator can still tune malloc the usual way.
public enum AllocatorSettings {
    /// One `mallopt` parameter and the glibc variable and tunable that set it too.
    public struct Setting: Sendable, Equatable {
        public var environmentVariable: String
        public var tunable: String
        public var parameter: Int32
        public var value: Int32
    }

    /// The operator's settings, before the environment is consulted.
    public static var operatorDefaults: [Setting] {
        #if canImport(CMalloc) && canImport(Glibc)
        [
            Setting(environmentVariable: "MALLOC_ARENA_MAX", tunable: "glibc.malloc.arena_max", parameter: M_ARENA_MAX, value: 1),
            Setting(environmentVariable: "MALLOC_MMAP_THRESHOLD_", tunable: "glibc.malloc.mmap_threshold", parameter: M_MMAP_THRESHOLD, value: 4 << 20),
            Setting(environmentVariable: "MALLOC_TRIM_THRESHOLD_", tunable: "glibc.malloc.trim_threshold", parameter: M_TRIM_THRESHOLD, value: 64 * 1024),
            Setting(environmentVariable: "MALLOC_TOP_PAD_", tunable: "glibc.malloc.top_pad", parameter: M_TOP_PAD, value: 0),
        ]
        #else
        []  // not glibc: nothing to set
        #endif
    }

    /// The settings to apply under `environment`: those it does not set itself. A variable set
    /// to something other than a number (glibc ignores it) does not count as set.
    public static func settings(for environment: [String: String]) -> [Setting] {
        let tunables = (environment["GLIBC_TUNABLES"] ?? "").split(separator: ":").compactMap { $0.split(separator: "=").first.map(String.init) }
        return operatorDefaults.filter { setting in
            let value = environment[setting.environmentVariable] ?? ""
            let variableSet = !value.isEmpty && value.allSatisfy { $0.isASCII && $0.isNumber }
            return !variableSet && !tunables.contains(setting.tunable)
        }
    }

    /// What the last ``apply(for:set:)`` did: the variables of the settings it set, and of those
    /// the setter refused (for `run` to log once logging is set up).
    public static var lastApplied: (set: [String], refused: [String]) { outcome.withLock { $0 } }
    private static let outcome = Mutex<(set: [String], refused: [String])>(([], []))

    /// Applies ``settings(for:)`` with `set` (`mallopt`, which answers 1 for a setting taken);
    /// returns the variables of the settings refused.
    @discardableResult
    public static func apply(for environment: [String: String], set: (Int32, Int32) -> Int32 = AllocatorSettings.mallopt) -> [String] {
        var taken: [String] = [], refused: [String] = []
        for setting in settings(for: environment) {
            if set(setting.parameter, setting.value) == 1 { taken.append(setting.environmentVariable) } else { refused.append(setting.environmentVariable) }
        }
        outcome.withLock { $0 = (taken, refused) }
        return refused
    }

    /// glibc's `mallopt`; refuses everything where there is none.
    public static func mallopt(_ parameter: Int32, _ value: Int32) -> Int32 {
        #if canImport(CMalloc) && canImport(Glibc)
        CMalloc.mallopt(parameter, value)
        #else
        0
        #endif
    }
}
