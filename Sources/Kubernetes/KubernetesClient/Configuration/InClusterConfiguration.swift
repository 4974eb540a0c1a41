import ConfigurationFiles
import Foundation

/// The configuration of a pod's service account: `KUBERNETES_SERVICE_HOST`/`PORT`, the token
/// (re-read as it rotates), the CA and the namespace under
/// `/var/run/secrets/kubernetes.io/serviceaccount`.
public enum InClusterConfiguration {
    public static let defaultDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    static func isAvailable(environment: [String: String]) -> Bool {
        environment["KUBERNETES_SERVICE_HOST"] != nil && environment["KUBERNETES_SERVICE_PORT"] != nil
    }

    public static func load(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        directory: String = defaultDirectory
    ) throws -> KubernetesConfiguration {
        let source = "in-cluster configuration"
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
        else {
            throw ConfigurationError(source: source, field: "KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT", problem: "not set; not running in a pod?")
        }
        let tokenPath = directory + "/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else {
            throw ConfigurationError(source: source, field: tokenPath, problem: "service account token file is missing or unreadable")
        }
        let caPath = directory + "/ca.crt"
        guard let ca = FileManager.default.contents(atPath: caPath) else {
            throw ConfigurationError(source: source, field: caPath, problem: "service account CA file is missing or unreadable")
        }
        let namespace = (try? String(contentsOfFile: directory + "/namespace", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let hostPart = host.contains(":") ? "[\(host)]" : host  // IPv6
        return KubernetesConfiguration(
            server: "https://\(hostPart):\(port)", certificateAuthorityPEM: Array(ca),
            credentials: .tokenFile(tokenPath), namespace: namespace.flatMap { $0.isEmpty ? nil : $0 } ?? "default",
            source: source)
    }
}
