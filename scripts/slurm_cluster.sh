#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the real-engine tests (tests/test_engines.py)
# and for trying `mnistexp sweep --emit slurm-array` without a cluster. Debian, as root.
#
#   scripts/slurm_cluster.sh start   # install slurmctld, slurmd, munge where missing; start
#                                    # munged, slurmctld, slurmd; wait until sinfo shows idle
#   scripts/slurm_cluster.sh stop    # cancel its jobs, stop the three daemons it started
#
# The cluster: one node (this host, with its CPUs and 90% of its memory), one partition
# `debug`, proctrack/linuxproc and task/none (no cgroups needed), select/cons_tres, munge
# authentication, no accounting. slurm.conf goes to /etc/slurm (an existing one that this
# script did not write is left alone and used as it is); state, logs and pid files live
# under $SLURM_CLUSTER_DIR (default /var/lib/mnistexp-slurm). KillWait is 5 s, so a job that
# hits its time limit gets SIGTERM and 5 s to record it before SIGKILL.
set -euo pipefail

DIR="${SLURM_CLUSTER_DIR:-/var/lib/mnistexp-slurm}"
CONF=/etc/slurm/slurm.conf
MARK="# written by mnistexp scripts/slurm_cluster.sh"

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "slurm_cluster.sh: must run as root (it installs packages and starts daemons)" >&2
        exit 2
    fi
}

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y slurmctld slurmd munge slurm-client
}

write_config() {
    if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
        echo "slurm_cluster.sh: using the existing $CONF" >&2
        return
    fi
    local host cpus memory node
    host="$(hostname -s)"
    node="$(slurmd -C | head -1)"  # NodeName=... CPUs=... Boards=... RealMemory=...
    cpus="$(nproc)"
    memory="$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)"
    node="$(echo "$node" | sed -E "s/RealMemory=[0-9]+/RealMemory=$memory/")"
    mkdir -p /etc/slurm "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF" <<EOF
$MARK
ClusterName=mnistexp
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=300
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    echo "slurm_cluster.sh: wrote $CONF for $host ($cpus CPUs, $memory MB)" >&2
}

start_munge() {
    if [ -f "$DIR/munged.pid" ] && kill -0 "$(cat "$DIR/munged.pid")" 2>/dev/null; then
        return
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key /etc/munge
    chmod 0400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge "$DIR"
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$DIR/munged.pid"
    munge -n | unmunge >/dev/null
}

start() {
    need_root
    install_packages
    write_config
    start_munge
    if ! { [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null; }; then
        slurmctld -c -i  # a fresh controller state: no jobs of an earlier cluster
    fi
    if ! { [ -f "$DIR/slurmd.pid" ] && kill -0 "$(cat "$DIR/slurmd.pid")" 2>/dev/null; }; then
        slurmd
    fi
    local host state
    host="$(hostname -s)"
    for _ in $(seq 1 60); do
        state="$(sinfo -h -n "$host" -o %T 2>/dev/null || true)"
        case "$state" in
            idle | mixed | allocated) break ;;
            down* | drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
        esac
        sleep 1
    done
    sinfo
    case "$state" in
        idle | mixed | allocated) echo "slurm_cluster.sh: cluster up ($host $state)" >&2 ;;
        *)
            echo "slurm_cluster.sh: node $host is '$state', not idle; logs in $DIR/log" >&2
            exit 1
            ;;
    esac
}

stop_daemon() {  # the pid file's process only, never by name
    local pidfile="$1" pid
    [ -f "$pidfile" ] || return 0
    pid="$(cat "$pidfile")"
    if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
}

stop() {
    need_root
    if command -v scancel >/dev/null && [ -f "$DIR/slurmctld.pid" ]; then
        scancel --user="$(id -un)" 2>/dev/null || true
    fi
    stop_daemon "$DIR/slurmd.pid"
    stop_daemon "$DIR/slurmctld.pid"
    stop_daemon "$DIR/munged.pid"
    echo "slurm_cluster.sh: stopped" >&2
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: scripts/slurm_cluster.sh start|stop" >&2
        exit 2
        ;;
esac
