import Foundation
import TestSupport
import Testing

/// The test etcd that the Talos test server and every snapshot test stand on: a start handed a
/// port that another etcd already holds must not come back talking to that other etcd.
@Suite("Test etcd: a start on a port another etcd holds")
struct EtcdInstanceTests {
    @Test("the listening sockets on 127.0.0.1:PORT are found in /proc/net/tcp and tcp6 lines, IPv4-mapped included, and nothing else")
    func loopbackListenersFromTables() {
        // Lines as the kernel prints them on this (little-endian) machine: port 2379 is 094B.
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
        let tcp = [header,
                   "   0: 0100007F:094B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0",
                   "   1: 0100007F:094B 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1",
                   "   2: 00000000:094B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 100 0 0 10 0",
                   "   3: 0100007F:094C 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0",
        ].joined(separator: "\n")
        let tcp6 = [header,
                    "   0: 0000000000000000FFFF00000100007F:094B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0",
                    "   1: 00000000000000000000000001000000:094B 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0",
        ].joined(separator: "\n")
        // 1002 is a connection, not a listener; 1003 is 0.0.0.0, 1004 port 2380 (094C), 2002 ::1.
        #expect(ProcessRunner.loopbackListeners(onPort: 2379, tables: [tcp, tcp6]) == ["1001", "2001"])
        #expect(ProcessRunner.loopbackListeners(onPort: 2380, tables: [tcp, tcp6]) == ["1004"])
        #expect(ProcessRunner.loopbackListeners(onPort: 2381, tables: [tcp, tcp6]).isEmpty)
    }

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
