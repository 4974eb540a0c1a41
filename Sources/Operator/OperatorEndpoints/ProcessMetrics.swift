import ControllerRuntime
import Foundation
import ProcFS
import Prometheus
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The `process_*` metrics client_golang's process collector exposes (so the usual memory and
/// CPU panels work), read from `/proc/self` when Prometheus scrapes.
public final class ProcessMetrics: Sendable {
    public static let families: [MetricFamily] = [
        MetricFamily("process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds."),
        MetricFamily("process_resident_memory_bytes", help: "Resident memory size in bytes."),
        MetricFamily("process_virtual_memory_bytes", help: "Virtual memory size in bytes."),
        MetricFamily("process_start_time_seconds", help: "Start time of the process since unix epoch in seconds."),
        MetricFamily("process_open_fds", help: "Number of open file descriptors."),
        MetricFamily("process_max_fds", help: "Maximum number of open file descriptors."),
    ]

    private let cpu: Counter
    private let resident: Gauge
    private let virtual: Gauge
    private let start: Gauge
    private let openFDs: Gauge
    private let maxFDs: Gauge
    /// CPU seconds already added to the counter.
    private let countedCPU = Mutex<Double>(0)

    public init(registry: PrometheusCollectorRegistry) {
        func describe(_ index: Int) -> MetricNameDescriptor {
            MetricNameDescriptor(metricName: Self.families[index].name, unitName: "", helpText: Self.families[index].help)
        }
        cpu = registry.makeCounter(descriptor: describe(0), labels: [])
        resident = registry.makeGauge(descriptor: describe(1), labels: [])
        virtual = registry.makeGauge(descriptor: describe(2), labels: [])
        start = registry.makeGauge(descriptor: describe(3), labels: [])
        openFDs = registry.makeGauge(descriptor: describe(4), labels: [])
        maxFDs = registry.makeGauge(descriptor: describe(5), labels: [])
        update()
    }

    /// Reads the figures afresh (called before each scrape). Where `/proc` cannot be read,
    /// the last figures stay.
    public func update() {
        #if os(Linux)
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        // Fields after the command name, which is in parentheses and may contain spaces.
        if let stat = ProcFS.contents(of: "/proc/self/stat"),
           let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // fields[0] is field 3 of proc(5): utime is 14, stime 15, starttime 22, vsize 23, rss 24.
            if fields.count > 21, let user = Double(fields[11]), let system = Double(fields[12]),
               let started = Double(fields[19]), let vsize = Double(fields[20]), let rss = Double(fields[21]) {
                let total = (user + system) / ticks
                let delta = countedCPU.withLock { counted -> Double in
                    let delta = max(0, total - counted)
                    counted = max(counted, total)
                    return delta
                }
                if delta > 0 { cpu.increment(by: delta) }
                resident.set(rss * pageSize)
                virtual.set(vsize)
                if let boot = Self.bootTimeOnce { start.set(boot + started / ticks) }
            }
        }
        if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
            openFDs.set(Double(descriptors.count))
        }
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFDs.set(Double(limit.rlim_cur)) }
        #endif
    }

    /// The system's boot time (Unix seconds), read once: it does not change.
    private static let bootTimeOnce: Double? = bootTime()

    /// The system's boot time (Unix seconds), from `btime` in `/proc/stat`.
    private static func bootTime() -> Double? {
        // Read whole: on a node with many CPUs and interrupts this file is far longer than the
        // 4 KiB Foundation would read, and `btime` comes after the long `intr` line (ProcFS).
        guard let stat = ProcFS.contents(of: "/proc/stat") else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count))
        }
        return nil
    }
}
