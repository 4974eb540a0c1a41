import Foundation
import TestSupport
import Testing

/// The test etcd that the Talos test server and every snapshot test stand on: a start handed a
/// port that another etcd already holds must not come back talking to that other etcd.
@Suite("Test etcd: a start on a port another etcd holds")
struct EtcdInstanceTests {
    @Test("a start handed a taken client port starts again on new ports and answers with its own etcd")
    func takenClientPort() async throws {
        try await EtcdInstance.withRunning(keys: 1) { first in
            let taken = try #require(first.clientURL.split(separator: ":").last.flatMap { Int($0) })
            var handedTaken = false
            let second = try await EtcdInstance.start(pickPort: {
                if handedTaken { return freeLoopbackPort() }
                handedTaken = true
                return taken
            })
            try await second.stopping { second in
                #expect(handedTaken)
                #expect(second.clientURL != first.clientURL)
                // A fresh etcd: the first one's key is not in it.
                let get = try await second.etcdctl(["get", "k0"])
                #expect(get.status == 0)
                #expect(!get.stdout.contains("value-0"), "the second start answers with the first etcd's data")
            }
        }
    }
}
