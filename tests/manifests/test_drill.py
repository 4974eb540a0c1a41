"""The restore drill (deploy/drill, used by examples/drill): every object passes
kubernetes-validate --strict; the pod meets the restricted Pod Security Standard as the
operator's does; it runs `verify --schedule NAME --latest` with the identity mounted from its
Secret, read-only; the drill's ServiceAccount may read the schedule, its backups and the one S3
credentials Secret, and nothing else (the identity is never readable through the API); a failed
drill is not retried away; the image is the operator's, at the binary's version."""
import os
import re

import kubernetes_validate

from test_deploy import KUBERNETES_VERSION, ROOT, documents, kustomize, one, restricted_violations


def drill():
    return documents(kustomize("examples/drill"))


def test_every_object_passes_kubernetes_validate_strict():
    docs = drill()
    assert sorted(doc["kind"] for doc in docs) == ["CronJob", "Role", "RoleBinding", "ServiceAccount"]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == "talos-system", "everything in the schedule's namespace"


def test_the_job_verifies_the_newest_backup_with_the_mounted_identity():
    job = one("CronJob", drill())["spec"]["jobTemplate"]["spec"]
    pod = job["template"]["spec"]
    assert restricted_violations(pod) == []
    container = pod["containers"][0]
    assert container["args"] == ["verify", "--schedule=nightly", "--latest", "--identity=/identity/key.txt"]
    mount = container["volumeMounts"][0]
    assert mount["mountPath"] == "/identity" and mount["readOnly"] is True
    volume = next(volume for volume in pod["volumes"] if volume["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "talos-etcd-backup-drill-identity"
    assert volume["secret"]["defaultMode"] == 0o440, "owner and group only"
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"], "the group the identity file gets, so the non-root user reads it"
    assert volume["secret"]["items"] == [{"key": "key.txt", "path": "key.txt"}]
    assert pod["serviceAccountName"] == one("ServiceAccount", drill())["metadata"]["name"]
    assert pod["restartPolicy"] == "Never" and job["backoffLimit"] == 0, "a failed drill is the signal, not retried away"
    assert job["activeDeadlineSeconds"] > 0
    with open(os.path.join(ROOT, "Sources", "Executables", "talos-etcd-backup", "TalosEtcdBackupCommand.swift"), encoding="utf-8") as handle:
        version = re.search(r'static let current = "([^"]+)"', handle.read()).group(1)
    assert container["image"] == f"localhost/talos-etcd-backup:{version}"


def test_the_service_account_reads_backups_and_one_secret_only():
    rules = one("Role", drill())["rules"]
    allowed = {"talosetcdbackupschedules", "talosetcdbackups", "secrets"}
    for rule in rules:
        assert set(rule["verbs"]) <= {"get", "list"}, rule
        assert set(rule["resources"]) <= allowed and "*" not in rule.get("apiGroups", []), rule
        if "secrets" in rule["resources"]:
            assert rule["verbs"] == ["get"] and rule["resourceNames"] == ["s3-credentials"], "only the S3 credentials, by name"
    binding = one("RoleBinding", drill())
    assert binding["roleRef"]["name"] == one("Role", drill())["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "talos-etcd-backup-drill", "namespace": "talos-system"}]
