@testable import BackupOperator
import BackupResolution
import CustomResources
import Dispatch
import EndpointPolicy
import Foundation
import S3
import SnapshotPipeline
@testable import TalosAPI
import Testing

/// Which hosts a tenant's backup may reach: no address in a denied network however it is
/// spelled, and with an allow-list only what it names.
@Suite("Endpoint policy")
struct EndpointPolicyTests {
    @Test("the metadata service is denied by default in every spelling: IPv4, mapped IPv6, AWS's IPv6 address, a name resolving to it",
          arguments: ["169.254.169.254", "::ffff:169.254.169.254", "[::ffff:a9fe:a9fe]", "fd00:ec2::254", "169.254.0.1"])
    func deniedByDefault(_ host: String) throws {
        let policy = EndpointPolicy()
        let address = try #require(IPAddress(parsing: host))
        let problem = try #require(policy.problem(host: host, addresses: [address]))
        #expect(problem.contains("in a denied network"), "\(problem)")
    }

    @Test("a name is judged by every address it resolves to")
    func resolvedNames() throws {
        let policy = EndpointPolicy()
        let inside = try #require(IPAddress(parsing: "169.254.169.254")), outside = try #require(IPAddress(parsing: "10.0.0.5"))
        #expect(policy.problem(host: "metadata.example", addresses: [outside, inside]) == "metadata.example resolves to 169.254.169.254, in a denied network (169.254.0.0/16)")
        #expect(policy.problem(host: "minio.example", addresses: [outside]) == nil)
        #expect(policy.problem(host: "unknown.example", addresses: []) == nil, "the policy judges addresses; EndpointGuard refuses a name with none")
    }

    @Test("an allow-list admits only the networks, names and suffixes it lists; a suffix needs its dot")
    func allowList() throws {
        let rules = try EndpointPolicy.rules("10.0.0.0/8, s3.example.com, .storage.example.org", flag: "--allowed-s3-endpoints")
        let policy = EndpointPolicy(allowed: rules)
        let private10 = try #require(IPAddress(parsing: "10.1.2.3")), other = try #require(IPAddress(parsing: "192.168.1.1"))
        #expect(policy.problem(host: "10.1.2.3", addresses: [private10]) == nil)
        #expect(policy.problem(host: "S3.Example.COM.", addresses: [other]) == nil, "names compare without case or a final dot")
        #expect(policy.problem(host: "eu.storage.example.org", addresses: [other]) == nil)
        #expect(policy.problem(host: "evilstorage.example.org", addresses: [other])?.contains("is not in the allow-list") == true)
        #expect(policy.problem(host: "192.168.1.1", addresses: [other])?.contains("is not in the allow-list (10.0.0.0/8, s3.example.com, .storage.example.org)") == true)
        #expect(policy.problem(host: "inside.example", addresses: [private10, other]) != nil, "every address must be in an allowed network")
        let denied = try #require(IPAddress(parsing: "169.254.169.254"))
        let permissive = EndpointPolicy(allowed: try EndpointPolicy.rules("0.0.0.0/0", flag: "f"))
        #expect(permissive.problem(host: "169.254.169.254", addresses: [denied]) != nil, "the deny list wins over any allow-list")
    }

    @Test("flag lists that cannot be read are named", arguments: [
        ("10.0.0.0/33", "is not a network"), ("300.1.1.1", "is not a network"), ("a/b", "is not a network"), ("", ""),
    ])
    func badNetworks(_ text: String, _ message: String) {
        do {
            let networks = try EndpointPolicy.networks(text, flag: "--denied-endpoint-networks")
            #expect(message.isEmpty && networks.isEmpty, "an empty list denies nothing")
        } catch {
            #expect(!message.isEmpty && "\(error)".contains("--denied-endpoint-networks: \"\(text)\" \(message)"), "\(error)")
        }
    }

    @Test("allow-lists refuse what is neither a network nor a host name, and an empty list", arguments: ["http://x", "a b", "..", "x..y", ",", String(repeating: "a", count: 64) + ".com"])
    func badRules(_ text: String) {
        #expect(throws: EndpointPolicyError.self) { _ = try EndpointPolicy.rules(text, flag: "--allowed-talos-endpoints") }
    }

