import Age
import Crypto
import NIOCore
import S3
import Waiting

/// The control plane's state stored beside a snapshot, read back: the manifest and what was read.
public struct RestoredState: Sendable, Equatable {
    /// The plain manifest (a Kubernetes Secret, as ``StoredState`` was written).
    public var manifest: [UInt8]
    /// Size and hex SHA-256 of the stored object read.
    public var storedSize: Int64
    public var storedSHA256: String

    public init(manifest: [UInt8], storedSize: Int64, storedSHA256: String) {
        self.manifest = manifest
        self.storedSize = storedSize
        self.storedSHA256 = storedSHA256
    }
}

/// The way back from a stored state object to its manifest: the stored bytes are counted and
/// hashed, compared with the recorded SHA-256 before anything is decrypted (a swapped object is
/// refused as it is), then decrypted and decompressed as the snapshot beside it was. A Secret is
/// at most 1 MiB, so the stored object and the manifest are both limited to
/// ``maximumSize``: an object or a decompression past it is refused, never held.
public enum StateRestore {
    /// The most a stored state, or its manifest, may be: four times a Secret's limit.
    public static let maximumSize = 4 << 20

    /// The manifest in `stored`, checked against `recordedSHA256` when there is one.
    public static func decode(_ stored: [UInt8], encoding: SnapshotEncoding, identities: [AgeIdentity],
                              recordedSHA256: String?, name: String) throws -> RestoredState {
        guard stored.count <= maximumSize else { throw tooLarge(name, "stored object") }
        let sha256 = SigV4Signer.hex(SHA256.hash(data: stored))
        if let recordedSHA256, recordedSHA256.lowercased() != sha256 {
            throw RestoreMismatch(what: "state object SHA-256 (\(name))", recorded: recordedSHA256, found: sha256)
        }
        let decoder = try SnapshotDecoder(encoding, identities: identities)
        var manifest: [UInt8] = []
        func drain() throws {
            while let piece = try decoder.nextPiece() {
                manifest += piece
                guard manifest.count <= maximumSize else { throw tooLarge(name, "decoded manifest") }
            }
        }
        var rest = stored[...]
        while !rest.isEmpty {
            try decoder.feed(rest.prefix(1 << 16))
            rest = rest.dropFirst(1 << 16)
            try drain()
        }
        try decoder.endOfInput()
        try drain()
        return RestoredState(manifest: manifest, storedSize: Int64(stored.count), storedSHA256: sha256)
    }

    /// ``decode(_:encoding:identities:recordedSHA256:name:)`` of the object at `destination`;
    /// a download that delivers nothing for `stallTimeout` is cancelled and fails.
    public static func download(
        _ destination: BackupDestination, with client: S3Client, encoding: SnapshotEncoding, identities: [AgeIdentity],
        recordedSHA256: String?, stallTimeout: Duration = .seconds(120)
    ) async throws -> RestoredState {
        let stored = try await storedBytes(destination, with: client, stallTimeout: stallTimeout)
        return try decode(stored, encoding: encoding, identities: identities, recordedSHA256: recordedSHA256, name: destination.url)
    }

    /// The stored state object's bytes, never more than ``maximumSize``.
    public static func storedBytes(_ destination: BackupDestination, with client: S3Client, stallTimeout: Duration = .seconds(120)) async throws -> [UInt8] {
        try await withIdleTimeout(stallTimeout, idle: { idle in
            DownloadStalled(object: destination.url, seconds: idle.components.seconds)
        }) { progressed in
            let (size, body) = try await client.getObject(bucket: destination.bucket, key: destination.key)
            if let size, size > maximumSize { throw tooLarge(destination.url, "stored object") }
            var stored: [UInt8] = []
            for try await chunk in body {
                progressed()
                stored += chunk.readableBytesView
                guard stored.count <= maximumSize else { throw tooLarge(destination.url, "stored object") }
            }
            return stored
        }
    }

    private static func tooLarge(_ name: String, _ what: String) -> StateTooLarge { StateTooLarge(name: name, what: what) }
}

/// A state object, or its manifest, past ``StateRestore/maximumSize``: not a state the operator stored.
public struct StateTooLarge: Error, Sendable, CustomStringConvertible {
    public var name: String
    public var what: String
    public init(name: String, what: String) {
        self.name = name
        self.what = what
    }
    public var description: String {
        "\(name): the state's \(what) is larger than \(StateRestore.maximumSize >> 20) MiB; a Secret is at most 1 MiB, so it is not a state this operator stored"
    }
}
