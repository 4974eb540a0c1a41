import BackupResolution
import CustomResources
import Foundation
import Testing

/// Which Secret is a backup's state, and what is stored of it (no network: Secrets in memory).
@Suite("The state beside a snapshot: which Secret, and its manifest")
struct StateManifestTests {
    struct Secrets: SecretReader {
        var secrets: [String: SecretContents]
        func secret(namespace: String, name: String) async throws -> SecretContents? { secrets["\(namespace)/\(name)"] }
    }

    func spec(stateSecret: String? = nil) -> TalosEtcdBackupSpec {
        let s3 = S3Storage(bucket: "b-1", region: "r", accessKeyID: .init(name: "a", key: "k"), secretAccessKey: .init(name: "a", key: "s"))
        return TalosEtcdBackupSpec(talosControlPlaneRef: .init(name: "cp"),
                                   backupStorage: BackupStorage(s3: s3, stateSecretRef: stateSecret.map { SecretReference(name: $0) }))
    }

    @Test("<controlplane>-state when it exists, else nothing; a named Secret that is missing is StateSecretNotFound, naming it")
    func whichSecret() async throws {
        let state = SecretContents(data: ["secretBundle": Array("bundle".utf8)], labels: ["talos.alperen.cloud/type": "state"], type: "Opaque")
        let resolver = CredentialResolver(secrets: Secrets(secrets: ["default/cp-state": state, "default/mine": SecretContents(data: ["k": [1]])]))
        let empty = CredentialResolver(secrets: Secrets(secrets: [:]))
        #expect(try await empty.stateManifest(spec(), namespace: "default") == nil)
        #expect(try await resolver.stateManifest(spec(), namespace: "default") == StateManifest.yaml(name: "cp-state", namespace: "default", secret: state))
        #expect(try await resolver.stateManifest(spec(stateSecret: "mine"), namespace: "default").map { String(decoding: $0, as: UTF8.self) }?
            .contains("name: \"mine\"") == true)
        let failure = await #expect(throws: BackupFailure.self) { _ = try await resolver.stateManifest(spec(stateSecret: "gone"), namespace: "default") }
        #expect(failure?.reason == .stateSecretNotFound)
        #expect(failure?.retryable == true, "retried like other missing Secrets")
        #expect(failure?.message.contains("default/gone") == true && failure?.message.contains("spec.backupStorage.stateSecretRef") == true)
    }

    @Test("the manifest: name, namespace, labels, type and data only, every scalar quoted, keys sorted; hostile key names stay data")
    func manifest() {
        let secret = SecretContents(data: ["b": [0, 255], "a\"\n: x": Array("v".utf8)], labels: ["z": "1", "a": "x: y"], type: nil)
        let text = String(decoding: StateManifest.yaml(name: "cp-state", namespace: "ns", secret: secret), as: UTF8.self)
        #expect(text == """
            apiVersion: v1
            kind: Secret
            metadata:
              name: "cp-state"
              namespace: "ns"
              labels:
                "a": "x: y"
                "z": "1"
            type: "Opaque"
            data:
              "a\\"\\n: x": "dg=="
              "b": "AP8="

            """)
    }
}
