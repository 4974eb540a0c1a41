"""Checks the install manifests (deploy/) and the alerts with the real tools.

- deploy/install.yaml is exactly `kubectl kustomize deploy/default`, and every object in it
  (and in the single-namespace overlay) passes kubernetes-validate --strict.
- The Deployment's pod meets the Pod Security Standards "restricted" profile, checked rule by
  rule as the admission controller's checks are written (Kubernetes 1.32).
- The pieces fit: probes and the metrics port match the operator's flags, the Service and the
  ServiceMonitor select what they should, the PodDisruptionBudget covers the pods, the image
  tag is the binary's version.
- The alert rules pass `promtool check rules` and their unit tests (`promtool test rules`), and
  the PrometheusRule carries exactly the same groups.
"""
import copy
import importlib.machinery
import importlib.util
import os
import re
import subprocess
import tempfile

import kubernetes_validate
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KUBERNETES_VERSION = "1.32.0"
INSTALL = os.path.join(ROOT, "deploy", "install.yaml")
RULES = os.path.join(ROOT, "deploy", "prometheus", "talos-etcd-backup.rules.yaml")


def kustomize(path):
    return subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, path)], check=True, capture_output=True, text=True).stdout


def documents(text):
    return [doc for doc in yaml.safe_load_all(text) if doc]


def installed():
    with open(INSTALL, encoding="utf-8") as handle:
        return documents(handle.read())


def one(kind, docs=None):
    matches = [doc for doc in (docs or installed()) if doc["kind"] == kind]
    assert len(matches) == 1, f"one {kind} expected, found {len(matches)}"
    return matches[0]


def test_install_yaml_is_the_rendered_default():
    with open(INSTALL, encoding="utf-8") as handle:
        assert handle.read() == kustomize("deploy/default"), "deploy/install.yaml is stale: run scripts/generate-install"


def test_install_yaml_holds_what_an_install_needs():
    kinds = sorted(doc["kind"] for doc in installed())
    assert kinds == sorted([
        "Namespace", "CustomResourceDefinition", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRole",
        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Service", "Deployment", "PodDisruptionBudget",
    ])


