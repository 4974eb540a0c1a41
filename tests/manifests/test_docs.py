"""The documentation cannot drift from the code:

- every reason the operator writes on a condition or an Event (Sources/Operator/CustomResources/
  Conditions.swift) has a row in the table of docs/operations/troubleshooting.md, and the table
  names no reason the code does not have;
- docs/reference/crds.md is exactly what scripts/generate-crd-reference writes from deploy/crds/
  (as deploy/crds/ is exactly what `talos-etcd-backup crds` generates);
- every relative link of the README into docs/ names a file that exists, and a heading there
  when it has an anchor.

Links between the pages of the site are checked by `mkdocs build --strict` (the test command's
docs stage).
"""
import os
import re
import subprocess
import sys
import unicodedata

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TROUBLESHOOTING = os.path.join("docs", "operations", "troubleshooting.md")
CRD_REFERENCE = os.path.join("docs", "reference", "crds.md")


def read(*path):
    with open(os.path.join(ROOT, *path), encoding="utf-8") as handle:
        return handle.read()


def swift_block(text, opener):
    """The body of the declaration that starts with `opener`, up to its matching brace."""
    start = text.index("{", text.index(opener))
    depth = 0
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start + 1:index]
    raise AssertionError(f"unbalanced braces after {opener}")


CASE_LINE = re.compile(
    r'^\s*(?:(?:public|indirect)\s+)*case\s+(\w+(?:\s*=\s*"\w+")?(?:\s*,\s*\w+(?:\s*=\s*"\w+")?)*)\s*$',
    flags=re.MULTILINE)


def reasons_in(swift):
    """The reasons of `enum ConditionReason` in Swift source, whether it holds
    `static let x = "X"` constants or is an enum (`case x = "X"`, `case X`, several cases on
    one line). `case` lines of a switch inside it (`case .x:`) are not declarations."""
    block = re.sub(r"//[^\n]*", "", swift_block(swift, "enum ConditionReason"))
    reasons = set(re.findall(r'static let \w+(?:\s*:\s*\w+)?\s*=\s*"(\w+)"', block))
    for cases in CASE_LINE.findall(block):
        for case in cases.split(","):
            name, _, raw = case.partition("=")
            reasons.add(raw.strip().strip('"') or name.strip())
    return reasons


def code_reasons():
    return reasons_in(read("Sources", "Operator", "CustomResources", "Conditions.swift"))


def documented_reasons():
    text = read(TROUBLESHOOTING)
    section = text[text.index("## Status, conditions"):]
    end = section.find("\n## ", 1)
    section = section if end < 0 else section[:end]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))


def test_every_reason_is_documented():
    reasons = code_reasons()
    assert len(reasons) > 20, "the reasons were not found in Conditions.swift"
    assert reasons - documented_reasons() == set(), f"reasons missing from {TROUBLESHOOTING}'s table"


def test_no_documented_reason_is_unknown():
    documented = documented_reasons()
    assert len(documented) > 20, f"the table rows were not found in {TROUBLESHOOTING}"
    assert documented - code_reasons() == set()


def test_reasons_are_read_from_either_form_of_the_enum():
    """The parser above reads both spellings of ConditionReason (constants today, maybe an enum)."""
    constants = '''
    public enum ConditionReason {
        // Schedules.
        public static let scheduled = "Scheduled"
        public static let paused = "Paused"
    }
    public enum Other { public static let notAReason = "NotAReason" }
    '''
    cases = '''
    public enum ConditionReason: String, Sendable, CaseIterable {
        // Schedules.
        case scheduled = "Scheduled"
        case Paused
        case invalidSchedule = "InvalidSchedule", invalidName = "InvalidName"
        public var isFailure: Bool {
            switch self {
            case .invalidSchedule, .invalidName: return true
            default: return false
            }
        }
    }
    enum Other: String { case notAReason = "NotAReason" }
    '''
    assert reasons_in(constants) == {"Scheduled", "Paused"}
    assert reasons_in(cases) == {"Scheduled", "Paused", "InvalidSchedule", "InvalidName"}


def test_crd_reference_is_generated(tmp_path):
    output = tmp_path / "crds.md"
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "generate-crd-reference"), "--output", str(output)],
                   check=True, cwd=ROOT)
    assert output.read_text(encoding="utf-8") == read(CRD_REFERENCE), \
        f"{CRD_REFERENCE} is stale: run scripts/generate-crd-reference"


def test_crd_reference_names_every_field():
    """A field of the CRDs missing from the page would be a bug of the generator."""
    import yaml

    page = read(CRD_REFERENCE)
    paths = set(re.findall(r"^\| <code>(.*?)</code> \|", page, flags=re.MULTILINE))
    paths = {path.replace("<wbr>", "").replace("&#91;&#93;", "[]") for path in paths}

    def walk(schema, path):
        yield path
        children, child_path = schema, path
        if schema.get("type") == "array" and schema.get("items", {}).get("type") == "object":
            children, child_path = schema["items"], path + "[]"
        for name, child in children.get("properties", {}).items():
            yield from walk(child, f"{child_path}.{name}")

    for name in sorted(os.listdir(os.path.join(ROOT, "deploy", "crds"))):
        if not name.startswith("talos.alperen.cloud_"):
            continue
        crd = yaml.safe_load(read("deploy", "crds", name))
        assert f"## {crd['spec']['names']['kind']}\n" in page
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for top in ("spec", "status"):
            expected = set(walk(schema["properties"][top], top))
            assert expected <= paths, f"{name}: {sorted(expected - paths)} not in {CRD_REFERENCE}"


def slug(heading):
    """The anchor mkdocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"`|\*\*|<[^>]+>", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path):
    text = re.sub(r"(?ms)^```.*?^```", "", read(path))
    return {slug(heading) for heading in re.findall(r"^#{1,6} (.+?)\s*#*$", text, flags=re.MULTILINE)}


def readme_links():
    text = re.sub(r"(?ms)^```.*?^```", "", read("README.md"))
    return sorted(set(re.findall(r"\]\((docs/[^)\s]*)\)", text)))


def test_readme_links_into_docs():
    links = readme_links()
    assert len(links) >= 10, "the README's links into docs/ were not found"
    for link in links:
        target, _, anchor = link.partition("#")
        path = os.path.join(ROOT, target)
        assert os.path.isfile(path), f"README.md links to {target}, which does not exist"
        if anchor:
            assert anchor in anchors(target), f"README.md links to {link}, but {target} has no such heading"


@pytest.mark.parametrize("heading, anchor", [
    ("## Keeping backups: retention, deletion, on demand, adoption", "keeping-backups-retention-deletion-on-demand-adoption"),
    ("## `restore`", "restore"),
    ("## What the operator may do (RBAC)", "what-the-operator-may-do-rbac"),
])
def test_slug_is_mkdocs(heading, anchor):
    assert slug(heading.lstrip("# ")) == anchor
