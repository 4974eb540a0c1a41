import ArgumentParser
import Foundation
import CustomResources

/// `crds`: prints (or writes) the CustomResourceDefinitions generated from the API types.
struct CRDsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crds",
        abstract: "Print the CustomResourceDefinitions for kubectl apply -f -.",
        discussion: "With --output-dir, write one file per CRD instead (deploy/crds/ is made this way)."
    )

    @Option(name: .long, help: "Write one <group>_<plural>.yaml per CRD into this directory.")
    var outputDir: String?

    func run() throws {
        guard let outputDir else {
            print(try CustomResourceDefinitions.renderYAML(), terminator: "")
            return
        }
        let directory = URL(fileURLWithPath: outputDir, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for crd in CustomResourceDefinitions.all {
            let file = directory.appendingPathComponent(CustomResourceDefinitions.fileName(of: crd))
            try Data(try YAML.render(crd).utf8).write(to: file)
            print(file.path)
        }
    }
}
