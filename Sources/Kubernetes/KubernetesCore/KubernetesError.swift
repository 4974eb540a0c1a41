/// A failed Kubernetes API request, with the server's `Status` when it sent one.
///
/// The `is...` properties are how callers branch (`isNotFound`, `isConflict`...), like
/// apimachinery's `errors.IsNotFound`; `description` carries the server's own message.
public struct KubernetesError: Error, Sendable, CustomStringConvertible {
    /// HTTP status code of the response.
    public var code: Int
    /// The decoded `Status`, when the body was one.
    public var status: Status?
    /// Request that failed, e.g. `GET /api/v1/namespaces/default/secrets/x` (never a body).
    public var request: String
    /// Value of a `Retry-After` header, in seconds.
    public var retryAfterSeconds: Int?

    public init(code: Int, status: Status?, request: String, retryAfterSeconds: Int? = nil) {
        self.code = code
        self.status = status
        self.request = request
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var reason: String? { status?.reason }
    public var message: String { status?.message ?? "HTTP \(code)" }

    public var isNotFound: Bool { code == 404 || reason == "NotFound" }
    public var isAlreadyExists: Bool { reason == "AlreadyExists" }
    public var isConflict: Bool { code == 409 && !isAlreadyExists }
    public var isGone: Bool { code == 410 || reason == "Gone" || reason == "Expired" }
    public var isForbidden: Bool { code == 403 || reason == "Forbidden" }
    public var isUnauthorized: Bool { code == 401 || reason == "Unauthorized" }
    public var isTooManyRequests: Bool { code == 429 || reason == "TooManyRequests" }
    public var isInvalid: Bool { code == 422 || reason == "Invalid" }
    public var isServerError: Bool { code >= 500 }

    public var description: String { "\(request): \(code) \(reason ?? "Error"): \(message)" }
}

/// A request that got no HTTP answer: the connection was refused, reset or timed out, or the
/// answer could not be read in time. Not a ``KubernetesError``, which always carries the
/// server's status code.
public struct KubernetesConnectionError: Error, Sendable, CustomStringConvertible {
    /// Request that failed, e.g. `GET /api/v1/namespaces/default/secrets/x` (never a body).
    public var request: String
    /// What the transport said.
    public var underlying: String

    public init(request: String, underlying: String) {
        self.request = request
        self.underlying = underlying
    }

    public var description: String { "\(request): no answer from the API server: \(underlying)" }
}
