import Age
import Bbolt
import BenchmarkSupport
import Foundation
import Zstd

// The encoders on their own, in this process, over a file held in memory (a real etcd
// snapshot in scripts/benchmark-encoding): zstd at levels 1, 3 and 9 (ratio and input MiB/s),
// age alone, and zstd 3 + age as the operator chains them. The script times the zstd and age
// CLIs on the same file as the reference. Input is fed in 1 MiB pieces, as a stream.
// Run with: scripts/benchmark-encoding
let file = CommandLine.arguments[1]
let input = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
let mib = Double(input.count) / 1_048_576
let piece = 1 << 20

func measure(_ name: String, _ encode: ([UInt8]) throws -> Int) rethrows {
    let clock = ContinuousClock()
    let start = clock.now
    let output = try encode(input)
    let seconds = (clock.now - start).inSeconds
    print(String(format: "%@: %.1f MiB -> %.1f MiB (ratio %.2f) in %.3f s = %.1f MiB/s of input",
                 name, mib, Double(output) / 1_048_576, Double(input.count) / Double(output), seconds, mib / seconds))
}

func pieces(_ bytes: [UInt8], _ body: (ArraySlice<UInt8>) throws -> Int) rethrows -> Int {
    var total = 0
    var offset = 0
    while offset < bytes.count {
        total += try body(bytes[offset..<min(offset + piece, bytes.count)])
        offset += piece
    }
    return total
}

for level in [1, 3, 9] {
    try measure("zstd level \(level)") { bytes in
        let compressor = try ZstdCompressor(level: level)
        return try pieces(bytes) { try compressor.compress($0).count } + compressor.finish().count
    }
}
let recipient = AgeIdentity().recipient
try measure("age") { bytes in
    var encryptor = try AgeEncryptor(recipients: [recipient])
    return try pieces(bytes) { try encryptor.encrypt($0).count } + encryptor.finish().count
}
try measure("zstd level 3 + age") { bytes in
    let compressor = try ZstdCompressor(level: 3)
    var encryptor = try AgeEncryptor(recipients: [recipient])
    let body = try pieces(bytes) { try encryptor.encrypt(try compressor.compress($0)).count }
    return body + (try encryptor.encrypt(try compressor.finish()).count) + (try encryptor.finish().count)
}
// The bbolt structure check (issue 14) over the same snapshot, fed in 1 MiB pieces and in
// Talos' 1 KiB messages (as the backup path feeds it): its speed, and its index's size per GiB
// of snapshot.
for piece in [1 << 20, 1024] {
    let clock = ContinuousClock()
    let start = clock.now
    var scanner = BboltSnapshotScanner()
    var offset = 0
    while offset < input.count {
        try scanner.feed(input[offset..<min(offset + piece, input.count)])
        offset += piece
    }
    let summary = try scanner.finish()
    let seconds = (clock.now - start).inSeconds
    print(String(format: "bbolt scan in %d-byte pieces: %.1f MiB in %.3f s = %.1f MiB/s; revision %lld, %lld keys; index %.1f KiB = %.2f MiB per GiB of snapshot",
                 piece, mib, seconds, mib / seconds, summary.revision, summary.totalKeys, Double(scanner.indexBytes) / 1024,
                 Double(scanner.indexBytes) / 1_048_576 / (mib / 1024)))
}
print(String(format: "peak RSS %.1f MiB (the input file is held in memory)", ProcessFigures.peakResidentMiB()))
