import BackupOperator
import ControllerRuntime
import Foundation
import KubernetesClient
import KubernetesTesting
import Logging
import CustomResources
import TestSupport
import Testing


/// A Kubernetes test server with the project's CRDs and a client for it; the client is shut
/// down afterwards, whether `body` returned or threw.
func withCRDServer<T: Sendable>(_ body: (KubernetesTestServer, KubernetesClient) async throws -> T) async throws -> T {
    try await KubernetesTestServer.withRunningClient(.init(logger: quietLogger("kubernetes-test-server")), clientLogger: quietLogger("client")) {
        server, client in
        for crd in CustomResourceDefinitions.all {
            _ = try await client.create(try GenericObject(raw: crd), .customResourceDefinitions)
        }
        return try await body(server, client)
    }
}
