import EndpointPolicy

/// The operator's endpoint flags and the hosts tenants name: addresses, networks and
/// allow-lists parse without trapping, and an address or network prints as text that parses
/// back to itself; the policy answers for any host.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEndpointPolicy(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    if let address = IPAddress(parsing: text) {
        precondition(IPAddress(parsing: address.description) == address, "\(address) does not round-trip")
        _ = EndpointPolicy().problem(host: text, addresses: [address])
    }
    if let network = IPNetwork(parsing: text) {
        precondition(IPNetwork(parsing: network.description) == network, "\(network) does not round-trip")
        precondition(network.contains(network.address), "\(network) does not contain its own address")
    }
    if let rules = try? EndpointPolicy.rules(text, flag: "--allowed-s3-endpoints") {
        _ = EndpointPolicy(allowed: rules).problem(host: "minio.example.com", addresses: [IPAddress(parsing: "10.1.2.3")!])
        _ = EndpointPolicy(allowed: rules).problemByName(host: "minio.example.com")
    }
    _ = try? EndpointPolicy.networks(text, flag: "--denied-endpoint-networks")
    return 0
}
