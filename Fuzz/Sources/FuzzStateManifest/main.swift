import ConfigurationFiles
import ControlPlaneState

/// A state manifest read back from a bucket (`restore --state-output`, `verify`, `recover
/// --apply-state`): parsing gives the Secret or a StateManifestInvalid/ConfigurationError, never
/// a trap or a hang; an error is short (it names a key or a kind shaped as Kubernetes allows and
/// a position, never carries the input; that Yams' errors never quote the text is
/// FuzzKubeconfig's invariant, over the same reader); and a Secret that parses writes a
/// manifest that parses back to the same Secret.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStateManifest(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let secret: StateManifest.Secret
    do {
        secret = try StateManifest.parse(bytes, source: "/fuzz")
    } catch let error as StateManifestInvalid {
        precondition("\(error)".utf8.count < 600, "an error carries the input")
        return 0
    } catch let error as ConfigurationError {
        precondition("\(error)".utf8.count < 600, "an error carries the input")
        return 0
    } catch {
        preconditionFailure("not a StateManifestInvalid or ConfigurationError: \(error)")
    }
    do {
        let again = try StateManifest.parse(StateManifest.yaml(secret), source: "/fuzz/written")
        precondition(again == secret, "a parsed Secret does not survive its own manifest")
    } catch {
        preconditionFailure("the manifest written for a parsed Secret does not parse: \(error)")
    }
    return 0
}
