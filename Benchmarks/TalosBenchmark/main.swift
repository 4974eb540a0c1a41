import Foundation
import TalosAPI

// Client throughput and peak memory for one verified snapshot stream over mutual TLS from
// talos-test-server (its own process, serving a generated snapshot of SIZE_MIB MiB), consumed
// and discarded. Run with: scripts/benchmark-talos
let talosconfig = CommandLine.arguments[1]
let sizeMiB = Int(CommandLine.arguments[2])!

func peakResidentMiB() -> Double {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
    return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}

let context = try Talosconfig.parse(try String(contentsOfFile: talosconfig, encoding: .utf8), source: talosconfig)
let client = TalosClient(context: context, timeout: .seconds(60))
let clock = ContinuousClock()
let start = clock.now
let size = try await client.snapshot { _, stream in
    var total = 0
    for try await chunk in stream { total += chunk.readableBytes }
    return total
}
let elapsed = clock.now - start
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(String(format: "talos client: %d MiB verified in %.2f s = %.1f MiB/s, peak RSS %.1f MiB",
             size >> 20, seconds, Double(size) / 1_048_576 / seconds, peakResidentMiB()))
precondition(size == sizeMiB * 1024 * 1024 + 32, "unexpected snapshot size \(size)")
