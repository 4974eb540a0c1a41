import Logging
import Synchronization

/// Keeps every record its loggers write (at every level, metadata included) as text, so a test
/// can check what a log would show: that a failure is explained, or that no secret appears.
public final class LogRecorder: Sendable {
    private let records = Mutex<[String]>([])

    public init() {}

    /// A logger at trace level whose records this keeps.
    public func logger(_ label: String) -> Logger {
        var logger = Logger(label: label) { label in Handler(label: label, recorder: self) }
        logger.logLevel = .trace
        return logger
    }

    /// Every record so far, one per line.
    public var text: String { records.withLock { $0.joined(separator: "\n") } }

    fileprivate func append(_ record: String) { records.withLock { $0.append(record) } }

    private struct Handler: LogHandler {
        let label: String
        let recorder: LogRecorder
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
            let fields = merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            recorder.append("\(event.level) \(label): \(event.message) \(fields)")
        }
    }
}
