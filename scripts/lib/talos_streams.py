#!/usr/bin/env python3
"""Shared by scripts/benchmark-talos and scripts/benchmark-pipeline: a generated etcd snapshot
file, the grpc-go Talos stand-in (.build/talos-standin) and talos-test-server as processes, and
commands timed as processes (wall clock, CPU of the process and its children, peak RSS).

    talos_streams.py snapshot DIR SIZE_MIB          writes DIR/snapshot-SIZE.db (a sound bbolt
                                                    database with etcd's SHA-256 trailer)
    talos_streams.py stream DIR SIZE_MIB ROUNDS     target 1 of issue 26: the stream alone
    talos_streams.py pipeline DIR SIZE_MIB ROUNDS   targets 2 and 3: the backup path into S3
"""
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = os.path.join(ROOT, ".build/release/talos-etcd-backup")
TEST_SERVER = os.path.join(ROOT, ".build/release/talos-test-server")
STANDIN = os.path.join(ROOT, ".build/talos-standin")


def wait_for(path, process, seconds=60):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{path} did not appear (server exit code {process.poll()})")
        time.sleep(0.1)


class Server:
    """A Talos node as a process: the grpc-go stand-in serving FILE, or talos-test-server
    serving generated snapshots of SIZE_MIB; talosconfig is its etcd-backup talosconfig."""

    def __init__(self, directory, kind, message_bytes=1024, snapshot=None, size_mib=None):
        self.directory = os.path.join(directory, f"{kind}-{message_bytes}-{os.path.basename(snapshot or str(size_mib))}")
        os.makedirs(self.directory, exist_ok=True)
        self.talosconfig = os.path.join(self.directory, "etcd-backup.talosconfig")
        if os.path.exists(self.talosconfig):
            os.remove(self.talosconfig)
        self.log_path = os.path.join(self.directory, "server.log")
        if kind == "standin":
            command = [STANDIN, "serve", "-pki-dir", self.directory, "-snapshot", snapshot, "-message-bytes", str(message_bytes)]
        else:
            command = [TEST_SERVER, "--etcd-endpoint", "http://127.0.0.1:1", "--pki-dir", self.directory,
                       "--synthetic-snapshot-mib", str(size_mib), "--message-bytes", str(message_bytes)]
        self.process = subprocess.Popen(command, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT)
        wait_for(self.talosconfig, self.process)

    def server_cpu_per_message(self):
        """The stand-in's own figure for each stream it served (µs of CPU per message)."""
        with open(self.log_path) as log:
            return [float(value) for value in re.findall(r"server CPU ([0-9.]+) µs per message", log.read())]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def timed(command, **kwargs):
    """Runs command; returns (wall seconds, CPU seconds of it and its children, its peak RSS in
    MiB, its stdout). The process's own rusage (wait4), so each figure is this run's."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, **kwargs)
        deadline = start + 900
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit(f"{command[0]} did not finish within 900 s")
            time.sleep(0.01)
        wall = time.monotonic() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if process.returncode != 0:
            raise SystemExit(f"{command[0]} failed ({process.returncode}): {err.read()[-2000:]}")
        return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.read()


def snapshot(directory, size_mib):
    """A generated snapshot of SIZE_MIB MiB (+ its 32-byte trailer), taken from talos-test-server
    in 1 MiB messages with the CLI (which checks it as a backup does)."""
    path = os.path.join(directory, f"snapshot-{size_mib}.db")
    if not os.path.exists(path):
        server = Server(directory, "testserver", 1 << 20, size_mib=size_mib)
        try:
            timed([CLI, "snapshot", "--talosconfig", server.talosconfig, "--output", path])
        finally:
            server.stop()
    return path


def median(values):
    return statistics.median(values)


def stream(directory, size_mib, rounds):
    """Target 1: the stream alone to a file, grpc-go client against this client (every check a
    backup makes: trailer, bbolt structure, SHA-256), both from the grpc-go stand-in in Talos'
    1 KiB messages; and this client from talos-test-server (grpc-swift) beside it."""
    path = snapshot(directory, size_mib)
    size = os.path.getsize(path)
    messages = -(-size // 1024)
    output = os.path.join(directory, "stream.out")
    standin = Server(directory, "standin", 1024, snapshot=path)
    go, swift = [], []
    try:
        for _ in range(rounds):
            go.append(timed([STANDIN, "fetch", "-pki-dir", standin.directory, "-output", output]))
            swift.append(timed([CLI, "snapshot", "--talosconfig", standin.talosconfig, "--output", output, "--force"]))
        server_cpu = standin.server_cpu_per_message()
    finally:
        standin.stop()
    test_server = Server(directory, "testserver", 1024, size_mib=size_mib)
    swift_test_server = []
    try:
        for _ in range(rounds):
            swift_test_server.append(timed([CLI, "snapshot", "--talosconfig", test_server.talosconfig, "--output", output, "--force"]))
    finally:
        test_server.stop()
    os.remove(output)

    def row(name, runs):
        wall = median([run[0] for run in runs])
        cpu = median([run[1] for run in runs])
        rss = max(run[2] for run in runs)
        print(f"{name:<58} {size / wall / 1048576:8.1f} MiB/s  {cpu * 1e6 / messages:6.2f} µs CPU per message  peak RSS {rss:6.1f} MiB")
        return size / wall / 1048576, cpu * 1e6 / messages

    print(f"stream alone: {size} bytes in {messages} messages of 1 KiB, over mutual TLS (Ed25519), to a file on {directory}; medians of {rounds} rounds")
    go_rate, _ = row("grpc-go client (the reference), from the grpc-go stand-in", go)
    swift_rate, swift_cpu = row("talos-etcd-backup snapshot --output, from the stand-in", swift)
    test_rate, _ = row("talos-etcd-backup snapshot --output, from talos-test-server", swift_test_server)
    print(f"server CPU per message, grpc-go stand-in: {median(server_cpu):.2f} µs")
    print(f"ratio, this client / grpc-go client (target: at least 1): {swift_rate / go_rate:.2f}")
    print(f"client CPU per message (target: at most 2 µs): {swift_cpu:.2f} µs")
    print(f"(from talos-test-server instead: {test_rate:.1f} MiB/s, {test_rate / go_rate:.2f} of the grpc-go client's rate from the stand-in)")


def session_cpu(sessions):
    """CPU seconds (user + system) of every live process in these sessions: an S3 server and
    the daemons it started (each is started in a session of its own)."""
    total, ticks = 0.0, os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) in sessions:  # field 6, the session
            total += (int(fields[11]) + int(fields[12])) / ticks  # fields 14 and 15
    return total


class S3Services:
    """The test suite's S3 servers (scripts/s3-test-services.py), started afresh for each run so
    that no run pays for objects an earlier one left in moto's memory."""

    def __init__(self, directory):
        self.directory = os.path.join(directory, "s3")
        os.makedirs(self.directory, exist_ok=True)
        self.environment = {}

    def fresh(self):
        # Started afresh up to three times: a Ceph OSD started again and again in one directory
        # sometimes does not come up within the start script's five tries.
        for attempt in range(3):
            self.stop()
            started = subprocess.run([sys.executable, os.path.join(ROOT, "scripts/s3-test-services.py"), "start", self.directory],
                                     stdout=subprocess.DEVNULL)
            if started.returncode == 0:
                break
        else:
            raise SystemExit("the S3 servers did not start (three times)")
        self.environment = {}
        with open(os.path.join(self.directory, "pids")) as pids:
            self.sessions = {int(pid) for pid in pids.read().split()}
        with open(os.path.join(self.directory, "s3.env")) as exports:
            for line in exports:
                match = re.match(r"export ([A-Z0-9_]+)=(.*)", line.strip())
                if match:
                    self.environment[match.group(1)] = match.group(2).strip("'\"")

    def stop(self):
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/s3-test-services.py"), "stop", self.directory],
                       check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# The malloc settings `talos-etcd-backup run` applies, for PipelineBenchmark (AllocatorSettings).
