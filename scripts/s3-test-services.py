#!/usr/bin/env python3
"""Starts and stops the S3 servers the test suite uses, all on free 127.0.0.1 ports:

- `auth`:   moto_server with authentication on (INITIAL_NO_AUTH_ACTION_COUNT): an IAM user,
            policy and access key, and two roles (a writer and a reader, for the STS tests),
            are created through its API, after which every request must carry a valid SigV4
            signature from that key (or from a role's session credentials);
- `noauth`: moto_server without authentication, for keys moto's own verifier mishandles
            (non-ASCII, `+`, `~`, `=`);
- `tls`:    moto_server with authentication over HTTPS, with a certificate from a CA generated
            here (the tests trust only that CA).

- `rgw`:    Ceph's RADOS Gateway, a second, real S3 implementation: one monitor, one OSD
            keeping objects in memory (`memstore`) and one radosgw, all on 127.0.0.1 without
            cephx (docs/design.md, Test environment), with an S3 user whose keys are
            fixed here; SigV4 is checked by RGW itself. Started in about 2 s; its data is
            gone at stop.

`start DIR` writes DIR/s3.env (shell exports read by scripts/test) and DIR/pids; `stop DIR`
ends the servers. Each server gets a bucket named `etcd-backups`.
"""
import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

BUCKET = "etcd-backups"
# Created with Object Lock (so versioned), for the tests of locked backups.
LOCKED_BUCKET = "etcd-backups-locked"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    tail = ""
    if log and os.path.exists(log):
        with open(log, errors="replace") as f:
            tail = "; last lines of " + log + ":\n" + "".join(f.readlines()[-15:])
    raise SystemExit(f"no server listening on port {port}{tail}")


def make_pki(directory):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = {name: os.path.join(directory, name) for name in ("ca.crt", "server.crt", "server.key")}
    with open(paths["ca.crt"], "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths["server.crt"], "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(paths["server.key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    return paths


# moto_server, with one correction: AWS serves AssumeRoleWithWebIdentity (and ...WithSAML)
# without a signature (the token is the proof), and so does moto without authentication; with
# authentication on, moto 5.2 looks for an Authorization header on them too and fails with a
# 500 (KeyError). These two actions skip moto's signature check, as at AWS; every other
# request is checked as before.
MOTO_SERVER = """
from moto.core.authorization import ActionAuthenticatorMixin
checked = ActionAuthenticatorMixin._authenticate_and_authorize_action
def authenticate(self, iam_request_cls, resource="*"):
    if self._get_action() in ("AssumeRoleWithWebIdentity", "AssumeRoleWithSAML") and "Authorization" not in self.headers:
        return
    return checked(self, iam_request_cls, resource)
ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate
from moto.server import main
main()
"""


def start_moto(directory, name, auth, tls_paths=None):
    port = free_port()
    env = dict(os.environ)
    if auth:
        # create_user, put_user_policy, create_access_key, and create_role + put_role_policy twice
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "7"
    command = [sys.executable, "-c", MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)]
    if tls_paths:
        command += ["-c", tls_paths["server.crt"], "-k", tls_paths["server.key"]]
    log = open(os.path.join(directory, f"moto-{name}.log"), "wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_port(port)
    scheme = "https" if tls_paths else "http"
    return process.pid, f"{scheme}://127.0.0.1:{port}"


def provision(endpoint, auth, ca=None):
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
    verify = ca if ca else None
    access, secret = "testing", "testing"
    if auth:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="bootstrap",
                           aws_secret_access_key="bootstrap", verify=verify)
        iam.create_user(UserName="etcd-backup")
        iam.put_user_policy(UserName="etcd-backup", PolicyName="s3", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"], "Resource": ["*"]}]}))
        key = iam.create_access_key(UserName="etcd-backup")["AccessKey"]
        access, secret = key["AccessKeyId"], key["SecretAccessKey"]
        # Roles for the credential tests (web identity, AssumeRole): moto checks a session
        # token against its role and applies the role's policy, so a reader that may not write
        # shows whose credentials signed.
        trust = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "*", "Federated": "*"},
            "Action": ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]}]})
        roles = {}
        # The writer may also assume roles: it plays the operator's own (IRSA) role too, which
        # needs sts:AssumeRole for a backup's roleARN.
        for name, actions in (("etcd-backup-writer", ["s3:*", "sts:AssumeRole"]), ("etcd-backup-reader", ["s3:GetObject", "s3:ListBucket"])):
            roles[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
            iam.put_role_policy(RoleName=name, PolicyName="s3", PolicyDocument=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": ["*"]}]}))
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=access,
                      aws_secret_access_key=secret, config=config, verify=verify)
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket=LOCKED_BUCKET, ObjectLockEnabledForBucket=True)
    if auth:  # prove authentication is on: a wrong secret must be refused
        wrong = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=access,
                             aws_secret_access_key="wrong" + secret, config=config, verify=verify)
        try:
            wrong.list_objects_v2(Bucket=BUCKET)
        except Exception:
            pass
        else:
            raise SystemExit(f"moto at {endpoint} accepted a wrong secret: authentication is not on")
        return access, secret, roles
    return access, secret, {}


