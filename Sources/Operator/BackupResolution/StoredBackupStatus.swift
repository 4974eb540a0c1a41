import CustomResources
import KubernetesCore
import SnapshotPipeline

/// The one mapping between a stored backup's record (``StoredBackup``, also its object's
/// metadata) and the fields of a TalosEtcdBackup's status that repeat it: written when a
/// backup is stored or adopted, read back by `restore`, `verify` and `recover --backup`.
extension StoredBackup {
    /// The record a Succeeded backup's status holds; nil without a size and SHA-256 (an adopted
    /// plain object whose metadata had no record: it is checked by its own trailer then).
    /// Throws ``IncompleteRecord`` for a status that says the object is encoded but lacks the
    /// plain snapshot's size or SHA-256: comparing with it would blame the object.
    public init?(status: TalosEtcdBackupStatus) throws {
        guard let size = status.size, let sha256 = status.sha256 else { return nil }
        if (status.compression != nil || status.encryptedTo != nil) && (status.snapshotSize == nil || status.snapshotSHA256 == nil) {
            throw IncompleteRecord()
        }
        self.init(node: status.node ?? "", size: size, sha256: sha256, snapshotSize: status.snapshotSize,
                  snapshotSHA256: status.snapshotSHA256, compression: status.compression, encryptedTo: status.encryptedTo,
                  revision: status.revision, totalKeys: status.totalKeys,
                  state: status.stateFilename.flatMap { key in status.stateSHA256.map { StoredState(key: key, sha256: $0) } })
        serverSideEncryption = status.serverSideEncryption
        lockedUntil = status.lockedUntil?.date
    }

    /// Writes the record into `status` (every field it repeats, nothing else).
    public func apply(to status: inout TalosEtcdBackupStatus) {
        status.node = node
        status.size = size
        status.sha256 = sha256
        status.snapshotSize = snapshotSize
        status.snapshotSHA256 = snapshotSHA256
        status.compression = compression
        status.encryptedTo = encryptedTo
        status.revision = revision
        status.totalKeys = totalKeys
        status.stateFilename = state?.key
        status.stateSHA256 = state?.sha256
        status.serverSideEncryption = serverSideEncryption
        status.lockedUntil = lockedUntil.map { KubeTime($0) }
    }
}

/// A backup's status says its object is compressed or encrypted, but not the plain snapshot's
/// size and SHA-256 (edited by hand, or written by something else).
public struct IncompleteRecord: Error, Sendable, CustomStringConvertible {
    public var description: String {
        "the backup's status says its object is compressed or encrypted but records no snapshotSize and snapshotSHA256: it cannot be checked against it; use --from s3://... (the object's own record) or --expect-sha256"
    }
}