    @Test("networks match by prefix bits; IPv4 never matches IPv6 except mapped; prefixes 0 and full length")
    func networks() throws {
        func contains(_ network: String, _ address: String) throws -> Bool {
            try #require(IPNetwork(parsing: network)).contains(try #require(IPAddress(parsing: address)))
        }
        #expect(try contains("192.168.0.0/23", "192.168.1.255"))
        #expect(try !contains("192.168.0.0/23", "192.168.2.0"))
        #expect(try contains("0.0.0.0/0", "8.8.8.8"))
        #expect(try !contains("::/0", "8.8.8.8"))
        #expect(try contains("::ffff:169.254.0.0/112", "169.254.3.4"), "a mapped network is its IPv4 network")
        #expect(try contains("10.0.0.1", "10.0.0.1") && !contains("10.0.0.1", "10.0.0.2"))
        #expect(try contains("fd00:ec2::254/128", "FD00:EC2:0:0:0:0:0:254"))
        #expect(IPNetwork(parsing: "::ffff:1.2.3.4/95") == nil, "a mapped prefix shorter than the mapping is refused")
    }

    @Test("the guard names the field and host: the S3 endpoint, AWS's regional host, a talosconfig endpoint")
    func guardNames() async throws {
        func destination(_ endpoint: String?) -> BackupDestination {
            BackupDestination(s3: S3Configuration(region: "us-east-1", endpoint: endpoint, credentials: S3Credentials(accessKeyID: "a", secretAccessKey: "b")),
                              bucket: "etcd-backups", key: "k.db")
        }
        let talos = TalosContext(name: "c", endpoints: [TalosEndpoint(host: "127.0.0.1")], nodes: [], caPEM: "", certificatePEM: "", keyPEM: "")
        let guarded = EndpointGuard()
        let metadata = await #expect(throws: BackupFailure.self) {
            try await guarded.check(s3: destination("http://169.254.169.254:80"), talos: talos, talosSource: "Secret ns/c-talosconfig key \"talosconfig\"")
        }
        #expect(metadata?.reason == .endpointNotAllowed)
        #expect(metadata?.retryable == false)
        #expect(metadata?.message.hasPrefix("spec.backupStorage.s3.endpoint: 169.254.169.254 is in a denied network (169.254.0.0/16)") == true,
                "\(String(describing: metadata))")
        let onlyMinio = EndpointGuard(s3: EndpointPolicy(allowed: [.suffix(".example.com")]))
        let aws = await #expect(throws: BackupFailure.self) {
            try await onlyMinio.check(s3: destination(nil), talos: talos, talosSource: "t")
        }
        #expect(aws?.message.contains("etcd-backups.s3.us-east-1.amazonaws.com is not in the allow-list") == true, "\(String(describing: aws))")
        let metadataNode = TalosContext(name: "c", endpoints: [TalosEndpoint(host: "127.0.0.1"), TalosEndpoint(host: "fd00:ec2::254")],
                                        nodes: [], caPEM: "", certificatePEM: "", keyPEM: "")
        let node = await #expect(throws: BackupFailure.self) {
            try await guarded.check(s3: destination("http://127.0.0.1:9000"), talos: metadataNode, talosSource: "Secret ns/c-talosconfig key \"talosconfig\"")
        }
        #expect(node?.message.hasPrefix("endpoint of Secret ns/c-talosconfig key \"talosconfig\": fd00:ec2::254 is in a denied network") == true,
                "\(String(describing: node))")
        try await guarded.check(s3: destination("http://localhost:9000"), talos: talos, talosSource: "t")

        // Virtual-hosted addressing: the host requests go to is <bucket>.<endpoint>, and that
        // is what is checked. A name that resolves to nothing is refused, for now (retryable).
        var virtual = destination("http://localhost:9000")
        virtual.s3.forcePathStyle = false
        let unresolved = await #expect(throws: BackupFailure.self) { try await guarded.check(s3: virtual, talos: talos, talosSource: "t") }
        #expect(unresolved?.message == "the S3 endpoint's host etcd-backups.localhost: it resolves to no address", "\(String(describing: unresolved))")
        #expect(unresolved?.retryable == true)
    }

    @Test("a resolver that does not answer in time is given up at the bound: the caller gets no addresses and does not wait for it")
    func resolutionBound() async throws {
        let released = DispatchSemaphore(value: 0)
        let slow: @Sendable (String) -> [IPAddress] = { _ in
            released.wait()  // blocks, as getaddrinfo does, until the test lets it go
            return [IPAddress(parsing: "10.0.0.1")!]
        }
        #expect(await EndpointGuard.addresses(of: "slow.example", within: .milliseconds(100), lookUp: slow) == nil)
        released.signal()
        let quick: @Sendable (String) -> [IPAddress] = { _ in [IPAddress(parsing: "10.0.0.2")!] }
        #expect(await EndpointGuard.addresses(of: "quick.example", within: .seconds(600), lookUp: quick) == [IPAddress(parsing: "10.0.0.2")!])
    }
}
