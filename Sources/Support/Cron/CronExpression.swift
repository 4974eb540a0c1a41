import Timestamps

/// A parsed five-field cron expression, with the semantics of the Kubernetes CronJob
/// (robfig/cron v3 `ParseStandard`) as docs/design.md, Cron expressions, states them.
///
/// It matches wall-clock readings only; which wall clock (time zone) and how daylight-saving
/// gaps are treated is ``CronSchedule``'s job.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The text the expression was parsed from, as given.
    public let source: String
    /// Zone named by a `CRON_TZ=` or `TZ=` prefix, if the expression had one.
    public let timeZonePrefix: String?

    // Bit i set = value i matches.
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    let daysOfWeek: UInt64  // 0 = Sunday ... 6 = Saturday
    /// robfig's "star bit": a day field with a part `*` or `?` without a step above 1 is
    /// unrestricted. When either day field is, a day matches when both match; when both are
    /// restricted, when either does. `*/2` is restricted (docs/design.md, Cron expressions).
    let dayOfMonthUnrestricted: Bool
    let dayOfWeekUnrestricted: Bool
    /// `@every <duration>`: runs at a constant interval (whole seconds, at least one) from the
    /// schedule's anchor (its last scheduled time, else its creation), in no time zone; the
    /// five fields are unused.
    public let interval: Int64?

    public var description: String { source }

    private static let descriptors: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
        "@hourly": "0 * * * *",
    ]
    private static let everyPrefix = "@every "

    /// Parses `expression` as robfig/cron v3 `ParseStandard` does (what the Kubernetes API server
    /// accepts for a CronJob); throws a ``CronError`` that names the bad field and value.
    public init(parsing expression: String) throws(CronError) {
        source = expression
        var text = Substring(expression)
        if text.allSatisfy(\.isWhitespace) { throw .empty }

        var prefixZone: String?
        if text.hasPrefix("CRON_TZ=") || text.hasPrefix("TZ=") {
            guard let space = text.firstIndex(where: \.isWhitespace) else {
                throw .malformedTimeZonePrefix(String(text))
            }
            let assignment = text[..<space]
            let zone = assignment[assignment.index(after: assignment.firstIndex(of: "=")!)...]
            if zone.isEmpty { throw .malformedTimeZonePrefix(String(assignment)) }
            prefixZone = String(zone)
            text = text[space...].trimmingWhitespace()
            if text.isEmpty { throw .malformedTimeZonePrefix(String(assignment)) }
        }
        timeZonePrefix = prefixZone

        // Like robfig, a descriptor is the whole remaining text, matched exactly (no trimming).
        if text.hasPrefix("@") {
            if text.hasPrefix(Self.everyPrefix) {
                let seconds = try GoDuration.wholeSeconds(String(text.dropFirst(Self.everyPrefix.count)), expression: String(text))
                (minutes, hours, daysOfMonth, months, daysOfWeek) = (0, 0, 0, 0, 0)
                (dayOfMonthUnrestricted, dayOfWeekUnrestricted) = (true, true)
                interval = seconds
                return
            }
            guard let expanded = Self.descriptors[String(text)] else {
                throw .unknownDescriptor(String(text))
            }
            text = Substring(expanded)
        }
        interval = nil

        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 5 else {
            throw .wrongFieldCount(found: fields.count, expression: expression)
        }
        minutes = try Self.parseField(fields[0], .minute).bits
        hours = try Self.parseField(fields[1], .hour).bits
        (daysOfMonth, dayOfMonthUnrestricted) = try Self.parseField(fields[2], .dayOfMonth)
        months = try Self.parseField(fields[3], .month).bits
        (daysOfWeek, dayOfWeekUnrestricted) = try Self.parseField(fields[4], .dayOfWeek)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.source == rhs.source }
    public func hash(into hasher: inout Hasher) { hasher.combine(source) }

    // MARK: Parsing

    /// A comma-separated list; like robfig, empty elements are skipped (`1,,2` is `1,2`).
    private static func parseField(_ field: Substring, _ kind: CronField) throws(CronError) -> (bits: UInt64, star: Bool) {
        var bits: UInt64 = 0
        var star = false
        for part in field.split(separator: ",") {
            let parsed = try parsePart(part, of: field, kind)
            bits |= parsed.bits
            star = star || parsed.star
        }
        return (bits, star)
    }

    /// One comma-separated part, as robfig's `getRange`: `*`, `?`, `v`, `a-b`, each optionally
    /// followed by `/step`. `*` or `?` stands for the whole range whatever follows a `-`.
    private static func parsePart(_ part: Substring, of field: Substring, _ kind: CronField) throws(CronError) -> (bits: UInt64, star: Bool) {
        func fail(_ reason: String) -> CronError {
            .invalidField(field: kind, value: String(field), reason: reason)
        }
        let rangeAndStep = part.split(separator: "/", omittingEmptySubsequences: false)
        guard rangeAndStep.count <= 2 else { throw fail("\"\(part)\" has more than one \"/\"") }
        let ends = rangeAndStep[0].split(separator: "-", omittingEmptySubsequences: false)
        let bounds = kind.bounds
        var low: Int, high: Int
        var star = false
        if ends[0] == "*" || ends[0] == "?" {
            (low, high, star) = (bounds.lowerBound, bounds.upperBound, true)
        } else {
            guard ends.count <= 2 else { throw fail("\"\(rangeAndStep[0])\" has more than one \"-\"") }
            low = try value(ends[0], kind, field)
            high = ends.count == 2 ? try value(ends[1], kind, field) : low
        }
        var step = 1
        if rangeAndStep.count == 2 {
            guard let parsed = goInteger(rangeAndStep[1]) else {
                throw fail("step \"\(rangeAndStep[1])\" is not a positive number")
            }
            guard parsed > 0 else { throw fail("step must be at least 1, not \(parsed)") }
            step = parsed
            if ends.count == 1 { high = bounds.upperBound }  // "a/n" means a-max/n
            if step > 1 { star = false }
        }
        guard bounds.contains(low) else {
            throw fail("\(low) is out of range \(bounds.lowerBound)-\(bounds.upperBound)")
        }
        guard bounds.contains(high) else {
            throw fail("\(high) is out of range \(bounds.lowerBound)-\(bounds.upperBound)")
        }
        guard low <= high else { throw fail("range \"\(rangeAndStep[0])\" starts after it ends") }
        var bits: UInt64 = 0
        var v = low
        while v <= high {
            bits |= 1 << UInt64(v)
            v += step
        }
        return (bits, star)
    }

    private static func value(_ text: Substring, _ kind: CronField, _ field: Substring) throws(CronError) -> Int {
        if let named = kind.names[text.lowercased()] { return named }
        guard let number = goInteger(text) else {
            let hint = kind.names.isEmpty ? "a number" : "a number or a name (\(kind == .month ? "jan-dec" : "sun-sat"))"
            throw .invalidField(field: kind, value: String(field), reason: "\"\(text)\" is not \(hint)")
        }
        return number
    }

    /// Go's `strconv.Atoi` as robfig uses it: decimal digits after an optional `+` (a `-`
    /// never reaches here as a sign: it separates a range). Nil for anything else or overflow.
    private static func goInteger(_ text: Substring) -> Int? {
        let digits = text.first == "+" ? text.dropFirst() : text
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    // MARK: Matching wall-clock readings

    /// Whether some date can ever match (false for e.g. `0 0 30 2 *`, or a field of commas only).
    public var canEverMatch: Bool {
        if interval != nil { return true }
        if minutes == 0 || hours == 0 || months == 0 { return false }
        if dayOfMonthUnrestricted { return daysOfWeek != 0 }  // every weekday occurs in every month
        if !dayOfWeekUnrestricted && daysOfWeek != 0 { return true }  // either day field: same reason
        // Only day-of-month can match: some allowed day must exist in some allowed month.
        let longest: [Int: Int] = [1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31]
        for month in 1...12 where months & (1 << UInt64(month)) != 0 {
            for day in 1...longest[month]! where daysOfMonth & (1 << UInt64(day)) != 0 { return true }
        }
        return false
    }

    func dayMatches(dayOfMonth: Int64, weekday: Int64) -> Bool {
        let domMatch = daysOfMonth & (1 << UInt64(dayOfMonth)) != 0
        let dowMatch = daysOfWeek & (1 << UInt64(weekday)) != 0
        if dayOfMonthUnrestricted || dayOfWeekUnrestricted { return domMatch && dowMatch }
        return domMatch || dowMatch
    }

    /// Smallest bit position `>= from` set in `mask`, if any below 64.
    private static func nextBit(_ mask: UInt64, from: Int64) -> Int64? {
        guard from < 64 else { return nil }
        let shifted = mask >> UInt64(from)
        return shifted == 0 ? nil : from + Int64(shifted.trailingZeroBitCount)
    }

    /// The first matching whole minute at or after `start` (civil seconds, a whole minute) and
    /// before `limit`, jumping field by field rather than scanning minutes.
    func firstMatch(atOrAfter start: Int64, before limit: Int64?) -> Int64? {
        var day = CivilTime.floorDiv(start, CivilTime.secondsPerDay)
        let secondOfDay = start - day * CivilTime.secondsPerDay
        var hour = secondOfDay / 3600
        var minute = (secondOfDay % 3600) / 60
        var (year, month, dayOfMonth) = CivilTime.date(days: day)
        // A satisfiable expression matches at least once every 8 years (29 February across a
        // non-leap century year); the horizon only guards against a bug turning into a hang.
        let horizon = day + 366 * 12

        func startOfDay(_ newDay: Int64) {
            day = newDay
            (year, month, dayOfMonth) = CivilTime.date(days: day)
            hour = 0
            minute = 0
        }

        while day <= horizon {
            let candidate = day * CivilTime.secondsPerDay + hour * 3600 + minute * 60
            if let limit, candidate >= limit { return nil }
            if months & (1 << UInt64(month)) == 0 {
                let nextYear = month == 12 ? year + 1 : year
                let nextMonth = month == 12 ? 1 : month + 1
                startOfDay(CivilTime.days(year: nextYear, month: nextMonth, day: 1))
                continue
            }
            if !dayMatches(dayOfMonth: dayOfMonth, weekday: CivilTime.weekday(days: day)) {
                startOfDay(day + 1)
                continue
            }
            guard let matchingHour = Self.nextBit(hours, from: hour) else {
                startOfDay(day + 1)
                continue
            }
            if matchingHour != hour { (hour, minute) = (matchingHour, 0) }
            guard let matchingMinute = Self.nextBit(minutes, from: minute) else {
                if hour == 23 { startOfDay(day + 1) } else { (hour, minute) = (hour + 1, 0) }
                continue
            }
            minute = matchingMinute
            let match = day * CivilTime.secondsPerDay + hour * 3600 + minute * 60
            if let limit, match >= limit { return nil }
            return match
        }
        return nil
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var result = self
        while let first = result.first, first.isWhitespace { result.removeFirst() }
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return result
    }
}
