import AllocatorSettings
import Testing

@Suite("glibc malloc settings of the operator")
struct AllocatorSettingsTests {
    @Test("one arena, fixed mmap and trim thresholds of 64 KiB, no top pad; glibc accepts each")
    func defaults() {
        let settings = AllocatorSettings.settings(for: [:])
        #expect(settings.map(\.environmentVariable) == ["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"])
        #expect(settings.map(\.value) == [1, 65_536, 65_536, 0])
        // glibc's own numbers for them (malloc.h): a wrong one would set something else.
        #expect(settings.map(\.parameter) == [-8, -3, -1, -2])
        #expect(AllocatorSettings.apply(for: [:]).isEmpty, "mallopt accepted every setting")
    }

    @Test("glibc's variables in the environment win: a variable set skips its setting; GLIBC_TUNABLES with a malloc tunable skips all")
    func environmentWins() {
        let some = AllocatorSettings.settings(for: ["MALLOC_ARENA_MAX": "4", "MALLOC_TOP_PAD_": "131072", "PATH": "/usr/bin"])
        #expect(some.map(\.environmentVariable) == ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"])
        #expect(AllocatorSettings.settings(for: ["GLIBC_TUNABLES": "glibc.malloc.arena_max=2"]).isEmpty)
        #expect(AllocatorSettings.settings(for: ["GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=2048"]).count == 4,
                "a tunable of something else leaves the settings")
    }
}
