import Foundation
import Timestamps

/// Credentials that expire, as STS or a container credentials endpoint hands them out. Its
/// description never shows the secret or the token.
public struct TemporaryCredentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When they stop working; nil: they do not expire (keys from the environment).
    public var expiration: Date?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String?, expiration: Date?) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    public var description: String {
        "TemporaryCredentials(accessKeyID: <redacted>, expiration: \(expiration.map { RFC3339.format($0) } ?? "none"))"
    }
}

/// The answers of the services that hand out credentials: STS (XML, like S3's) and the
/// container credentials endpoint (JSON). The bytes come from the network, so every reader
/// returns nil for what it cannot read and nothing here traps; the caller bounds the body.
public enum CredentialResponses {
    /// The `Credentials` of an AssumeRole or AssumeRoleWithWebIdentity answer
    /// (`<…Response><…Result><Credentials>`); nil unless it has a key ID, a secret, a session
    /// token and an RFC 3339 expiration.
    public static func assumedRoleCredentials(_ body: Data) -> TemporaryCredentials? {
        guard let document = S3XMLElement.parse(body),
              let result = document.children.first(where: { $0.name.hasSuffix("Result") }),
              let credentials = result.child("Credentials"),
              let keyID = credentials["AccessKeyId"], !keyID.isEmpty,
              let secret = credentials["SecretAccessKey"], !secret.isEmpty,
              let token = credentials["SessionToken"], !token.isEmpty,
              let expiration = credentials["Expiration"].flatMap({ RFC3339.parse($0.trimmingCharacters(in: .whitespaces)) })
        else { return nil }
        return TemporaryCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token, expiration: expiration)
    }

    /// An STS error answer (`<ErrorResponse><Error><Code>…`); nil when it is not one.
    public static func serviceError(_ body: Data) -> S3Responses.ErrorDocument? {
        guard let document = S3XMLElement.parse(body) else { return nil }
        let error = document.name == "Error" ? document : document.child("Error")
        guard let error else { return nil }
        return S3Responses.ErrorDocument(code: error["Code"], message: error["Message"],
                                         requestID: document["RequestId"] ?? error["RequestId"])
    }

    /// A container credentials endpoint's answer (`{"AccessKeyId", "SecretAccessKey",
    /// "Token", "Expiration"}`, as ECS and EKS Pod Identity serve it); nil unless the key ID
    /// and secret are non-empty strings and an expiration, when present, is RFC 3339.
    public static func containerCredentials(_ body: Data) -> TemporaryCredentials? {
        guard let object = try? JSONSerialization.jsonObject(with: body, options: []) as? [String: Any],
              let keyID = object["AccessKeyId"] as? String, !keyID.isEmpty,
              let secret = object["SecretAccessKey"] as? String, !secret.isEmpty
        else { return nil }
        var token: String?
        if let value = object["Token"] {
            guard let text = value as? String else { return nil }
            token = text.isEmpty ? nil : text
        }
        var expiration: Date?
        if let value = object["Expiration"] {
            guard let text = value as? String, let date = RFC3339.parse(text) else { return nil }
            expiration = date
        }
        return TemporaryCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token, expiration: expiration)
    }
}
