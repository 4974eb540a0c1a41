import AllocatorSettings
import Synchronization
import Testing

@Suite("glibc malloc settings of the operator")
struct AllocatorSettingsTests {
    /// Records what `apply` sets instead of changing this process's malloc.
    final class Recorder: Sendable {
        let calls = Mutex<[[Int32]]>([])
        func set(_ parameter: Int32, _ value: Int32) -> Int32 {
            calls.withLock { $0.append([parameter, value]) }
            return parameter == -3 ? 0 : 1  // the mmap threshold refused, to see a refusal reported
        }
    }

    @Test("one arena, a fixed mmap threshold of 4 MiB, a trim threshold of 64 KiB, no top pad, with glibc's parameter numbers; a refusal is reported")
    func defaults() {
        let settings = AllocatorSettings.settings(for: [:])
        #expect(settings.map(\.environmentVariable) == ["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"])
        #expect(settings.map(\.value) == [1, 4_194_304, 65_536, 0])
        // glibc's own numbers for them (malloc.h): a wrong one would set something else.
        #expect(settings.map(\.parameter) == [-8, -3, -1, -2])
        let recorder = Recorder()
        let refused = AllocatorSettings.apply(for: [:], set: recorder.set)
        #expect(recorder.calls.withLock { $0 } == [[-8, 1], [-3, 4_194_304], [-1, 65_536], [-2, 0]])
        #expect(refused == ["MALLOC_MMAP_THRESHOLD_"])
        #expect(AllocatorSettings.lastApplied.set == ["MALLOC_ARENA_MAX", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"])
        #expect(AllocatorSettings.lastApplied.refused == ["MALLOC_MMAP_THRESHOLD_"])
    }

    @Test("glibc's variables and tunables win, each for its own setting; a variable that is empty or not a number does not count")
    func environmentWins() {
        func names(_ environment: [String: String]) -> [String] { AllocatorSettings.settings(for: environment).map(\.environmentVariable) }
        #expect(names(["MALLOC_ARENA_MAX": "4", "MALLOC_TOP_PAD_": "131072", "PATH": "/usr/bin"]) == ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
        #expect(names(["GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0"]) == ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_"])
        #expect(names(["GLIBC_TUNABLES": "glibc.malloc.hugetlb=1:glibc.rtld.optional_static_tls=2048"]).count == 4,
                "tunables of other things leave the settings")
        #expect(names(["MALLOC_ARENA_MAX": "", "MALLOC_TOP_PAD_": "lots"]).count == 4, "glibc ignores these, so the operator's apply")
    }
}
