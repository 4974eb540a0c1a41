import BackupOperator
import BenchmarkSupport
import Foundation
import S3
import TalosAPI

// The operator's snapshot path end to end: a verified snapshot stream from talos-test-server
// (its own process, serving a generated snapshot) through TalosToS3Transfer (the backup
// controller's transfer, 8 MiB parts, 2 in flight) into the S3 test server named by
// $S3_TEST_SERVER: AUTH (moto with authentication on, the default) or RGW (Ceph's RADOS
// Gateway). Prints throughput and this process's peak resident memory.
// Run with: scripts/benchmark-pipeline
let talosconfig = CommandLine.arguments[1]
let sizeMiB = Int(CommandLine.arguments[2])!
let partsInFlight = CommandLine.arguments.count > 3 ? Int(CommandLine.arguments[3])! : TalosToS3Transfer().maxConcurrentParts
AllocatorTuning.returnLargeBuffersToTheSystem()


let environment = ProcessInfo.processInfo.environment
let server = environment["S3_TEST_SERVER"] ?? "AUTH"
let context = try Talosconfig.parse(try String(contentsOfFile: talosconfig, encoding: .utf8), source: talosconfig)
let destination = BackupDestination(
    s3: S3Configuration(
        region: environment["S3_TEST_REGION"] ?? "us-east-1", endpoint: environment["S3_TEST_\(server)_ENDPOINT"]!,
        credentials: S3Credentials(accessKeyID: environment["S3_TEST_\(server)_ACCESS_KEY_ID"]!,
                                   secretAccessKey: environment["S3_TEST_\(server)_SECRET_ACCESS_KEY"]!)),
    bucket: environment["S3_TEST_BUCKET"] ?? "etcd-backups", key: "pipeline-benchmark/\(UUID().uuidString).db")
let clock = ContinuousClock()
let start = clock.now
/// What each task of the run gives back: the transfer its result, the sampler its peaks.
enum Outcome: Sendable {
    case stored(StoredBackup)
    /// Peak heap in use and held free while the transfer ran, sampled every 50 ms: in-use bytes
    /// that grow with the snapshot mean buffering, free bytes that grow mean fragmentation.
    case peaks(inUse: Int, heldFree: Int)
}
var stored: StoredBackup?
var peakInUse = 0, peakFree = 0
try await withThrowingTaskGroup(of: Outcome.self) { group in
    group.addTask {
        var inUse = 0, heldFree = 0
        while !Task.isCancelled {
            let heap = AllocatorTuning.heapBytes()
            inUse = max(inUse, heap.inUse)
            heldFree = max(heldFree, heap.heldFree)
            try? await Task.sleep(for: .milliseconds(50))
        }
        return .peaks(inUse: inUse, heldFree: heldFree)
    }
    group.addTask {
        .stored(try await TalosToS3Transfer(maxConcurrentParts: partsInFlight, talosTimeout: .seconds(60)).store(talos: context, destination: destination, owner: "benchmark"))
    }
    while let outcome = try await group.next() {
        switch outcome {
        case .stored(let result):
            stored = result
            group.cancelAll()
        case .peaks(let inUse, let heldFree):
            (peakInUse, peakFree) = (inUse, heldFree)
        }
    }
}
let elapsed = clock.now - start
let seconds = elapsed.inSeconds
print(String(format: "pipeline Talos -> S3 (\(server)): %d MiB in %.2f s = %.1f MiB/s, peak RSS %.1f MiB (heap in use at most %.1f MiB, held free at most %.1f MiB)",
             Int(stored!.size >> 20), seconds, Double(stored!.size) / 1_048_576 / seconds, ProcessFigures.peakResidentMiB(),
             Double(peakInUse) / 1_048_576, Double(peakFree) / 1_048_576))
precondition(stored!.size == Int64(sizeMiB) * 1024 * 1024 + 32, "unexpected snapshot size \(stored!.size)")

