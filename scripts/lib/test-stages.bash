# The test command's stages, shared by scripts/test (each once) and scripts/test-repeat (each
# N times). Sourced, not run. Every stage runs from the repository root and returns non-zero
# when it failed.
#
# Tests come in three tiers, by what they start (Package.swift lists the targets of each):
# - unit: in memory, no child process, no port; run inside a network namespace of their own
#   (unshare -n: not even loopback), so a test that opens a socket fails instead of passing;
# - integration: real etcd, moto and Ceph RGW, the Talos and Kubernetes test servers, kubectl,
#   the age/zstd/etcdctl/promtool CLIs;
# - end to end: the operator as a process (EndToEndTests), the demo, the container image.
# Tests with deadlines (types named ...TimingTests) run in a stage of their own, alone.

if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
fi

# The unit tier's test targets, as a swift test --filter/--skip pattern.
unit_targets='^(CronTests|CustomResourcesTests|WaitingTests|SnapshotPipelineUnitTests|ControllerRuntimeUnitTests|TalosAPIUnitTests|S3UnitTests|BboltUnitTests|BackupOperatorUnitTests)\.'

# Starts the S3 test servers into directory $1 and exports their environment: three moto
# servers (SigV4 authentication on; off; on over HTTPS with a generated CA) and Ceph's RADOS
# Gateway on a one-node Ceph (scripts/s3-test-services.py). The Kubernetes and Talos test
# servers and etcd are started by the tests themselves.
start_services() {
    python3 scripts/s3-test-services.py start "$1"
    # shellcheck disable=SC1091
    . "$1/s3.env"
}

stop_services() {
    python3 scripts/s3-test-services.py stop "$1" || true
}

stage_manifests() { python3 -m pytest -q tests/manifests; }

# The documentation site (mkdocs.yml, docs/) builds with --strict: a broken link or anchor
# between pages, a page missing from the nav, or any other warning fails it. Built into a
# temporary directory, so no site/ is left behind. Not --quiet: it hides the warnings from
# --strict's count, and the build then passes whatever they say.
stage_docs() {
    local site status=0
    site=$(mktemp -d)
    NO_MKDOCS_2_WARNING=1 python3 -m mkdocs build --strict --site-dir "$site" || status=$?
    rm -rf "$site"
    return "$status"
}

# The tests that started and never finished, from Swift Testing's output in file $1.
unfinished_tests() {
    comm -23 <(sed -n 's/^◇ Test \(.*\) started\.$/\1/p' "$1" | grep -v '^case ' | sort -u) \
             <(sed -n -E 's/^[✔✘] Test (.*) (passed|failed) after .*/\1/p' "$1" | sed -E 's/ with [0-9]+ test cases?$//' | sort -u) |
        sed 's/^/  /'
}

# Runs a test command for at most $1 seconds (then SIGTERM, SIGKILL 30 s later): a test that
# never finishes fails its stage, naming itself, instead of holding the run until CI's limit.
bounded() {
    local limit=$1 log status errexit=false
    shift
    log=$(mktemp)
    [[ $- == *e* ]] && errexit=true
    set +e
    timeout --kill-after=30 "$limit" "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    if $errexit; then set -e; fi
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        echo "== not finished within $limit s; tests that started and never finished:"
        unfinished_tests "$log"
    fi
    rm -f "$log"
    return "$status"
}

stage_unit() {
    local run=(swift test --skip-build --filter "$unit_targets" --skip TimingTests)
    if unshare --net true 2>/dev/null; then
        bounded 600 unshare --net "${run[@]}"
    elif unshare --user --map-root-user --net true 2>/dev/null; then  # not root: a user namespace too
        bounded 600 unshare --user --map-root-user --net "${run[@]}"
    else
        echo "(unshare --net is not permitted here: the unit tier runs with the machine's network)"
        bounded 600 "${run[@]}"
    fi
}

stage_integration() { bounded 1200 swift test --skip-build --skip "$unit_targets|TimingTests|EndToEndTests"; }

# The end-to-end tests run operator processes on a test clock (a tick every two seconds):
# alone, so the rest of the suite does not compete with them for the two cores.
stage_end_to_end() { bounded 1200 swift test --skip-build --filter EndToEndTests --skip "ImageEndToEndTests|TimingTests"; }

# Tests with deadlines (a lost lease ends the process in time, a timer fires in time, the rate
# limit, leader handover) run last, one at a time (--no-parallel), so the two cores are shared
# neither with moto and the rest of the suite nor with each other.
stage_timing() { bounded 900 swift test --skip-build --filter TimingTests --no-parallel; }

# Every fuzz target for a short, fixed budget, after replaying the inputs that once crashed
# one (the build with libFuzzer and AddressSanitizer is a scratch path of its own, .build-fuzz).
# A fixed number of runs from a fixed seed, so every machine tries the same inputs: a new
# finding comes from a longer `scripts/fuzz` run, not from CI at random.
fuzz_runs=2000
stage_fuzz() { bounded 900 scripts/fuzz --runs "$fuzz_runs" --seed 1; }

# The README's first command, non-interactively, so it cannot rot.
stage_demo() { bounded 900 scripts/demo --once --skip-install && bounded 900 scripts/demo --disaster --once --skip-install; }

# The container image's end-to-end tests under podman (scripts/test-image builds the image
# unless given --no-build).
stage_image() { scripts/test-image "$@"; }
