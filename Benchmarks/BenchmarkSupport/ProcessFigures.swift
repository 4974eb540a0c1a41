import Foundation
import ProcFS

/// What the benchmarks read about a process from /proc, so each prints the same figures the
/// same way.
public enum ProcessFigures {
    /// A memory field of `/proc/<pid>/status` in MiB: `VmRSS` (resident now) or `VmHWM` (peak).
    public static func memoryMiB(_ field: String, pid: String = "self") -> Double {
        let status = ProcFS.contents(of: "/proc/\(pid)/status") ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("\(field):") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }

    /// Peak resident memory of this process in MiB.
    public static func peakResidentMiB() -> Double { memoryMiB("VmHWM") }

    /// CPU seconds (user + system) the process has used.
    public static func cpuSeconds(pid: String) -> Double {
        let fields = (ProcFS.contents(of: "/proc/\(pid)/stat") ?? "")
            .split(separator: ")").last?.split(separator: " ") ?? []
        let ticks = fields.count > 13 ? (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0) : 0
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

extension Duration {
    /// This duration in seconds, fractions included.
    public var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