RGW_ACCESS_KEY = "RGWTESTACCESSKEY0001"
RGW_SECRET_KEY = "rgw-test-secret-key-00000000000000000000"


def start_rgw(directory, register):
    """A single-node Ceph cluster with a radosgw; returns its endpoint. Each daemon's pid is
    handed to `register` as soon as it starts, so a failed start is cleaned up too."""
    root = os.path.join(directory, "ceph")
    shutil.rmtree(root, ignore_errors=True)  # a monitor's and an OSD's data are made anew
    for sub in ("mon", "osd", "run", "log"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    mon_port, rgw_port = free_port(), free_port()
    fsid, osd_uuid = str(uuid.uuid4()), str(uuid.uuid4())
    conf = os.path.join(root, "ceph.conf")
    with open(conf, "w") as f:
        f.write(f"""[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
# radosgw's default `secure` mode cannot talk to a monitor without auth (it waits 300 s).
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg autoscale mode = off
osd objectstore = memstore
# The OSD keeps objects in memory; a full one blocks writes (no error), so leave room.
memstore device bytes = {4 * 1024 ** 3}
# By default a monitor shuts itself down when its disk has less than 5 % free; its data here
# is small, and a test machine's disk may well be that full (seen here: it never listened).
mon data avail crit = 0
# The monitor batches map changes for a second each by default: start-up took 13 s.
paxos propose interval = 0.05
paxos min wait = 0.01
run dir = {root}/run
log file = {root}/log/$name.log
keyring = {root}/keyring
mon data = {root}/mon
osd data = {root}/osd
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
# SSE-C over plain HTTP: this RGW has no TLS (AWS, and RGW by default, refuse customer keys
# sent in clear).
rgw crypt require ssl = false
""")

    def run(*command):
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command[:2])} failed: {result.stderr.decode(errors='replace')[-2000:]}")
        return result.stdout.decode().strip()

    def ceph(*arguments, retry_for=60):
        """The ceph CLI against the new monitor, retried for `retry_for` s: a monitor that has just
        started listening can still refuse commands while it settles ("Error EPERM: problem
        getting command descriptions from mon.", seen here once in about ten starts).
        Both commands used here are idempotent (`osd new` with the same uuid answers the same id)."""
        deadline = time.time() + retry_for
        while True:
            try:
                return run("ceph", "-c", conf, "--connect-timeout", "10", *arguments)
            except (SystemExit, subprocess.TimeoutExpired):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def daemon(name, *command):
        log = open(os.path.join(root, "log", f"{name}.out"), "ab")
        process = subprocess.Popen(list(command), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        register(process.pid)
        return process

    # A keyring must exist even without cephx.
    run("ceph-authtool", "--create-keyring", f"{root}/keyring", "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
    run("monmaptool", "--create", "--addv", "a", f"v1:127.0.0.1:{mon_port}", "--fsid", fsid, f"{root}/monmap")
    run("ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", f"{root}/monmap", "--keyring", f"{root}/keyring")
    daemon("mon", "ceph-mon", "-f", "-c", conf, "-i", "a")
    wait_for_port(mon_port, log=f"{root}/log/mon.a.log")
    osd_id = ceph("osd", "new", osd_uuid)
    run("ceph-osd", "-c", conf, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid)
    # An OSD that starts while the monitor is still settling may ask it with a zero fsid and
    # exit ("wrong fsid", seen here about one start in five): start it again until it is up.
    for attempt in range(5):
        osd = daemon("osd", "ceph-osd", "-f", "-c", conf, "-i", osd_id)
        deadline = time.time() + 20
        while time.time() < deadline and osd.poll() is None:
            try:  # the loop itself retries: one answer at a time, within the OSD's 20 s
                status = json.loads(ceph("osd", "stat", "-f", "json", retry_for=0))
            except (SystemExit, subprocess.TimeoutExpired):
                time.sleep(0.2)
                continue
            if status.get("num_up_osds", status.get("osdmap", {}).get("num_up_osds", 0)) >= 1:
                break
            time.sleep(0.2)
        else:
            if osd.poll() is None:
                osd.kill()
                osd.wait()
            continue
        break
    else:
        raise SystemExit("the Ceph OSD did not come up")
    daemon("rgw", "radosgw", "-f", "-c", conf, "-n", "client.rgw")
    wait_for_port(rgw_port, timeout=60, log=f"{root}/log/client.rgw.log")
    run("radosgw-admin", "-c", conf, "user", "create", "--uid", "etcd-backup", "--display-name", "etcd-backup",
        "--access-key", RGW_ACCESS_KEY, "--secret-key", RGW_SECRET_KEY)
    return f"http://127.0.0.1:{rgw_port}"


def provision_rgw(endpoint):
    import boto3
    from botocore.config import Config

    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5})
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=RGW_ACCESS_KEY,
                      aws_secret_access_key=RGW_SECRET_KEY, config=config)
    deadline = time.time() + 60
    while True:  # the first request waits for the OSD to come up and the pools to be created
        try:
            s3.create_bucket(Bucket=BUCKET)
            break
        except Exception as error:
            if time.time() > deadline:
                raise SystemExit(f"RGW at {endpoint} did not accept a bucket: {error}")
            time.sleep(0.5)
    s3.create_bucket(Bucket=LOCKED_BUCKET, ObjectLockEnabledForBucket=True)
    wrong = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=RGW_ACCESS_KEY,
                         aws_secret_access_key="wrong" + RGW_SECRET_KEY, config=config)
    try:
        wrong.list_objects_v2(Bucket=BUCKET)
    except Exception:
        pass
    else:
        raise SystemExit(f"RGW at {endpoint} accepted a wrong secret: authentication is not on")


