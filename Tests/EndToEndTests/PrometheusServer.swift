import AsyncHTTPClient
import Waiting
import Foundation
import NIOCore
import TestSupport
import Testing

/// A real Prometheus server (Debian's `prometheus`) scraping one target every second under the
/// job name the ServiceMonitor gives (`talos-etcd-backup-metrics`), with the alert rules of
/// deploy/prometheus loaded; queried through its HTTP API.
struct PrometheusServer: Sendable {
    static let job = "talos-etcd-backup-metrics"
    let port: Int

    static func withRunning<T: Sendable>(scraping target: String, in directory: URL, _ body: (PrometheusServer) async throws -> T) async throws -> T {
        let configuration = directory.appendingPathComponent("prometheus.yml")
        let rules = repositoryRoot.appendingPathComponent("deploy/prometheus/talos-etcd-backup.rules.yaml").path
        try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files:
              - \(rules)
            scrape_configs:
              - job_name: \(job)
                static_configs:
                  - targets: ["\(target)"]
            """.write(to: configuration, atomically: true, encoding: .utf8)
        let server = PrometheusServer(port: TestHelpers.freePort())
        let process = try await ProcessRunner.start("/usr/bin/prometheus", [
            "--config.file=\(configuration.path)", "--storage.tsdb.path=\(directory.appendingPathComponent("prometheus-data").path)",
            "--web.listen-address=127.0.0.1:\(server.port)", "--log.level=warn",
        ])
        do {
            try await eventually("Prometheus to be ready") { (try? await server.get("/-/ready").0) == 200 }
            let result = try await body(server)
            process.send(SIGTERM)
            _ = try await withDeadline(.seconds(15), "Prometheus' exit") { try await process.finish() }
            return result
        } catch {
            process.send(SIGKILL)
            print("---- prometheus log ----\n\(process.stderrSoFar)")
            throw error
        }
    }

    func get(_ path: String) async throws -> (Int, Data) {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 8 << 20)
        return (Int(response.status.code), Data(buffer: body))
    }

    /// One sample of an instant query's result: its labels and value.
    struct Sample: Sendable {
        var labels: [String: String]
        var value: Double
    }

    /// The result of the instant query `promQL` now.
    func query(_ promQL: String) async throws -> [Sample] {
        var components = URLComponents()
        components.queryItems = [URLQueryItem(name: "query", value: promQL)]
        let encoded = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        let (status, data) = try await get("/api/v1/query?\(encoded)")
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        try #require(status == 200 && json["status"] as? String == "success", "query \(promQL): \(String(decoding: data, as: UTF8.self))")
        let result = (json["data"] as? [String: Any])?["result"] as? [[String: Any]] ?? []
        return result.compactMap { item in
            guard let value = item["value"] as? [Any], value.count == 2, let text = value[1] as? String, let number = Double(text) else { return nil }
            return Sample(labels: item["metric"] as? [String: String] ?? [:], value: number)
        }
    }

    /// The loaded alerting rules by name, with their health ("ok" once evaluated without error).
    func ruleHealth() async throws -> [String: String] {
        let (_, data) = try await get("/api/v1/rules?type=alert")
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        try #require(json?["status"] as? String == "success", "rules: \(String(decoding: data, as: UTF8.self))")
        let groups = (json?["data"] as? [String: Any])?["groups"] as? [[String: Any]] ?? []
        var health: [String: String] = [:]
        for group in groups {
            for rule in group["rules"] as? [[String: Any]] ?? [] {
                if let name = rule["name"] as? String { health[name] = rule["health"] as? String ?? "" }
            }
        }
        return health
    }

    /// An alert Prometheus holds: its name and state (`pending` or `firing`).
    struct ActiveAlert: Sendable, CustomStringConvertible {
        var name: String
        var state: String
        var description: String { "\(name) (\(state))" }
    }

    /// The alerts firing or pending now.
    func activeAlerts() async throws -> [ActiveAlert] {
        let (_, data) = try await get("/api/v1/alerts")
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        try #require(json?["status"] as? String == "success", "alerts: \(String(decoding: data, as: UTF8.self))")
        let alerts = (json?["data"] as? [String: Any])?["alerts"] as? [[String: Any]] ?? []
        return alerts.compactMap { alert in
            guard let name = (alert["labels"] as? [String: String])?["alertname"] else { return nil }
            return ActiveAlert(name: name, state: alert["state"] as? String ?? "")
        }
    }
}
