#!/usr/bin/env python3
"""Starts and stops the S3 servers the test suite uses, all on free 127.0.0.1 ports:

- `auth`:   moto_server with authentication on (INITIAL_NO_AUTH_ACTION_COUNT): an IAM user,
            policy and access key are created through its API, after which every request must
            carry a valid SigV4 signature from that key;
- `noauth`: moto_server without authentication, for keys moto's own verifier mishandles
            (non-ASCII, `+`, `~`, `=`);
- `tls`:    moto_server with authentication over HTTPS, with a certificate from a CA generated
            here (the tests trust only that CA).

`start DIR` writes DIR/s3.env (shell exports read by scripts/test) and DIR/pids; `stop DIR`
ends the servers. Each server gets a bucket named `etcd-backups`.
"""
import datetime
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time

BUCKET = "etcd-backups"
REGION = "us-east-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"moto_server on port {port} did not start")


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


def start_moto(directory, name, auth, tls_paths=None):
    port = free_port()
    env = dict(os.environ)
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"  # create_user, put_user_policy, create_access_key
    command = ["moto_server", "-H", "127.0.0.1", "-p", str(port)]
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
            "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": ["*"]}]}))
        key = iam.create_access_key(UserName="etcd-backup")["AccessKey"]
        access, secret = key["AccessKeyId"], key["SecretAccessKey"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=access,
                      aws_secret_access_key=secret, config=config, verify=verify)
    s3.create_bucket(Bucket=BUCKET)
    if auth:  # prove authentication is on: a wrong secret must be refused
        wrong = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=access,
                             aws_secret_access_key="wrong" + secret, config=config, verify=verify)
        try:
            wrong.list_objects_v2(Bucket=BUCKET)
        except Exception:
            pass
        else:
            raise SystemExit(f"moto at {endpoint} accepted a wrong secret: authentication is not on")
    return access, secret


def start(directory):
    os.makedirs(directory, exist_ok=True)
    pki = make_pki(directory)
    pids, exports = [], {"S3_TEST_REGION": REGION, "S3_TEST_BUCKET": BUCKET, "S3_TEST_CA_FILE": pki["ca.crt"]}
    for name, auth, tls in (("auth", True, False), ("noauth", False, False), ("tls", True, True)):
        pid, endpoint = start_moto(directory, name, auth, pki if tls else None)
        pids.append(pid)
        with open(os.path.join(directory, "pids"), "w") as f:
            f.write("\n".join(map(str, pids)))
        access, secret = provision(endpoint, auth, pki["ca.crt"] if tls else None)
        prefix = f"S3_TEST_{name.upper()}"
        exports[f"{prefix}_ENDPOINT"] = endpoint
        exports[f"{prefix}_ACCESS_KEY_ID"] = access
        exports[f"{prefix}_SECRET_ACCESS_KEY"] = secret
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
    os.remove(os.path.join(directory, "pids"))


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "stop"):
        raise SystemExit("usage: s3-test-services.py start|stop DIR")
    (start if sys.argv[1] == "start" else stop)(sys.argv[2])