def start(directory):
    os.makedirs(directory, exist_ok=True)
    pki = make_pki(directory)
    pids, exports = [], {"S3_TEST_REGION": REGION, "S3_TEST_BUCKET": BUCKET, "S3_TEST_LOCKED_BUCKET": LOCKED_BUCKET, "S3_TEST_CA_FILE": pki["ca.crt"]}
    for name, auth, tls in (("auth", True, False), ("noauth", False, False), ("tls", True, True)):
        pid, endpoint = start_moto(directory, name, auth, pki if tls else None)
        pids.append(pid)
        with open(os.path.join(directory, "pids"), "w") as f:
            f.write("\n".join(map(str, pids)))
        access, secret, roles = provision(endpoint, auth, pki["ca.crt"] if tls else None)
        prefix = f"S3_TEST_{name.upper()}"
        if roles:
            exports[f"{prefix}_ROLE_ARN"] = roles["etcd-backup-writer"]
            exports[f"{prefix}_READER_ROLE_ARN"] = roles["etcd-backup-reader"]
        exports[f"{prefix}_ENDPOINT"] = endpoint
        exports[f"{prefix}_ACCESS_KEY_ID"] = access
        exports[f"{prefix}_SECRET_ACCESS_KEY"] = secret
    if os.environ.get("S3_TEST_SKIP_RGW") != "1":
        def register(pid):
            pids.append(pid)
            with open(os.path.join(directory, "pids"), "w") as f:
                f.write("\n".join(map(str, pids)))
        endpoint = start_rgw(directory, register)
        provision_rgw(endpoint)
        exports["S3_TEST_RGW_ENDPOINT"] = endpoint
        exports["S3_TEST_RGW_ACCESS_KEY_ID"] = RGW_ACCESS_KEY
        exports["S3_TEST_RGW_SECRET_ACCESS_KEY"] = RGW_SECRET_KEY
    with open(os.path.join(directory, "s3.env"), "w") as f:
        for name, value in exports.items():
            f.write(f"export {name}='{value}'\n")


def stop(directory):
    try:
        with open(os.path.join(directory, "pids")) as f:
            pids = [int(line) for line in f.read().split() if line]
    except FileNotFoundError:
        return
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 10  # then SIGKILL: a Ceph daemon may take its time
    for pid in pids:
        while time.time() < deadline and alive(pid):
            time.sleep(0.1)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.remove(os.path.join(directory, "pids"))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (the parent has not reaped it) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        raise SystemExit("usage: s3-test-services.py start|stop DIR")
    (start if sys.argv[1] == "start" else stop)(sys.argv[2])