OPERATOR_MALLOC = {"PIPELINE_MALLOC": "operator"}
OPERATOR_MALLOC_SET = ["MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_"]


def base_environment():
    """This process's environment without anything that changes malloc, so that a run said to
    have glibc's defaults has them and one said to have run's settings has all four."""
    return {key: value for key, value in os.environ.items()
            if key not in ("PIPELINE_MALLOC", "GLIBC_TUNABLES") and not key.startswith("MALLOC_")}


def pipeline_seconds(out, operator_malloc):
    """The pipeline's seconds from PipelineBenchmark's output, after checking that its malloc
    was the one asked for."""
    line = next((line for line in out.splitlines() if line.startswith("pipeline Talos -> S3")), "")
    wanted = ("malloc: run's settings " + " ".join(OPERATOR_MALLOC_SET)) if operator_malloc else "malloc: glibc's defaults"
    if wanted not in line:
        raise SystemExit(f"PipelineBenchmark did not run with {wanted!r}: {out[-500:]}")
    return float(re.search(r"in ([0-9.]+) s =", line).group(1))


def pipeline(directory, size_mib, rounds):
    """Target 2: the backup path end to end (Talos, checks, S3 multipart upload) from the grpc-go
    stand-in in 1 KiB messages, against boto3's managed upload of the same bytes from a file, and
    against what users script today (the grpc-go client to a file, then boto3's upload, timed
    as one), each on a freshly started moto (SigV4 on) and Ceph RGW; then the path from
    talos-test-server beside it, and its peak memory for a 2 GiB snapshot (target 3). The
    pipeline runs three times in each round: with glibc's malloc defaults, with the settings
    `talos-etcd-backup run` applies (PIPELINE_MALLOC=operator), as the operator runs it, and
    with those and zstd and age; the 2 GiB run twice, plain, with each malloc."""
    path = snapshot(directory, size_mib)
    size = os.path.getsize(path)
    benchmark = os.path.join(ROOT, ".build/release/PipelineBenchmark")
    boto3 = [sys.executable, os.path.join(ROOT, "scripts/s3-boto3-upload.py"), path, "8", "10"]
    scripted_file = os.path.join(directory, "scripted.db")
    services = S3Services(directory)
    standin = Server(directory, "standin", 1024, snapshot=path)
    results = {}
    try:
        for server in ["AUTH", "RGW"]:
            def run(command, extra=None):
                """timed(command) on a fresh server, and the server's CPU seconds during it."""
                services.fresh()
                before = session_cpu(services.sessions)
                result = timed(command, env={**base_environment(), **services.environment, "S3_TEST_SERVER": server, **(extra or {})})
                return (*result, session_cpu(services.sessions) - before)
            rows = {"pipeline": [], "pipeline_operator_malloc": [], "pipeline_encoded": [], "boto3": [], "scripted": []}
            # Where the CPU goes (core-seconds): the client, the Talos stand-in (its own figure
            # for the stream) and the S3 server, against what the machine's cores give in the run's time.
            budgets = {"pipeline": [], "boto3": []}
            for _ in range(rounds):
                wall, cpu, rss, out, s3_cpu = run([benchmark, standin.talosconfig, str(size_mib)])
                rows["pipeline"].append((pipeline_seconds(out, False), rss))
                node_cpu = standin.server_cpu_per_message()[-1] * (size / 1024) / 1e6
                budgets["pipeline"].append((wall, cpu, node_cpu, s3_cpu))
                _, _, rss, out, _ = run([benchmark, standin.talosconfig, str(size_mib)], OPERATOR_MALLOC)
                rows["pipeline_operator_malloc"].append((pipeline_seconds(out, True), rss))
                # Target 2's optional stages: zstd (level 3) and age (one recipient), as the operator runs.
                out = run([benchmark, standin.talosconfig, str(size_mib), "default", "zstd+age"], OPERATOR_MALLOC)[3]
                # Its own peak, printed before the record copy that ends an encoded run (the
                # process's maximum from wait4 includes that copy's client too).
                rows["pipeline_encoded"].append((pipeline_seconds(out, True), float(re.search(r"peak RSS ([0-9.]+) MiB", out).group(1))))
                wall, cpu, _, out, s3_cpu = run(boto3)
                rows["boto3"].append((float(re.search(r"in ([0-9.]+) s =", out).group(1)), 0))
                budgets["boto3"].append((wall, cpu, 0.0, s3_cpu))
                fetch = timed([STANDIN, "fetch", "-pki-dir", standin.directory, "-output", scripted_file])[0]
                upload = float(re.search(r"in ([0-9.]+) s =", run([*boto3[:2], scripted_file, "8", "10"])[3]).group(1))
                rows["scripted"].append((fetch + upload, 0))
            rows["budgets"] = budgets
            results[server] = rows
        os.remove(scripted_file)
    finally:
        standin.stop()
    test_server = Server(directory, "testserver", 1024, size_mib=size_mib)
    try:
        for server in ["AUTH", "RGW"]:
            services.fresh()
            out = timed([benchmark, test_server.talosconfig, str(size_mib)],
                        env={**base_environment(), **services.environment, "S3_TEST_SERVER": server})[3]
            results[server]["testserver"] = pipeline_seconds(out, False)
    finally:
        test_server.stop()
    big = snapshot(directory, 2 * size_mib)
    standin = Server(directory, "standin", 1024, snapshot=big)
    big_runs = {}
    try:
        for name, extra in [("defaults", {}), ("operator", OPERATOR_MALLOC)]:
            services.fresh()
            _, _, big_rss, out = timed([benchmark, standin.talosconfig, str(2 * size_mib)],
                                       env={**base_environment(), **services.environment, "S3_TEST_SERVER": "AUTH", **extra})
            big_runs[name] = (pipeline_seconds(out, name == "operator"), big_rss)
    finally:
        standin.stop()
        services.stop()
        os.remove(big)

    mib = size / 1048576
    print(f"backup path: {size} bytes in 1 KiB messages from the grpc-go stand-in, into a fresh S3 server per run; medians of {rounds} rounds")
    for server, name in [("AUTH", "moto (SigV4 on)"), ("RGW", "Ceph RGW")]:
        rows = results[server]
        pipeline_s = median([row[0] for row in rows["pipeline"]])
        boto3_s = median([row[0] for row in rows["boto3"]])
        scripted_s = median([row[0] for row in rows["scripted"]])
        rss = max(row[1] for row in rows["pipeline"])
        operator_s = median([row[0] for row in rows["pipeline_operator_malloc"]])
        operator_rss = max(row[1] for row in rows["pipeline_operator_malloc"])
        encoded_s = median([row[0] for row in rows["pipeline_encoded"]])
        encoded_rss = max(row[1] for row in rows["pipeline_encoded"])
        print(f"  {name}:")
        print(f"    pipeline (Talos -> checks -> S3)                  {mib / pipeline_s:7.1f} MiB/s ({pipeline_s:.2f} s), peak RSS {rss:.1f} MiB")
        print(f"    the same with run's malloc settings               {mib / operator_s:7.1f} MiB/s ({operator_s:.2f} s), peak RSS {operator_rss:.1f} MiB"
              f" (ratio to glibc's defaults {pipeline_s / operator_s:.2f})")
        print(f"    the same with zstd and age (run's malloc settings) {mib / encoded_s:7.1f} MiB/s ({encoded_s:.2f} s), peak RSS {encoded_rss:.1f} MiB")
        print(f"    boto3 upload_fileobj of the same bytes, from a file {mib / boto3_s:7.1f} MiB/s ({boto3_s:.2f} s)")
        print(f"    grpc-go client to a file, then boto3's upload      {mib / scripted_s:7.1f} MiB/s ({scripted_s:.2f} s)")
        print(f"    pipeline from talos-test-server instead (one run) {mib / rows['testserver']:7.1f} MiB/s ({rows['testserver']:.2f} s)")
        print(f"    ratio, pipeline / boto3 (target: at least 1): {boto3_s / pipeline_s:.2f}")
        print(f"    ratio, pipeline / grpc-go to file + boto3 (target: above 1): {scripted_s / pipeline_s:.2f}")
        print(f"    the same two ratios with run's malloc settings: {boto3_s / operator_s:.2f} and {scripted_s / operator_s:.2f};"
              f" with zstd and age too: {boto3_s / encoded_s:.2f} and {scripted_s / encoded_s:.2f}")
        cores = os.cpu_count() or 1
        for kind, client in [("pipeline", "the pipeline"), ("boto3", "boto3")]:
            wall, cpu, node, s3 = (median([budget[i] for budget in rows["budgets"][kind]]) for i in range(4))
            node_part = f", Talos stand-in {node:.2f}" if kind == "pipeline" else ""
            print(f"    CPU of a {kind} run (medians, core-seconds): {client} {cpu:.2f}{node_part}, S3 server {s3:.2f}; "
                  f"{cpu + node + s3:.2f} of the {cores * wall:.2f} that {cores} cores give in its {wall:.2f} s")
    for name, label in [("defaults", "glibc's malloc defaults"), ("operator", "run's malloc settings")]:
        seconds, rss = big_runs[name]
        print(f"  {2 * size_mib} MiB snapshot (moto), one run, {label}: {2 * mib / seconds:.1f} MiB/s, peak RSS {rss:.1f} MiB (target: 2 GiB under 100 MiB)")


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "snapshot":
        print(snapshot(sys.argv[2], int(sys.argv[3])))
    elif command == "stream":
        stream(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif command == "pipeline":
        pipeline(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
