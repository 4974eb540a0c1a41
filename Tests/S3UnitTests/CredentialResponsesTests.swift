import Foundation
import S3
import S3Responses
import Testing

@Suite("Reading what STS and a container credentials endpoint answer")
struct CredentialResponsesTests {
    let sts = """
        <AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>\
        <AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>\
        <Expiration>2026-12-05T14:45:36.922702Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>
        """

    @Test("AssumeRole and AssumeRoleWithWebIdentity answers, fractional seconds and all")
    func assumedRole() throws {
        let credentials = try #require(CredentialResponses.assumedRoleCredentials(Data(sts.utf8)))
        #expect(credentials.accessKeyID == "ASIAEXAMPLE")
        #expect(credentials.secretAccessKey == "secret")
        #expect(credentials.sessionToken == "token")
        #expect(credentials.expiration.map { Int($0.timeIntervalSince1970) } == 1_796_481_936)
        let web = sts.replacingOccurrences(of: "AssumeRoleResponse", with: "AssumeRoleWithWebIdentityResponse")
            .replacingOccurrences(of: "AssumeRoleResult", with: "AssumeRoleWithWebIdentityResult")
        #expect(CredentialResponses.assumedRoleCredentials(Data(web.utf8)) == credentials)
        #expect(!"\(credentials)".contains("secret") && !"\(credentials)".contains("token"))
    }

    @Test("an answer that lacks a part, or whose expiration is not a time, is nothing")
    func incomplete() {
        for (field, replacement) in [("<SessionToken>token</SessionToken>", ""), ("<SecretAccessKey>secret</SecretAccessKey>", "<SecretAccessKey></SecretAccessKey>"),
                                     ("2026-12-05T14:45:36.922702Z", "tomorrow"), ("AssumeRoleResult>", "Other>")] {
            let body = sts.replacingOccurrences(of: field, with: replacement)
            #expect(CredentialResponses.assumedRoleCredentials(Data(body.utf8)) == nil, "\(field) → \(replacement)")
        }
        #expect(CredentialResponses.assumedRoleCredentials(Data("not xml".utf8)) == nil)
    }

    @Test("STS errors: code and message")
    func errors() {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
        let document = CredentialResponses.serviceError(Data(body.utf8))
        #expect(document?.code == "AccessDenied")
        #expect(document?.message == "no")
        #expect(document?.requestID == "r-1")
    }

    @Test("container endpoint JSON: keys, optional token and expiration, wrong types refused")
    func container() throws {
        let full = try #require(CredentialResponses.containerCredentials(Data(#"{"AccessKeyId":"a","SecretAccessKey":"s","Token":"t","Expiration":"2026-12-05T14:45:36Z"}"#.utf8)))
        #expect(full.sessionToken == "t")
        #expect(full.expiration != nil)
        let bare = try #require(CredentialResponses.containerCredentials(Data(#"{"AccessKeyId":"a","SecretAccessKey":"s"}"#.utf8)))
        #expect(bare.sessionToken == nil && bare.expiration == nil)
        for body in [#"{"AccessKeyId":"a"}"#, #"{"AccessKeyId":"","SecretAccessKey":"s"}"#, #"{"AccessKeyId":"a","SecretAccessKey":"s","Token":5}"#,
                     #"["AccessKeyId"]"#, String(repeating: "[", count: 100_000)] {
            #expect(CredentialResponses.containerCredentials(Data(body.utf8)) == nil, "\(body.prefix(60))")
        }
    }

    @Test("session names: only what STS allows, cut to 64")
    func sessionNames() {
        #expect(SecurityTokenService.sessionName("talos-etcd-backup.team-a") == "talos-etcd-backup.team-a")
        #expect(SecurityTokenService.sessionName("a b/c") == "a-b-c")
        #expect(SecurityTokenService.sessionName(String(repeating: "x", count: 100)).count == 64)
        #expect(SecurityTokenService.sessionName("") == "talos-etcd-backup")
    }
}