@pytest.mark.parametrize("path", ["deploy/default", "deploy/overlays/single-namespace"])
def test_every_object_passes_kubernetes_validate_strict(path):
    for doc in documents(kustomize(path)):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_kubernetes_validate_can_fail():
    deployment = copy.deepcopy(one("Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# Pod Security Standards, "restricted" (which includes "baseline"), as
# https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists the checks.
BASELINE_CAPABILITIES = {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
                         "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
RESTRICTED_VOLUME_TYPES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}


def restricted_violations(pod):
    """Every rule of the restricted profile the pod spec breaks, by name."""
    problems = []
    containers = pod.get("containers", []) + pod.get("initContainers", []) + pod.get("ephemeralContainers", [])
    pod_security = pod.get("securityContext", {})

    def container_security(container):
        return container.get("securityContext", {})

    # Baseline.
    if any(container_security(c).get("windowsOptions", {}).get("hostProcess") for c in containers) \
            or pod_security.get("windowsOptions", {}).get("hostProcess"):
        problems.append("HostProcess")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"Host namespaces: {field}")
    if any(container_security(c).get("privileged") for c in containers):
        problems.append("Privileged containers")
    for c in containers:
        added = set(container_security(c).get("capabilities", {}).get("add", []))
        if added - BASELINE_CAPABILITIES:
            problems.append(f"Capabilities (baseline): {c['name']} adds {sorted(added - BASELINE_CAPABILITIES)}")
    if any("hostPath" in volume for volume in pod.get("volumes", [])):
        problems.append("HostPath volumes")
    if any(port.get("hostPort", 0) != 0 for c in containers for port in c.get("ports", [])):
        problems.append("Host ports")
    for context in [pod_security] + [container_security(c) for c in containers]:
        if context.get("appArmorProfile", {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
            problems.append("AppArmor")
        selinux = context.get("seLinuxOptions", {})
        if selinux.get("type") not in (None, "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t") \
                or selinux.get("user") or selinux.get("role"):
            problems.append("SELinux")
    if any(container_security(c).get("procMount") not in (None, "Default") for c in containers):
        problems.append("/proc Mount Type")
    if any(context.get("seccompProfile", {}).get("type") == "Unconfined"
           for context in [pod_security] + [container_security(c) for c in containers]):
        problems.append("Seccomp (baseline)")
    if any(sysctl["name"] not in SAFE_SYSCTLS for sysctl in pod_security.get("sysctls", [])):
        problems.append("Sysctls")

    # Restricted.
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"Volume Types: {volume['name']}")
    for c in containers:
        if container_security(c).get("allowPrivilegeEscalation") is not False:
            problems.append(f"Privilege Escalation: {c['name']}")
        non_root = container_security(c).get("runAsNonRoot", pod_security.get("runAsNonRoot"))
        if non_root is not True:
            problems.append(f"Running as Non-root: {c['name']}")
        if container_security(c).get("runAsUser", pod_security.get("runAsUser")) == 0:
            problems.append(f"Running as Non-root user: {c['name']}")
        seccomp = container_security(c).get("seccompProfile", pod_security.get("seccompProfile", {})).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"Seccomp: {c['name']}")
        capabilities = container_security(c).get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"Capabilities: {c['name']} does not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"Capabilities: {c['name']} adds more than NET_BIND_SERVICE")
    if pod_security.get("runAsUser") == 0:
        problems.append("Running as Non-root user: pod")
    return problems


def pod_spec():
    return one("Deployment")["spec"]["template"]["spec"]


def test_deployment_meets_pod_security_restricted():
    assert restricted_violations(pod_spec()) == []


@pytest.mark.parametrize("breakage, rule", [
    (lambda pod: pod["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True), "Privilege Escalation"),
    (lambda pod: pod["containers"][0]["securityContext"].pop("runAsNonRoot") and pod["securityContext"].pop("runAsNonRoot"), "Running as Non-root"),
    (lambda pod: pod["securityContext"].update(runAsUser=0), "Running as Non-root user"),
    (lambda pod: pod["securityContext"].pop("seccompProfile"), "Seccomp"),
    (lambda pod: pod["containers"][0]["securityContext"]["capabilities"].update(drop=[]), "Capabilities"),
    (lambda pod: pod["containers"][0]["securityContext"]["capabilities"].update(add=["NET_ADMIN"]), "Capabilities"),
    (lambda pod: pod.update(hostNetwork=True), "Host namespaces"),
    (lambda pod: pod["containers"][0]["securityContext"].update(privileged=True), "Privileged containers"),
    (lambda pod: pod.update(volumes=[{"name": "root", "hostPath": {"path": "/"}}]), "HostPath volumes"),
    (lambda pod: pod["containers"][0]["ports"][0].update(hostPort=8080), "Host ports"),
])
def test_restricted_check_can_fail(breakage, rule):
    pod = copy.deepcopy(pod_spec())
    breakage(pod)
    assert any(problem.startswith(rule) for problem in restricted_violations(pod))


def test_deployment_runs_as_the_design_says():
    deployment = one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert deployment["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == one("ServiceAccount")["metadata"]["name"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsUser"] == 65532, "the image's non-root user"
    env = {item["name"]: item for item in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert "--metrics-bind-address=:%d" % ports["metrics"] in container["args"]
    assert "--health-probe-bind-address=:%d" % ports["health"] in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["resources"]["requests"]["memory"] and container["resources"]["limits"]["memory"]
    # Longer than the operator's own shutdown bound, so it is not killed mid-release.
    assert pod["terminationGracePeriodSeconds"] > 10
    term = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_image_tag_is_the_binary_version():
    with open(os.path.join(ROOT, "Sources", "Executables", "talos-etcd-backup", "TalosEtcdBackupCommand.swift"), encoding="utf-8") as handle:
        version = re.search(r'static let current = "([^"]+)"', handle.read()).group(1)
    image = pod_spec()["containers"][0]["image"]
    assert image == f"localhost/talos-etcd-backup:{version}"


def test_service_pdb_and_servicemonitor_select_the_operator():
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one("Service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    with open(os.path.join(ROOT, "deploy", "prometheus", "servicemonitor.yaml"), encoding="utf-8") as handle:
        monitor = yaml.safe_load(handle)
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    # The alerts select the job a ServiceMonitor gives: the Service's name.
    with open(RULES, encoding="utf-8") as handle:
        assert f'job="{service["metadata"]["name"]}"' in handle.read()


def test_single_namespace_overlay_binds_in_that_namespace_only():
    docs = documents(kustomize("deploy/overlays/single-namespace"))
    assert not [doc for doc in docs if doc["kind"] == "ClusterRoleBinding"]
    binding = [doc for doc in docs if doc["kind"] == "RoleBinding" and doc["roleRef"]["kind"] == "ClusterRole"]
    assert len(binding) == 1 and binding[0]["metadata"]["namespace"] == "etcd-backups"
    assert "--namespace=etcd-backups" in one("Deployment", docs)["spec"]["template"]["spec"]["containers"][0]["args"]


def promtool(*arguments):
    return subprocess.run(["promtool", *arguments], capture_output=True, text=True)


def test_promtool_check_rules():
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_promtool_test_rules():
    result = promtool("test", "rules", os.path.join(ROOT, "tests", "prometheus", "alerts.test.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_rules_can_fail():
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as broken:
        broken.write("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: max by (namespace (y)\n")
        broken.flush()
        assert promtool("check", "rules", broken.name).returncode != 0


def test_prometheusrule_carries_the_rule_file():
    loader = importlib.machinery.SourceFileLoader("generate", os.path.join(ROOT, "scripts", "generate-prometheus-rule"))
    generate = importlib.util.module_from_spec(importlib.util.spec_from_loader("generate", loader))
    loader.exec_module(generate)
    with open(os.path.join(ROOT, "deploy", "prometheus", "prometheusrule.yaml"), encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == generate.render(), "prometheusrule.yaml is stale: run scripts/generate-prometheus-rule"
    with open(RULES, encoding="utf-8") as handle:
        assert yaml.safe_load(committed)["spec"] == yaml.safe_load(handle)
