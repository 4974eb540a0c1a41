import Cron
import Foundation
import TestSupport
import Testing

/// Compares thousands of random expressions with PyPI croniter (an independent implementation,
/// run as `scripts/croniter_oracle.py`; `scripts/test` installs it).
///
/// Where croniter's semantics differ from the Kubernetes CronJob's, the case is excluded, and
/// only then:
/// - A day field written `*/1` keeps robfig's star bit (unrestricted: both day fields must
///   match); croniter expands it to a list and ORs. Day fields are generated with steps of at
///   least 2 (`*/1` is pinned in CronRobfigParityTests). `*/n` with n > 1 is restricted in both.
/// - croniter reads a one-value range `a-a` (also `a-a/n`) as `*`, a croniter bug; such ranges
///   are generated as the plain value `a` instead (they are tested against fixed answers above).
/// - Daylight-saving transitions: croniter has its own gap and overlap rules. Compared only in
///   zones without DST (UTC, Asia/Kolkata, Asia/Kathmandu); the DST rules have their own tests.
@Suite("Cron agrees with croniter")
struct CronPropertyTests {
    struct Case: Codable {
        var expr: String
        var tz: String
        var start: Int64
        var count: Int
    }

    struct Answer: Codable {
        var runs: [Int64]?
        var error: String?
    }

    @Test("3,000 random expressions from random starts")
    func randomExpressions() async throws {
        var random = SplitMix64(seed: 0x7A105_E7CD)
        var cases: [Case] = []
        while cases.count < 3_000 {
            let fields = CronField.allCases.map { randomField($0, &random) }
            let zone = ["UTC", "Asia/Kolkata", "Asia/Kathmandu"][Int(random.next() % 3)]
            // 2001-2099, any second.
            let start = 978_307_200 + Int64(random.next() % 3_124_137_600)
            cases.append(Case(expr: fields.joined(separator: " "), tz: zone, start: start, count: 3))
        }

        let answers = try await runOracle(cases)
        try #require(answers.count == cases.count, "croniter answered \(answers.count) of \(cases.count) cases")
        var compared = 0
        var mismatches: [String] = []
        for (testCase, answer) in zip(cases, answers) {
            let schedule = try CronSchedule(testCase.expr, timeZone: testCase.tz)
            let ours = schedule.nextRuns(after: Date(timeIntervalSince1970: TimeInterval(testCase.start)), count: 3)
                .map { Int64($0.timeIntervalSince1970) }
            guard let theirs = answer.runs else {
                // Both must agree that an expression never runs (croniter gives up with this error).
                if ours.isEmpty, answer.error?.hasPrefix("CroniterBadDateError") == true {
                    compared += 1
                } else {
                    Issue.record("croniter rejected \(testCase.expr), we gave \(ours): \(answer.error ?? "?")")
                }
                continue
            }
            if ours != theirs {
                mismatches.append("\(testCase.expr) in \(testCase.tz) after \(testCase.start): ours \(ours), croniter \(theirs)")
            }
            compared += 1
        }
        #expect(compared == cases.count)
        #expect(mismatches.isEmpty, "\(mismatches.count) mismatches, first: \(mismatches.prefix(10).joined(separator: "\n"))")
    }

    /// One random field using every syntax form croniter shares with us.
    private func randomField(_ field: CronField, _ random: inout SplitMix64) -> String {
        let (low, high): (Int, Int) = switch field {
        case .minute: (0, 59)
        case .hour: (0, 23)
        case .dayOfMonth: (1, 31)
        case .month: (1, 12)
        case .dayOfWeek: (0, 6)
        }
        func value() -> Int { low + Int(random.next() % UInt64(high - low + 1)) }
        func name(_ v: Int) -> String {
            let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            let days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
            guard random.next() % 3 == 0 else { return String(v) }
            let text = field == .month ? months[v - 1] : field == .dayOfWeek ? days[v] : String(v)
            return random.next() % 2 == 0 ? text.uppercased() : text
        }
        func part() -> String {
            switch random.next() % 6 {
            case 0: return "*"
            case 1: return name(value())
            case 2:
                let a = value(), b = value()
                if a == b { return name(a) }  // croniter reads `a-a` as `*`
                return "\(name(min(a, b)))-\(name(max(a, b)))"
            case 3:
                let dayField = field == .dayOfMonth || field == .dayOfWeek  // no `*/1` there: see above
                return "*/\((dayField ? 2 : 1) + random.next() % UInt64(high - low))"
            case 4:
                let a = value(), b = value()
                if a == b { return String(a) }
                return "\(min(a, b))-\(max(a, b))/\(1 + random.next() % 7)"
            default: return String(value())
            }
        }
        if field == .dayOfMonth || field == .dayOfWeek, random.next() % 2 == 0 { return "*" }  // keep days common
        let count = random.next() % 4 == 0 ? 2 + Int(random.next() % 2) : 1
        let parts = (0..<count).map { _ in part() }
        return parts.count > 1 && parts.contains("*") ? "*" : parts.joined(separator: ",")
    }

    private func runOracle(_ cases: [Case]) async throws -> [Answer] {
        let script = repositoryRoot.appendingPathComponent("scripts/croniter_oracle.py")
        let encoder = JSONEncoder()
        var lines = Data()
        for testCase in cases {
            lines.append(try encoder.encode(testCase))
            lines.append(0x0A)
        }
        let result = try await ProcessRunner.run("python3", [script.path], stdin: lines)
        try #require(
            result.status == 0,
            "scripts/croniter_oracle.py failed (run scripts/test, which installs croniter): \(result.stderr)")
        let answerData = result.stdoutData
        let decoder = JSONDecoder()
        return try answerData.split(separator: 0x0A).map { try decoder.decode(Answer.self, from: Data($0)) }
    }
}

/// A small seeded generator so a failing case can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
