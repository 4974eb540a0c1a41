import TalosConfiguration

/// A talosconfig from a tenant's Secret (or a file given to the CLI): parsing gives a context
/// or a ConfigurationError, never a trap or a hang, whatever the YAML holds (anchors and
/// aliases included); an endpoint that parses prints as text that parses to itself.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTalosconfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    _ = try? Talosconfig.parse(text, source: "fuzz")
    for line in text.split(separator: "\n").prefix(8) {
        if let endpoint = TalosEndpoint(parsing: String(line)) {
            precondition(TalosEndpoint(parsing: endpoint.description) == endpoint, "an endpoint does not round-trip")
        }
    }
    return 0
}
