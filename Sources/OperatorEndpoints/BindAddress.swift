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
