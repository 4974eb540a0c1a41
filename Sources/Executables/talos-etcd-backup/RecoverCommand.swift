import ArgumentParser
import BackupResolution
import ControlPlaneState
import Foundation
import KubernetesClient
import Logging
import SnapshotPipeline
import TalosAPI

#if canImport(Glibc)
import Glibc
#endif

/// `recover`: etcd of a Talos control plane recovered from a stored backup through the Talos
/// API, what `talosctl bootstrap --recover-from=FILE` does, from any source `restore` takes.
/// The backup is read twice: once to prove it (every check, nothing sent) and to name what it
/// holds before asking, once to stream it to the node (the same checks again; a failure cancels
/// the upload and nothing is bootstrapped).
struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Recover a Talos control plane's etcd from a stored backup (EtcdRecover, then Bootstrap with recover_etcd).",
        discussion: BackupSourceOptions.discussion + """
             First the backup is read through every check with nothing sent (a wrong identity, \
            a checksum or structure failure stops here), and the node, the backup's time, \
            revision, keys and size are named. Then, with --yes or a "yes" typed on the \
            terminal, the plain snapshot is streamed to the node with EtcdRecover (the same \
            checks again: a failure cancels the upload, which Talos discards) and the node is \
            bootstrapped with recover_etcd (Talos checks the snapshot's hash once more). The \
            talosconfig needs role os:admin. The node must be a control plane node waiting to \
            be bootstrapped (after talosctl reset); one whose etcd runs refuses. Without a \
            terminal, --yes is required. --apply-state also applies the control plane's state \
            stored beside the snapshot (the Secret talos-operator rebuilds the nodes from) to the \
            management cluster of --kubeconfig before etcd is recovered: read and checked with \
            the backup, named before asking, created (or its data replaced) after the yes; a \
            failure there stops before anything is sent to the node.
            """)

    @OptionGroup var source: BackupSourceOptions

    @Option(help: "talosconfig file with role os:admin.")
    var talosconfig: String

    @Option(help: "Context to use (default: the talosconfig's current context).")
    var context: String?

    @Option(help: "The control plane node to recover etcd on (reached through the context's endpoints).")
    var node: String

    @Flag(help: "Also apply the control plane's state stored beside the snapshot to the management cluster of --kubeconfig, before etcd is recovered.")
    var applyState = false

    @Flag(help: "Recover without asking.")
    var yes = false

    func validate() throws {
        if !applyState { try source.refuseKubeconfigWithoutBackup() }
    }

    func run() async throws {
        var stage = "reading the talosconfig"
        do {
            let context = try Talosconfig.load(file: talosconfig, context: self.context)
            let client = TalosClient(context: context)
            stage = "reaching node \(node)"
            let target = try await client.reachNode(node)
            try await source.withOpened { backup in
                stage = "checking the backup"
                let progress = ProgressLine(total: backup.record?.size)
                let checked = try await backup.read(progress.update) { _ in }
                progress.end()
                var state: (secret: StateManifest.Secret, sha256: String, cluster: KubernetesConfiguration, plan: StateManifest.Applied)?
                if applyState {
                    stage = "checking the state stored beside the backup"
                    guard let opened = backup.state else {
                        throw RestoreProblem("\(backup.name) has no state stored beside it (no state recorded, or no NAME.state.yaml file beside it): nothing to apply; run without --apply-state to recover etcd alone")
                    }
                    let read = try await opened.read()
                    stage = "reading the state Secret's current version in the management cluster"
                    let cluster = try KubernetesConfiguration.load(kubeconfig: source.kubeconfig)
                    let plan = try await withKubernetes(cluster) { try await StateManifest.plan(read.secret, on: $0) }
                    state = (read.secret, read.restored.storedSHA256, cluster, plan)
                }
                print("""
                    about to recover etcd on node \(node) (\(target.hostname), Talos \(target.tag), via endpoint \(target.endpoint))
                    from \(backup.name)
                      taken \(backup.takenAt ?? "at an unknown time"): etcd revision \(checked.revision), \(checked.totalKeys) keys, \(checked.size) bytes, sha256 \(checked.sha256)
                    """)
                if let state {
                    let what = switch state.plan {
                    case .created: "create"
                    case .replaced: "replace the data, labels and type of the existing"
                    case .unchanged: "leave as it is (the same already)"
                    }
                    print("""
                      and first \(what) its state, Secret \(state.secret.namespace)/\(state.secret.name) (\(state.secret.data.count) keys, stored sha256 \(state.sha256)),
                        on \(state.cluster.server) (\(state.cluster.source))
                    """)
                    if !source.stateProvenance.isEmpty { print("  " + source.stateProvenance) }
                }
                if !source.provenance.isEmpty { print("  " + source.provenance) }
                try confirm()
                if let state {
                    stage = "applying the state Secret \(state.secret.namespace)/\(state.secret.name)"
                    let applied = try await withKubernetes(state.cluster) { try await StateManifest.apply(state.secret, to: $0) }
                    print("state Secret \(state.secret.namespace)/\(state.secret.name): \(applied.rawValue)")
                }
                stage = "uploading the snapshot to node \(node)"
                _ = try await SnapshotRecovery.recover(client: client, endpoint: target.endpoint, node: node) { sink in
                    try await backup.read(nil, sink)
                }
            }
            print("node \(node) is recovering etcd from the snapshot; next: wait for it (talosctl -n \(node) service etcd), then let the other control plane nodes join (they do once Kubernetes is up on this one)")
        } catch let error as ValidationError {
            throw error
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error while \(stage): \(error)")
            if let hint = Self.hint(for: error) { printError(hint) }
            throw ExitCode(1)
        }
    }

    /// `body` with a client of the management cluster (`--kubeconfig`, or the default chain).
    private func withKubernetes<T>(_ configuration: KubernetesConfiguration, _ body: (KubernetesClient) async throws -> T) async throws -> T {
        let kubernetes = try KubernetesClient(configuration: configuration, logger: Logger(label: "apply-state"))
        do {
            let result = try await body(kubernetes)
            try? await kubernetes.shutdown()
            return result
        } catch {
            try? await kubernetes.shutdown()
            throw error
        }
    }

    /// Asks on the terminal unless --yes; refuses without one.
    private func confirm() throws {
        guard !yes else { return }
        guard isatty(STDIN_FILENO) == 1 else {
            printError("refusing to recover without --yes: standard input is not a terminal to ask on; nothing was sent to the node")
            throw ExitCode(1)
        }
        FileHandle.standardError.write(Data("This replaces etcd on node \(node). Type yes to continue: ".utf8))
        guard readLine()?.trimmingCharacters(in: .whitespaces) == "yes" else {
            printError("not confirmed; nothing was sent to the node")
            throw ExitCode(1)
        }
    }

    /// What to do about Talos' refusals.
    static func hint(for error: any Error) -> String? {
        guard let talos = error as? TalosAPIError else { return nil }
        switch talos.grpcCode {
        case "alreadyExists":
            return "the node's etcd has data (it runs or was bootstrapped): reset the control plane nodes first (talosctl reset --graceful=false --reboot --system-labels-to-wipe=EPHEMERAL), then recover one of them"
        case "failedPrecondition":
            return "the node is not ready for a bootstrap yet: wait until its etcd service waits for bootstrap (talosctl -n NODE service etcd), then run recover again"
        case "permissionDenied":
            return "the talosconfig's certificate may not recover etcd: EtcdRecover and Bootstrap need role os:admin"
        default:
            return nil
        }
    }
}
