"""The module boundaries the architecture promises (docs/design.md, Architecture) hold in the
sources: the snapshot pipeline knows nothing of Kubernetes, and the CLI's commands that read
or take snapshots do not reach into the operator."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUBERNETES_MODULES = {"KubernetesCore", "KubernetesClient", "KubernetesTesting", "ControllerRuntime",
                      "CustomResources", "BackupResolution", "BackupOperator"}


def imports(path):
    with open(path, encoding="utf-8") as handle:
        return set(re.findall(r"^\s*(?:@\w+\s+)*import\s+(\w+)", handle.read(), flags=re.MULTILINE))


def package_dependencies(target):
    """The names a target lists as dependencies in Package.swift (its own modules only)."""
    with open(os.path.join(ROOT, "Package.swift"), encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r'\.(?:target|executableTarget|testTarget|systemLibrary)\(\s*name: "%s"' % target, text)
    assert match, target
    # The target's declaration ends where the next one begins.
    following = re.search(r'\n        \.(?:target|executableTarget|testTarget|systemLibrary)\(', text[match.end():])
    block = text[match.end():match.end() + following.start()] if following else text[match.end():]
    if "dependencies:" not in block:
        return set()
    listed = block.split("dependencies:", 1)[1]
    listed = re.sub(r'\.product\([^)]*\)', "", listed)  # packages' products are not our modules
    return set(re.findall(r'"(\w+)"', listed.split("]", 1)[0]))


def target_path(target):
    """The directory of one of our targets, as Package.swift gives it; None for a product."""
    with open(os.path.join(ROOT, "Package.swift"), encoding="utf-8") as handle:
        text = handle.read()
    match = re.search(r'\.(?:target|executableTarget|testTarget|systemLibrary)\(\s*name: "%s"' % target, text)
    if not match:
        return None
    following = re.search(r'\n        \.(?:target|executableTarget|testTarget|systemLibrary)\(', text[match.end():])
    block = text[match.end():match.end() + following.start()] if following else text[match.end():]
    path = re.search(r'path: "([^"]+)"', block)
    return os.path.join(ROOT, path.group(1)) if path else os.path.join(ROOT, "Sources", target)


def transitive_dependencies(target, seen=None):
    seen = set() if seen is None else seen
    for dependency in package_dependencies(target):
        if dependency not in seen and target_path(dependency) is not None:
            seen.add(dependency)
            transitive_dependencies(dependency, seen)
    return seen


def test_the_snapshot_pipeline_imports_no_kubernetes_module():
    directory = target_path("SnapshotPipeline")
    files = [name for name in os.listdir(directory) if name.endswith(".swift")]
    assert len(files) >= 6, "the pipeline's sources were not found"
    for name in files:
        assert imports(os.path.join(directory, name)) & KUBERNETES_MODULES == set(), name
    dependencies = transitive_dependencies("SnapshotPipeline")
    assert {"S3", "TalosAPI", "Age", "Zstd", "Bbolt"} <= dependencies, dependencies
    assert dependencies & KUBERNETES_MODULES == set(), dependencies


def test_only_the_operator_commands_import_the_operator():
    """`run` (the operator) and `adopt` (which writes backups as the operator would) import it;
    `snapshot`, `restore`, `verify`, `recover` and every other file of the CLI do not."""
    directory = target_path("talos-etcd-backup")
    files = sorted(name for name in os.listdir(directory) if name.endswith(".swift"))
    assert len(files) >= 10, "the CLI's sources were not found"
    importing = {name for name in files if "BackupOperator" in imports(os.path.join(directory, name))}
    assert importing == {"RunCommand.swift", "AdoptCommand.swift"}, importing
    for name in ["SnapshotCommand.swift", "RestoreCommand.swift", "RecoverCommand.swift", "BackupSource.swift"]:
        assert "SnapshotPipeline" in imports(os.path.join(directory, name)), name
