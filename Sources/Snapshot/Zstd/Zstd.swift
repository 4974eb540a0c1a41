import CZstd

/// A zstd failure: libzstd's own words, and what was being done.
public struct ZstdError: Error, Equatable, CustomStringConvertible {
    public var description: String

    init(_ what: String, code: Int) {
        description = "zstd \(what) failed: \(String(cString: ZSTD_getErrorName(code)))"
    }

    init(description: String) { self.description = description }
}

/// Streaming zstd compression through libzstd (Debian's libzstd-dev): feed data in pieces of
/// any size, take the compressed bytes each call produces, and ``finish()`` the frame. Memory
/// is libzstd's window for the level (a few MiB at the levels the API allows), whatever the
/// input size. One task at a time (it owns a libzstd context).
public final class ZstdCompressor {
    /// The levels the API accepts (CustomResources's `ValidationLimits.zstdLevels`).
    public static let levels = 1...19
    private let context: OpaquePointer
    private var output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())

    public init(level: Int = 3) throws {
        guard Self.levels.contains(level) else { throw ZstdError(description: "zstd level \(level) is outside \(Self.levels)") }
        guard let context = ZSTD_createCCtx() else { throw ZstdError(description: "zstd: cannot allocate a compression context") }
        self.context = context
        let result = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
        if ZSTD_isError(result) != 0 { throw ZstdError("setting the level", code: result) }
        // A checksum of the content in the frame, as the zstd CLI writes by default.
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compressed bytes for `input` (often none until libzstd has a block's worth).
    public func compress(_ input: some Collection<UInt8>) throws -> [UInt8] {
        try run(Array(input), directive: ZSTD_e_continue)
    }

    /// The rest of the frame.
    public func finish() throws -> [UInt8] {
        try run([], directive: ZSTD_e_end)
    }

    private func run(_ input: [UInt8], directive: ZSTD_EndDirective) throws -> [UInt8] {
        var produced: [UInt8] = []
        try input.withUnsafeBytes { source in
            var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: 0)
            while true {
                let (remaining, written) = try output.withUnsafeMutableBytes { destination -> (Int, Int) in
                    var outBuffer = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                    let remaining = ZSTD_compressStream2(context, &outBuffer, &inBuffer, directive)
                    if ZSTD_isError(remaining) != 0 { throw ZstdError("compression", code: remaining) }
                    return (remaining, outBuffer.pos)
                }
                produced += output[..<written]
                // continue: until the input is consumed; end: until the frame is flushed.
                let done = directive == ZSTD_e_end ? remaining == 0 : inBuffer.pos == inBuffer.size
                if done { break }
            }
        }
        return produced
    }
}

/// Streaming zstd decompression: any number of concatenated frames (as the zstd CLI reads
/// them); ``finish()`` refuses input that ends inside a frame, so a truncated object is an
/// error, never a short snapshot. Content checksums in the frames are verified by libzstd.
///
/// Output comes in bounded pieces: ``feed(_:)`` takes compressed bytes, and ``nextPiece()``
/// returns at most ``pieceSize`` decompressed bytes per call, so a small input that expands
/// enormously (a "zip bomb") never needs more memory than one piece; memory is libzstd's window
/// plus one piece, whatever the ratio.
public final class ZstdDecompressor {
    /// The most a ``nextPiece()`` returns: libzstd's recommended output size (128 KiB).
    public static let pieceSize = ZSTD_DStreamOutSize()
    private let context: OpaquePointer
    private var output = [UInt8](repeating: 0, count: ZstdDecompressor.pieceSize)
    private var input: [UInt8] = []
    private var position = 0
    /// The last call filled the output buffer: libzstd may hold more to flush.
    private var mayHaveMore = false
    /// libzstd's hint after the last call: 0 when a frame has just ended.
    private var frameComplete = true
    private var sawInput = false

    public init() throws {
        guard let context = ZSTD_createDCtx() else { throw ZstdError(description: "zstd: cannot allocate a decompression context") }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Takes the next compressed bytes; call only once ``nextPiece()`` has returned nil.
    public func feed(_ bytes: some Collection<UInt8>) {
        precondition(position == input.count, "feed before the previous input was drained")
        input = Array(bytes)
        position = 0
        if !input.isEmpty { sawInput = true }
    }

    /// The next decompressed piece (at most ``pieceSize`` bytes), or nil when the input fed so
    /// far is used up.
    public func nextPiece() throws -> [UInt8]? {
        while position < input.count || mayHaveMore {
            let (hint, consumed, written) = try input.withUnsafeBytes { source in
                try output.withUnsafeMutableBytes { destination -> (Int, Int, Int) in
                    var inBuffer = ZSTD_inBuffer(src: source.baseAddress, size: source.count, pos: position)
                    var outBuffer = ZSTD_outBuffer(dst: destination.baseAddress, size: destination.count, pos: 0)
                    let hint = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                    if ZSTD_isError(hint) != 0 { throw ZstdError("decompression", code: hint) }
                    return (hint, inBuffer.pos, outBuffer.pos)
                }
            }
            // A call that neither read nor wrote (flushing after an output that ended exactly
            // at the buffer's end) says nothing new: after a finished frame, libzstd's hint is
            // then the size of the next frame's header, not a sign of truncation.
            if consumed > position || written > 0 { frameComplete = hint == 0 }
            position = consumed
            mayHaveMore = written == output.count
            if written > 0 { return Array(output[..<written]) }
        }
        return nil
    }

    /// Decompressed bytes for `input`, all at once: for inputs whose expansion is bounded by
    /// other means (tests); a stream uses ``feed(_:)`` and ``nextPiece()``.
    public func decompress(_ input: some Collection<UInt8>) throws -> [UInt8] {
        feed(input)
        var produced: [UInt8] = []
        while let piece = try nextPiece() { produced += piece }
        return produced
    }

    /// Throws unless the input ended exactly at the end of a frame.
    public func finish() throws {
        guard sawInput else { throw ZstdError(description: "zstd decompression failed: no data") }
        guard frameComplete else { throw ZstdError(description: "zstd decompression failed: the data ends inside a frame (truncated)") }
    }
}
