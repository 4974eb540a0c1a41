"""Checks the generated CRDs and the example manifests with independent tools.

- kubernetes-validate checks each CRD (strictly: unknown properties rejected) against the
  Kubernetes OpenAPI schema of apiextensions.k8s.io/v1, and the seed's Secret against core/v1.
- The structural-schema rules the API server applies (a type everywhere, items on arrays,
  list-map keys required, only `type` on metadata) are checked here, since no API server runs.
- The example manifests are validated against the generated openAPIV3Schema with jsonschema,
  with unknown fields rejected, as `kubectl apply` (fieldValidation=Strict) has the server do;
  broken variants must be rejected, so the check is known to be able to fail.
"""
import copy
import glob
import os

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUBERNETES_VERSION = "1.32.0"
CRD_FILES = sorted(glob.glob(os.path.join(ROOT, "deploy", "crds", "talos.alperen.cloud_*.yaml")))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.yaml")))


def load_all(path):
    with open(path, encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def crds():
    return {doc["spec"]["names"]["kind"]: doc for path in CRD_FILES for doc in load_all(path)}


def strict(schema):
    """The schema with unknown properties rejected (metadata excepted: the server owns it)."""
    schema = copy.deepcopy(schema)

    def walk(node, path):
        if node.get("type") == "object" and "properties" in node and path != "metadata":
            node["additionalProperties"] = False
        for name, child in node.get("properties", {}).items():
            walk(child, name if not path else f"{path}.{name}")
        if "items" in node:
            walk(node["items"], path + "[]")

    walk(schema, "")
    return schema


def validator(kind):
    crd = crds()[kind]
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft4Validator(strict(schema))


def test_both_crds_are_generated():
    assert len(CRD_FILES) == 2
    assert set(crds()) == {"TalosEtcdBackupSchedule", "TalosEtcdBackup"}


@pytest.mark.parametrize("path", CRD_FILES, ids=os.path.basename)
def test_crd_is_a_valid_customresourcedefinition(path):
    for doc in load_all(path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", CRD_FILES, ids=os.path.basename)
def test_crd_schema_is_structural(path):
    problems = []

    def walk(node, where):
        if where == "metadata":
            if set(node) - {"type"}:
                problems.append(f"{where}: only type may be set on metadata")
            return
        if "type" not in node:
            problems.append(f"{where}: no type")
        if not node.get("description"):
            problems.append(f"{where}: no description")
        if node.get("type") == "array" and "items" not in node:
            problems.append(f"{where}: array without items")
        if node.get("type") == "object" and "properties" in node and "additionalProperties" in node:
            problems.append(f"{where}: both properties and additionalProperties")
        for required in node.get("required", []):
            if required not in node.get("properties", {}):
                problems.append(f"{where}: required {required} is not a property")
        if node.get("x-kubernetes-list-type") == "map":
            item = node["items"]
            for key in node.get("x-kubernetes-list-map-keys", []):
                if key not in item.get("required", []):
                    problems.append(f"{where}: list-map key {key} must be required")
        for name, child in node.get("properties", {}).items():
            walk(child, f"{where}.{name}" if where else name)
        if "items" in node:
            walk(node["items"], where + "[]")

    for doc in load_all(path):
        version = doc["spec"]["versions"][0]
        walk(version["schema"]["openAPIV3Schema"], "")
        assert version["subresources"] == {"status": {}}
        for column in version["additionalPrinterColumns"]:
            assert column["jsonPath"].startswith("."), column
    assert problems == []


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_examples_match_the_generated_schema(path):
    docs = load_all(path)
    assert docs
    for doc in docs:
        if doc["apiVersion"] == "talos.alperen.cloud/v1alpha1":
            errors = [e.message for e in validator(doc["kind"]).iter_errors(doc)]
            assert errors == [], errors
        else:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def seed_schedule():
    return next(d for d in load_all(os.path.join(ROOT, "examples", "daily-backup-schedule.yaml"))
                if d["kind"] == "TalosEtcdBackupSchedule")


def s3(doc):
    return doc["spec"]["backupTemplate"]["spec"]["backupStorage"]["s3"]


BROKEN = {
    "retention below minimum": lambda d: d["spec"].__setitem__("retention", 0),
    "empty schedule": lambda d: d["spec"].__setitem__("schedule", ""),
    "missing schedule": lambda d: d["spec"].pop("schedule"),
    "missing bucket": lambda d: s3(d).pop("bucket"),
    "unknown concurrencyPolicy": lambda d: d["spec"].__setitem__("concurrencyPolicy", "Replace"),
    "misspelt field": lambda d: d["spec"].__setitem__("retension", 3),
    "wrong type": lambda d: d["spec"].__setitem__("paused", "yes"),
    "secret selector without key": lambda d: s3(d)["accessKeyID"].pop("key"),
    "unknown compression": lambda d: d["spec"]["backupTemplate"]["spec"]["backupStorage"].__setitem__(
        "compression", {"type": "gzip"}),
}


@pytest.mark.parametrize("breakage", sorted(BROKEN))
def test_broken_manifests_are_rejected(breakage):
    doc = seed_schedule()
    assert list(validator("TalosEtcdBackupSchedule").iter_errors(doc)) == []
    BROKEN[breakage](doc)
    assert list(validator("TalosEtcdBackupSchedule").iter_errors(doc)) != []


RBAC = os.path.join(ROOT, "deploy", "rbac", "operator-rbac.yaml")


def test_rbac_manifests_are_valid():
    docs = load_all(RBAC)
    assert {doc["kind"] for doc in docs} == {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    assert {doc["metadata"]["name"] for doc in docs if doc["kind"] == "ClusterRole"} == {
        "talos-etcd-backup", "talos-etcd-backup-editor", "talos-etcd-backup-viewer"}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def operator_role():
    return next(doc for doc in load_all(RBAC) if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "talos-etcd-backup")


def test_rbac_grants_secrets_get_only():
    """docs/design.md, Secrets: Secrets are read with GET; never listed or watched."""
    role = operator_role()
    secret_rules = [rule for rule in role["rules"] if "secrets" in rule["resources"]]
    assert [rule["verbs"] for rule in secret_rules] == [["get"]]
    plurals = {crd["spec"]["names"]["plural"] for crd in crds().values()}
    granted = {resource for rule in role["rules"] for resource in rule["resources"]}
    assert plurals <= granted and {f"{plural}/status" for plural in plurals} <= granted


def grants(rules):
    """(apiGroup, resource) -> set of verbs."""
    table = {}
    for rule in rules:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["verbs"])
    return table


def documented_permissions():
    """The permission table of docs/security.md: rows `| group | resource | verbs |` between its markers."""
    with open(os.path.join(ROOT, "docs", "security.md"), encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("<!-- permissions:begin -->", 1)[1].split("<!-- permissions:end -->", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or cells[0] in ("API group", "") or set(cells[0]) <= {"-"}:
            continue
        group = "" if cells[0] == "(core)" else cells[0]
        table[(group, cells[1])] = {verb.strip().strip("`") for verb in cells[2].split(",")}
    return table


def test_documented_permissions_are_the_manifests():
    role = operator_role()
    lease_role = next(doc for doc in load_all(RBAC) if doc["kind"] == "Role")
    documented = documented_permissions()
    assert len(documented) >= 8, "the permission table was not found in docs/security.md"
    assert documented == grants(role["rules"] + lease_role["rules"])


def test_operator_role_has_no_wildcards_or_unused_verbs():
    table = grants(operator_role()["rules"])
    assert all("*" not in verbs for verbs in table.values())
    # The operator never patches or deletes schedules, nor lists or watches Secrets or Events.
    assert table[("talos.alperen.cloud", "talosetcdbackupschedules")] == {"get", "list", "watch", "update"}
    assert table[("talos.alperen.cloud", "talosetcdbackupschedules/finalizers")] == {"update"}


def test_editor_role_is_not_aggregated_and_viewer_is_read_only():
    docs = {doc["metadata"]["name"]: doc for doc in load_all(RBAC) if doc["kind"] == "ClusterRole"}
    assert not docs["talos-etcd-backup-editor"]["metadata"].get("labels")
    viewer = docs["talos-etcd-backup-viewer"]
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert all(set(rule["verbs"]) <= {"get", "list", "watch"} for rule in viewer["rules"])
