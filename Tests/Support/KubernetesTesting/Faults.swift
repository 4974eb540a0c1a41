import KubernetesClient

/// Faults a test can turn on: failing requests with a status code (500, 429...), added
/// latency, requests held until released. Dropping watches and expiring resourceVersions act on the store directly.
///
/// Each fault names the requests it applies to by a string their path contains; a string
/// that ends in `$` must end the path (`/talosetcdbackups$` is the list of backups, not of
/// `talosetcdbackupschedules`).
actor Faults {
    struct Failure: Sendable {
        var code: Int
        var remaining: Int
        var method: String?
        var pathContains: String?
        var retryAfterSeconds: Int?
    }

    private var failures: [Failure] = []
    private(set) var latency: Duration = .zero
    /// Extra delays for requests whose path contains a string (and, optionally, of a method).
    private var delays: [(method: String?, pathContains: String, delay: Duration)] = []
    /// Requests held until released.
    private var holds: [(method: String?, pathContains: String)] = []

    func failNext(_ count: Int, code: Int, method: String?, pathContains: String?, retryAfterSeconds: Int?) {
        failures.append(Failure(code: code, remaining: count, method: method, pathContains: pathContains, retryAfterSeconds: retryAfterSeconds))
    }

    func setLatency(_ latency: Duration) {
        self.latency = latency
    }

    func delay(_ delay: Duration, method: String?, pathContains: String) {
        delays.removeAll { $0.method == method && $0.pathContains == pathContains }
        if delay > .zero { delays.append((method, pathContains, delay)) }
    }

    /// Holds requests whose path contains `pathContains` (of `method`, when given) until
    /// ``release(method:pathContains:)``: for a test that must see a state "while a request is
    /// in flight" however slowly a loaded machine gets there (a fixed delay can run out first).
    func hold(method: String?, pathContains: String) {
        holds.append((method, pathContains))
    }

    func release(method: String?, pathContains: String) {
        holds.removeAll { $0.method == method && $0.pathContains == pathContains }
    }

    /// Waits while a hold matches this request (until released or cancelled).
    nonisolated func waitWhileHeld(method: String, path: String) async throws {
        while await isHeld(method: method, path: path) {
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    private func isHeld(method: String, path: String) -> Bool {
        holds.contains { ($0.method == nil || $0.method == method) && Self.path(path, matches: $0.pathContains) }
    }

    /// How long to hold this request before answering it.
    func latency(method: String, path: String) -> Duration {
        delays.filter { ($0.method == nil || $0.method == method) && Self.path(path, matches: $0.pathContains) }
            .reduce(latency) { $0 + $1.delay }
    }

    /// The failure to answer this request with, if one is armed for it.
    func take(method: String, path: String) -> Failure? {
        guard let index = failures.firstIndex(where: { failure in
            (failure.method == nil || failure.method == method) && (failure.pathContains.map { Self.path(path, matches: $0) } ?? true)
        }) else { return nil }
        let failure = failures[index]
        failures[index].remaining -= 1
        if failures[index].remaining <= 0 { failures.remove(at: index) }
        return failure
    }

    /// Whether `path` contains `pattern`, or ends with it when it ends in `$`.
    static func path(_ path: String, matches pattern: String) -> Bool {
        pattern.hasSuffix("$") ? path.hasSuffix(pattern.dropLast()) : path.contains(pattern)
    }
}
