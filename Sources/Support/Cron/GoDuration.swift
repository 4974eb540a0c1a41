/// Go's `time.ParseDuration`, which robfig/cron uses for `@every <duration>`: a possibly signed
/// sequence of decimal numbers, each with an optional fraction and a unit (`ns`, `us`, `µs`,
/// `ms`, `s`, `m`, `h`), such as `1h30m` or `1.5h`; `0` alone needs no unit.
enum GoDuration {
    private static let units: [String: UInt64] = [
        "ns": 1, "us": 1_000, "\u{00B5}s": 1_000, "\u{03BC}s": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
        "m": 60_000_000_000, "h": 3_600_000_000_000,
    ]

    /// The interval robfig's `Every` makes of `text`: below one second becomes one second,
    /// and fractions of a second are dropped.
    static func wholeSeconds(_ text: String, expression: String) throws(CronError) -> Int64 {
        guard let nanoseconds = parse(text) else {
            throw .invalidInterval(expression: expression, reason: "\"\(text)\" is not a duration such as 90s, 15m or 1h30m")
        }
        return max(1, nanoseconds / 1_000_000_000)
    }

    /// Nanoseconds, or nil where Go reports an error (including overflow of 64 bits).
    ///
    /// Go's algorithm, in integers as Go computes it: every step is checked against 2^63, so
    /// no input can trap (`@every 9223372036854775807ns` is Go's largest duration and valid;
    /// one nanosecond more is an error, as in Go).
    static func parse(_ text: String) -> Int64? {
        let limit: UInt64 = 1 << 63
        var rest = Substring(text)
        var negative = false
        if let sign = rest.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return 0 }
        guard !rest.isEmpty else { return nil }
        var total: UInt64 = 0
        while !rest.isEmpty {
            guard let first = rest.first, first == "." || Self.digit(first) != nil else { return nil }
            // The whole part: an error when it overflows.
            var whole: UInt64 = 0
            var wholeDigits = 0
            while let character = rest.first, let digit = Self.digit(character) {
                guard whole <= limit / 10 else { return nil }
                whole = whole * 10 + digit
                guard whole <= limit else { return nil }
                rest = rest.dropFirst()
                wholeDigits += 1
            }
            // The fraction: digits past what 63 bits hold are read and ignored.
            var fraction: UInt64 = 0
            var scale: Double = 1
            var fractionDigits = 0
            if rest.first == "." {
                rest = rest.dropFirst()
                var overflow = false
                while let character = rest.first, let digit = Self.digit(character) {
                    rest = rest.dropFirst()
                    fractionDigits += 1
                    guard !overflow, fraction <= (limit - 1) / 10 else { overflow = true; continue }
                    let next = fraction * 10 + digit
                    guard next <= limit else { overflow = true; continue }
                    fraction = next
                    scale *= 10
                }
            }
            guard wholeDigits + fractionDigits > 0 else { return nil }
            let unitText = rest.prefix(while: { !($0 == "." || Self.digit($0) != nil) })
            rest = rest.dropFirst(unitText.count)
            guard let unit = units[String(unitText)] else { return nil }
            guard whole <= limit / unit else { return nil }
            var value = whole * unit
            if fraction > 0 {
                // Go: v += uint64(float64(f) * (float64(unit) / scale)); at most one unit.
                value += UInt64(Double(fraction) * (Double(unit) / scale))
                guard value <= limit else { return nil }
            }
            guard value <= limit - total else { return nil }  // total is at most 2^63
            total += value
        }
        if negative { return total == limit ? Int64.min : -Int64(total) }
        guard total < limit else { return nil }
        return Int64(total)
    }

    private static func digit(_ character: Character) -> UInt64? {
        guard let ascii = character.asciiValue, (48...57).contains(ascii) else { return nil }
        return UInt64(ascii - 48)
    }
}
