import BenchmarkSupport
import Foundation
import TalosAPI

// Client throughput and peak memory for one verified snapshot stream over mutual TLS from
// talos-test-server (its own process, serving a generated snapshot of SIZE_MIB MiB), consumed
// and discarded. Run with: scripts/benchmark-talos
let talosconfig = CommandLine.arguments[1]
let sizeMiB = Int(CommandLine.arguments[2])!


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
let seconds = elapsed.inSeconds
print(String(format: "talos client: %d MiB verified in %.2f s = %.1f MiB/s, peak RSS %.1f MiB",
             size >> 20, seconds, Double(size) / 1_048_576 / seconds, ProcessFigures.peakResidentMiB()))
precondition(size == sizeMiB * 1024 * 1024 + 32, "unexpected snapshot size \(size)")
