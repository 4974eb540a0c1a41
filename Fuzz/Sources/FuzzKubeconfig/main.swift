import ConfigurationFiles
import KubeconfigDocument

/// A kubeconfig given to the CLI (or `KUBECONFIG`'s files): the input is one to three files,
/// separated by a line `---FILE---`, merged as kubectl merges them. Reading gives the merge or
/// a ConfigurationError, never a trap or a hang; the first file to name a context keeps it; and
/// no error quotes the input (Yams' own errors carry the offending line, which can hold a
/// token), so a marker in the input never appears in an error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKubeconfig(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let files = text.components(separatedBy: "\n---FILE---\n").prefix(3)
    var merged = KubeconfigDocument.Merged()
    for (index, file) in files.enumerated() {
        let before = merged.contexts
        do {
            try merged.add(text: file, file: "/fuzz/\(index)")
        } catch let error as ConfigurationError {
            precondition(!"\(error)".contains("SECRET-MARKER"), "an error quotes the file")
            return 0
        } catch {
            preconditionFailure("not a ConfigurationError: \(error)")
        }
        for (name, entry) in before {
            precondition(merged.contexts[name]?.file == entry.file, "a later file replaced context \(name)")
        }
    }
    return 0
}
