import Zstd

/// A stored `.zst` object read back (restore, verify, recover): any bytes decompress, in
/// pieces of at most `pieceSize`, into output or a ZstdError, never a trap, with memory bound
/// by libzstd's window limit (128 MiB) plus one piece; and whatever the input, compressing it
/// and decompressing again gives it back.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzZstd(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    // The input fed in two pieces, as a download's chunks arrive; the output is counted, not
    // kept, and cut off at 64 MiB so that a highly compressible frame ends the run quickly.
    if let decompressor = try? ZstdDecompressor() {
        var produced = 0
        let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
        feeding: for piece in [bytes[..<split], bytes[split...]] {
            decompressor.feed(piece)
            do {
                while let output = try decompressor.nextPiece() {
                    precondition(output.count <= ZstdDecompressor.pieceSize, "a piece is larger than pieceSize")
                    produced += output.count
                    if produced > 64 << 20 { break feeding }
                }
            } catch {
                break feeding
            }
        }
        if produced <= 64 << 20 { _ = try? decompressor.finish() }
    }

    do {
        let compressor = try ZstdCompressor(level: 1)
        let frame = try compressor.compress(bytes) + compressor.finish()
        let decompressor = try ZstdDecompressor()
        let restored = try decompressor.decompress(frame)
        try decompressor.finish()
        precondition(restored == bytes, "compress then decompress is not the identity")
    } catch {
        preconditionFailure("a round trip failed: \(error)")
    }
    return 0
}
