import Foundation

/// What a metric is, beside its name: the HELP text Prometheus shows (and `promtool check
/// metrics` requires) and, for a histogram, its bucket bounds. swift-metrics' API carries
/// neither, so each module that records metrics lists its families here, next to the code that
/// records them, and the exposition (``OperatorEndpoints/DescribedMetricsFactory``) reads them.
public struct MetricFamily: Sendable, Equatable {
    public var name: String
    public var help: String
    /// Upper bounds of a histogram's buckets, in the metric's unit (seconds for durations).
    public var buckets: [Double]?

    public init(_ name: String, help: String, buckets: [Double]? = nil) {
        self.name = name
        self.help = help
        self.buckets = buckets
    }

    /// `count` bounds from `start`, each `factor` times the one before (as client_golang's
    /// `ExponentialBuckets`).
    public static func exponentialBuckets(start: Double, factor: Double, count: Int) -> [Double] {
        (0..<count).map { start * pow(factor, Double($0)) }
    }
}
