@testable import ConfigurationFiles
import Foundation
import TalosAPI
import Testing

/// Configuration YAML (talosconfigs from tenants' Secrets, kubeconfigs given to the CLI)
/// with anchors or aliases is refused before Yams reads it: Yams' duplicate-key check hashes
/// an aliased key whole, which is exponential in how deeply aliases nest.
@Suite("configuration YAML: anchors and aliases")
struct YAMLConfigurationTests {
    /// Found in review: each level aliases the one before ten times, and the last is used as a
    /// key; Yams took about ten times longer per level (12 s at six). It must be refused at
    /// once, whatever the depth.
    @Test("a talosconfig whose key is a deeply nested alias is refused, naming the place")
    func aliasBomb() throws {
        var text = "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
        let levels = Array("abcdefghijklmnop")
        for (previous, next) in zip(levels, levels.dropFirst()) {
            text += "\(next): &\(next) [\(Array(repeating: "*\(previous)", count: 10).joined(separator: ","))]\n"
        }
        text += "? *p\n: 1\n"
        do {
            _ = try Talosconfig.parse(text, source: "Secret ns/cp-talosconfig key \"talosconfig\"")
            Issue.record("accepted")
        } catch let error as ConfigurationError {
            #expect(error.description == "Secret ns/cp-talosconfig key \"talosconfig\": uses a YAML anchor or alias (line 1, column 4); they are not accepted here (talosctl and kubectl never write them)")
        }
    }

    @Test("every place libyaml reads an anchor or alias is found", arguments: [
        ("a: *b", 1, 4), ("- *a", 1, 3), ("? *g\n: 1", 1, 3), ("[x, *a]", 1, 5), ("{a: *b}", 1, 5), ("{\"a\":*b}", 1, 6),
        ("k: !!seq &a [x]", 1, 10), ("--- &a x", 1, 5), ("x: a \"\nb: *c", 2, 4), ("[a:\"x, *c\"]", 1, 8),
        ("a: x\r*b: 1", 2, 1), ("a: x\u{85}*b: 1", 2, 1), ("a: x\u{2028}*b: 1", 2, 1), ("\u{FEFF}&a x", 1, 1),
        ("a: foo\n  *b", 2, 3), ("<<: *base", 1, 5), ("a: [\n  x,\n  *y]", 3, 3), ("[!!str,*a]", 1, 8), ("{!!str: *a}", 1, 9),
    ])
    func found(text: String, line: Int, column: Int) throws {
        let found = try #require(YAMLConfiguration.anchorOrAlias(in: text), "\(text.debugDescription)")
        #expect(found.line == line && found.column == column, "\(text.debugDescription): \(found)")
    }

    @Test("`&` and `*` inside quoted or plain scalars and comments are text", arguments: [
        "args: [\"-c\", \"foo && bar\"]", "command: run *", "a: b &c", "a: 'x *y'", "a: \"x \\\" *y\"", "a: b # *c", "a: http://x/*y",
        "a:*b",
    ])
    func notFound(text: String) {
        #expect(YAMLConfiguration.anchorOrAlias(in: text) == nil, "\(text.debugDescription)")
    }
}
