"""The operator documentation cannot drift from the code: every reason the operator writes on a
condition or an Event (the constants of Sources/TalosBackupAPI/Conditions.swift) has a row in
docs/operating.md's table, and the table names no reason the code does not have."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def code_reasons():
    with open(os.path.join(ROOT, "Sources", "TalosBackupAPI", "Conditions.swift"), encoding="utf-8") as handle:
        text = handle.read()
    reasons_block = text[text.index("public enum ConditionReason"):]
    return set(re.findall(r'public static let \w+ = "(\w+)"', reasons_block))


def documented_reasons():
    with open(os.path.join(ROOT, "docs", "operating.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text[text.index("## Status, conditions"):]
    section = section[:section.index("\n## ", 1)]
    return set(re.findall(r"^\| `(\w+)` \|", section, flags=re.MULTILINE))


def test_every_reason_is_documented():
    reasons = code_reasons()
    assert len(reasons) > 20, "the reasons were not found in Conditions.swift"
    assert reasons - documented_reasons() == set()


def test_no_documented_reason_is_unknown():
    documented = documented_reasons()
    assert len(documented) > 20, "the table rows were not found in docs/operating.md"
    assert documented - code_reasons() == set()

