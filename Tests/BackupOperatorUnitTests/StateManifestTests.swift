import BackupResolution
import ControlPlaneState
import CustomResources
import Foundation
import KubernetesClient
import KubernetesCore
import KubernetesTesting
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
        let resolver = CredentialResolver(secrets: Secrets(secrets: [
            "default/cp-state": state,
            "default/mine": SecretContents(data: ["k": [1]], labels: ["talos.alperen.cloud/type": "state"]),
            "default/unlabelled": SecretContents(data: ["token": Array("SECRETVALUE".utf8)]),
            "other/cp-state": SecretContents(data: ["k": [1]], labels: ["talos.alperen.cloud/type": "config"]),
        ]))
        let empty = CredentialResolver(secrets: Secrets(secrets: [:]))
        #expect(try await empty.stateManifest(spec(), namespace: "default") == nil)
        #expect(try await resolver.stateManifest(spec(), namespace: "default") == StateManifest.yaml(StateManifest.Secret(name: "cp-state", namespace: "default", labels: state.labels, type: "Opaque", data: state.data)))
        #expect(try await resolver.stateManifest(spec(stateSecret: "mine"), namespace: "default").map { String(decoding: $0, as: UTF8.self) }?
            .contains("name: \"mine\"") == true)
        let failure = await #expect(throws: BackupFailure.self) { _ = try await resolver.stateManifest(spec(stateSecret: "gone"), namespace: "default") }
        #expect(failure?.reason == .stateSecretNotFound)
        #expect(failure?.retryable == true, "retried like other missing Secrets")
        #expect(failure?.message.contains("default/gone") == true && failure?.message.contains("spec.backupStorage.stateSecretRef") == true)
        // Only a Secret labelled as a state is stored: a backup cannot copy any other Secret of
        // its namespace into a bucket, named or by the default name.
        for (namespace, named) in [("default", "unlabelled" as String?), ("other", nil)] {
            let refused = await #expect(throws: BackupFailure.self) { _ = try await resolver.stateManifest(spec(stateSecret: named), namespace: namespace) }
            #expect(refused?.reason == .stateSecretInvalid)
            #expect(refused?.message.contains("kubectl label secret \(named ?? "cp-state") -n \(namespace) talos.alperen.cloud/type=state") == true,
                    "\(String(describing: refused?.message))")
            #expect(refused?.message.contains("SECRETVALUE") == false)
        }
    }

    @Test("the manifest: name, namespace, labels, type and data only, every scalar quoted, keys sorted; hostile key names stay data")
    func manifest() {
        let secret = StateManifest.Secret(name: "cp-state", namespace: "ns", labels: ["z": "1", "a": "x: y"], type: "Opaque",
                                          data: ["b": [0, 255], "a\"\n: x": Array("v".utf8)])
        let text = String(decoding: StateManifest.yaml(secret), as: UTF8.self)
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

/// A stored manifest read back and applied (the Kubernetes API in memory).
@Suite("The state manifest read back and applied")
struct StateManifestApplyTests {
    let secret = SecretContents(data: ["secretBundle": Array("bundle\u{0}\u{ff}".utf8), "state": [0, 1, 2]],
                                labels: ["talos.alperen.cloud/type": "state"], type: "Opaque")

    @Test("what yaml(...) writes parses back to the same Secret")
    func roundTrip() throws {
        let written = StateManifest.Secret(name: "cp-state", namespace: "ns", labels: secret.labels, type: "Opaque", data: secret.data)
        #expect(try StateManifest.parse(StateManifest.yaml(written), source: "state.yaml") == written)
    }

    @Test("not a state manifest: not UTF-8, not YAML, an anchor, another kind, no name or namespace, data not base64; each named, never quoted",
          arguments: [
              ([0xff, 0xfe], "is not UTF-8"),
              (Array("a: [\n".utf8), "is not valid YAML"),
              (Array("apiVersion: v1\nkind: Secret\nmetadata: &m {name: x}\nother: *m\n".utf8), "anchor or alias"),
              (Array("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: y}\n".utf8), "is not a v1 Secret"),
              (Array("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n".utf8), "no metadata.name or metadata.namespace"),
              (Array("apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: y}\ndata: {k: \"SECRETVALUE!\"}\n".utf8), "is not base64"),
              (Array("apiVersion: v1\nkind: Secret\nmetadata: {name: x, namespace: y}\ndata: [SECRETVALUE]\n".utf8), "data"),
              (Array("apiVersion: v1\nkind: Secret\nmetadata: {name: \"x\\e[31mSECRETVALUE\", namespace: y}\n".utf8), "is not a Kubernetes name"),
          ] as [([UInt8], String)])
    func invalid(manifest: [UInt8], problem: String) throws {
        let error = #expect(throws: (any Error).self) { _ = try StateManifest.parse(manifest, source: "state.yaml") }
        let text = String(describing: error.map { $0 as Any } ?? "")
        #expect(text.contains(problem), "\(text)")
        #expect(text.contains("state.yaml"), "names the source")
        #expect(!text.contains("SECRETVALUE"), "never quotes the manifest: \(text)")
    }

    @Test("apply: created when absent, unchanged when the same, its data replaced when different; a missing namespace is named")
    func apply() async throws {
        let api = InMemoryKubernetesAPI()
        _ = try await api.create(try GenericObject(raw: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "ns"]]), .namespaces, namespace: nil)
        var state = StateManifest.Secret(name: "cp-state", namespace: "ns", labels: secret.labels, type: "Opaque", data: secret.data)
        #expect(try await StateManifest.plan(state, on: api) == .created)
        #expect(try await StateManifest.apply(state, to: api) == .created)
        #expect(try await StateManifest.plan(state, on: api) == .unchanged)
        #expect(try await StateManifest.apply(state, to: api) == .unchanged)
        // Annotations someone added stay when the data is replaced.
        var annotated = try await api.get(GenericObject.self, .secrets, namespace: "ns", name: "cp-state")
        if case .object(var members) = annotated.raw, case .object(var metadata)? = members["metadata"] {
            metadata["annotations"] = ["kept": "yes"]
            members["metadata"] = .object(metadata)
            annotated = try GenericObject(raw: .object(members))
        }
        _ = try await api.update(annotated, .secrets, namespace: "ns", name: "cp-state")
        state.data["secretBundle"] = Array("other".utf8)
        #expect(try await StateManifest.plan(state, on: api) == .replaced)
        #expect(try await StateManifest.apply(state, to: api) == .replaced)
        let stored = try await api.get(GenericObject.self, .secrets, namespace: "ns", name: "cp-state")
        #expect(stored.metadata.annotations == ["kept": "yes"])
        #expect(stored.raw["data"]?["secretBundle"] == .string(Data("other".utf8).base64EncodedString()))
        #expect(stored.raw["data"]?["state"] == .string(Data([0, 1, 2]).base64EncodedString()))
        #expect(stored.metadata.labels == ["talos.alperen.cloud/type": "state"])

        state.namespace = "absent"
        let missing = await #expect(throws: StateManifestInvalid.self) { _ = try await StateManifest.apply(state, to: api) }
        #expect(missing?.description.contains("namespace absent does not exist") == true, "\(String(describing: missing))")
    }
}
