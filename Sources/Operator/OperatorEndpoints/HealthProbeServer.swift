import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `/healthz` and `/readyz` for the kubelet's liveness and readiness probes, as
/// controller-runtime's health probe server serves them: 200 `ok` when the check passes, 503
/// with the reason when it does not. A service: add it to the manager, which shuts it down
/// last, so a replica stopping on SIGTERM answers "not ready" while it winds down.
public struct HealthProbeServer: Service, CustomStringConvertible {
    /// What a probe asks: nil when healthy, else why not.
    public typealias Check = @Sendable () -> String?

    public let host: String
    public let port: Int
    private let liveness: Check
    private let readiness: Check
    private let onListening: @Sendable (Int) -> Void
    private let logger: Logger

    public init(host: String = "0.0.0.0", port: Int, liveness: @escaping Check, readiness: @escaping Check,
                onListening: @escaping @Sendable (Int) -> Void = { _ in }, logger: Logger = Logger(label: "health-probes")) {
        self.host = host
        self.port = port
        self.liveness = liveness
        self.readiness = readiness
        self.onListening = onListening
        self.logger = logger
    }

    public var description: String { "health probes on \(host):\(port)" }

    public func run() async throws {
        let router = Router()
        let liveness = self.liveness, readiness = self.readiness
        router.get("healthz") { _, _ in Self.answer(liveness()) }
        router.get("readyz") { _, _ in Self.answer(readiness()) }
        try await serve(router, name: "health probe", flag: "--health-probe-bind-address", host: host, port: port, onListening: onListening, logger: logger)
    }

    private static func answer(_ problem: String?) -> Response {
        guard let problem else {
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        return Response(status: .serviceUnavailable, headers: [.contentType: "text/plain"],
                         body: ResponseBody(byteBuffer: ByteBuffer(string: problem + "\n")))
    }
}
