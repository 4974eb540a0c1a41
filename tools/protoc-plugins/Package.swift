// swift-tools-version:6.0
// Builds the two protoc plugins that generate Sources/Talos/TalosAPI/Generated/ from
// Sources/Talos/TalosMessages/Protos/ (see scripts/generate-talos-api). Kept apart from the main package so
// that building the operator never builds code generators.
import PackageDescription

let package = Package(
    name: "protoc-plugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", exact: "2.4.1"),
    ],
    targets: []
)
