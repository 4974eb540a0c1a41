import Hummingbird
import Logging

/// Where one of the operator's HTTP endpoints listens, written as controller-runtime's
/// `--metrics-bind-address` and `--health-probe-bind-address` are.
public enum BindAddress: Sendable, Equatable {
    case disabled
    case address(host: String, port: Int)

    /// `host:port`, `:port` (every interface) or `0` (disabled); nil for anything else.
    public init?(parsing text: String) {
        if text == "0" {
            self = .disabled
            return
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        let host = String(text[..<colon])
        self = .address(host: host.isEmpty ? "0.0.0.0" : host, port: port)
    }
}

/// Serves `router` on `host:port` until cancelled or shut down gracefully; `onListening` gets
/// the bound port (useful with port 0). The one Hummingbird set-up of the operator's endpoints.
/// A failure (the port is taken, say) is an ``EndpointFailed`` naming the endpoint and `flag`.
func serve(_ router: Router<BasicRequestContext>, name: String, flag: String, host: String, port: Int,
           onListening: @escaping @Sendable (Int) -> Void, logger: Logger) async throws {
    let app = Application(
        router: router, configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
        onServerRunning: { channel in onListening(channel.localAddress?.port ?? 0) },
        logger: logger)
    do {
        try await app.run()
    } catch where !(error is CancellationError) {
        throw EndpointFailed(description: "the \(name) endpoint cannot serve on \(host):\(port) (\(flag)): \(error)")
    }
}

/// An endpoint could not start or stopped serving: which one, where, and why.
public struct EndpointFailed: Error, CustomStringConvertible {
    public var description: String
}
