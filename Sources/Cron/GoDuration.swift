/// Go's `time.ParseDuration`, which robfig/cron uses for `@every <duration>`: a possibly signed
/// sequence of decimal numbers, each with an optional fraction and a unit (`ns`, `us`, `µs`,
/// `ms`, `s`, `m`, `h`), such as `1h30m` or `1.5h`; `0` alone needs no unit.
enum GoDuration {
    private static let units: [String: Double] = [
        "ns": 1, "us": 1e3, "\u{00B5}s": 1e3, "\u{03BC}s": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9,
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
    static func parse(_ text: String) -> Int64? {
        var rest = Substring(text)
        var negative = false
        if let sign = rest.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            rest = rest.dropFirst()
        }
        if rest == "0" { return 0 }
        guard !rest.isEmpty else { return nil }
        var total: Double = 0
        while !rest.isEmpty {
            let whole = rest.prefix(while: { $0.isASCII && $0.isNumber })
            rest = rest.dropFirst(whole.count)
            var fraction = Substring("")
            if rest.first == "." {
                rest = rest.dropFirst()
                fraction = rest.prefix(while: { $0.isASCII && $0.isNumber })
                rest = rest.dropFirst(fraction.count)
            }
            guard !whole.isEmpty || !fraction.isEmpty else { return nil }
            let unit = rest.prefix(while: { !($0.isASCII && ($0.isNumber || $0 == ".")) })
            rest = rest.dropFirst(unit.count)
            guard let scale = units[String(unit)] else { return nil }
            let value = Double("\(whole.isEmpty ? "0" : whole).\(fraction.isEmpty ? "0" : fraction)") ?? .infinity
            total += value * scale
            guard total <= Double(Int64.max) else { return nil }
        }
        let nanoseconds = Int64(total)
        return negative ? -nanoseconds : nanoseconds
    }
}
