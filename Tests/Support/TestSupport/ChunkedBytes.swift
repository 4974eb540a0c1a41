import NIOCore

/// A byte source that hands out `data` in chunks of `size`, then optionally fails.
public struct ChunkedBytes: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let data: [UInt8]
    let size: Int
    var failAfter: Int?

    public init(data: [UInt8], size: Int, failAfter: Int? = nil) {
        self.data = data
        self.size = size
        self.failAfter = failAfter
    }

    public struct Broken: Error {}

    public struct AsyncIterator: AsyncIteratorProtocol {
        let data: [UInt8]
        let size: Int
        let failAfter: Int?
        var offset = 0

        public mutating func next() async throws -> ByteBuffer? {
            if let failAfter, offset >= failAfter { throw Broken() }
            guard offset < data.count else { return nil }
            let end = Swift.min(offset + size, data.count)
            defer { offset = end }
            return ByteBuffer(bytes: data[offset..<end])
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(data: data, size: size, failAfter: failAfter) }
}

