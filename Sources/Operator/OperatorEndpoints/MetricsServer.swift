import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// `/metrics` in the Prometheus text format (version 0.0.4) for Prometheus to scrape: every
/// metric recorded into `registry`, plus the process metrics read at the scrape. A service of
/// the manager, like the health probes.
public struct MetricsServer: Service, CustomStringConvertible {
    public let host: String
    public let port: Int
    private let registry: PrometheusCollectorRegistry
    private let process: ProcessMetrics
    private let onListening: @Sendable (Int) -> Void
    private let logger: Logger

    public init(host: String = "0.0.0.0", port: Int, registry: PrometheusCollectorRegistry,
                onListening: @escaping @Sendable (Int) -> Void = { _ in }, logger: Logger = Logger(label: "metrics")) {
        self.host = host
        self.port = port
        self.registry = registry
        self.process = ProcessMetrics(registry: registry)
        self.onListening = onListening
        self.logger = logger
    }

    public var description: String { "metrics on \(host):\(port)" }

    public func run() async throws {
        let router = Router()
        let registry = self.registry, process = self.process
        router.get("metrics") { _, _ in
            process.update()
            var buffer: [UInt8] = []
            buffer.reserveCapacity(64 * 1024)
            registry.emit(into: &buffer)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        try await serve(router, name: "metrics", flag: "--metrics-bind-address", host: host, port: port, onListening: onListening, logger: logger)
    }
}
