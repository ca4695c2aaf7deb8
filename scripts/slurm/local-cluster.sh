#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tlhub's integration test and for trying job
# arrays by hand:
#   scripts/slurm/local-cluster.sh start    # munged + slurmctld + slurmd (Debian's slurm-wlm, munge)
#   scripts/slurm/local-cluster.sh stop
# Runs as root. State lives in $TLHUB_SLURM_DIR (default /tmp/tlhub-slurm): slurm.conf, spool,
# logs. The node has this machine's CPUs and memory; ProctrackType=proctrack/linuxproc and
# TaskPlugin=task/none, so no cgroup setup is needed.
set -euo pipefail
dir=${TLHUB_SLURM_DIR:-/tmp/tlhub-slurm}
host=$(hostname -s)

start() {
    command -v slurmctld >/dev/null && command -v munged >/dev/null || {
        echo "slurm-wlm and munge are not installed (apt-get install slurm-wlm munge)" >&2; exit 1; }
    mkdir -p "$dir"/{spool/ctld,spool/d,log,run} /etc/munge /var/run/munge /var/log/munge /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown -R munge:munge /etc/munge /var/run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
    pgrep -x munged >/dev/null || (runuser -u munge -- /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force)
    cpus=$(nproc)
    memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
    cat > "$dir/slurm.conf" <<CONF
ClusterName=tlhub
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/spool/ctld
SlurmdSpoolDir=$dir/spool/d
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=30
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
    export SLURM_CONF="$dir/slurm.conf"
    pgrep -x slurmctld >/dev/null || slurmctld -f "$SLURM_CONF"
    pgrep -x slurmd >/dev/null || slurmd -f "$SLURM_CONF"
    for _ in $(seq 1 60); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|allocated'; then
            echo "Slurm is up: SLURM_CONF=$SLURM_CONF"; return 0
        fi
        scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
        sleep 1
    done
    echo "Slurm did not come up; see $dir/log" >&2
    tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" >&2 || true
    exit 1
}

stop() {
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
    echo "Slurm stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
