#!/usr/bin/env bash
# A throw-away Slurm on this machine, for the test suite and for trying the launchers on a workstation:
# munged + slurmctld + NODES slurmd daemons (fake nodes node1..nodeN on 127.0.0.1), all state in one
# directory. Needs root (daemons, /etc/hosts). Installs the Debian packages when they are missing.
#
#   slurm/local_cluster.sh start     # idempotent; prints the line to eval: export SLURM_CONF=...
#   slurm/local_cluster.sh status    # exit 0 when the cluster answers
#   slurm/local_cluster.sh stop      # stops only the daemons named in our PID files, undoes /etc/hosts
#   slurm/local_cluster.sh env       # prints the export line
#
# Environment: FEDMA_SLURM_DIR (state, default /tmp/fedma-slurm), NODES (2), CPUS_PER_NODE (4: nodes may
# advertise more CPUs than the machine has), FRESH=1 (start: wipe the state first).
# Requeued jobs become eligible after cred_expire+1 s, so cred_expire is 10 (Slurm's default is 120).
set -euo pipefail

D=${FEDMA_SLURM_DIR:-/tmp/fedma-slurm}
NODES=${NODES:-2}
CPUS_PER_NODE=${CPUS_PER_NODE:-4}
HOSTS_TAG="# fedma-local-slurm"
CTLD_PORT=${CTLD_PORT:-16817}
NODE_PORT0=${NODE_PORT0:-17000}

log() { echo "[local_cluster] $*" >&2; }

node_names() { local i; for ((i = 1; i <= NODES; i++)); do printf 'node%d ' "$i"; done; }

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || { log "missing ${missing[*]} and not root: install them with apt-get"; exit 1; }
    log "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends munge slurmctld slurmd slurm-client >&2
}

# /etc/hosts may be a bind mount: rewrite it in place (no rename), tagged lines only.
hosts_add() {
    grep -q "$HOSTS_TAG" /etc/hosts 2>/dev/null && return 0
    printf '127.0.0.1 %s %s\n' "$(node_names)" "$HOSTS_TAG" >> /etc/hosts
}
hosts_remove() {
    grep -q "$HOSTS_TAG" /etc/hosts 2>/dev/null || return 0
    local kept
    kept=$(grep -v "$HOSTS_TAG" /etc/hosts || true)
    printf '%s\n' "$kept" > /etc/hosts
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_conf() {
    local host mem i
    host=$(hostname -s)
    mem=$(awk '/MemTotal/ {print int($2/1024) - 1024}' /proc/meminfo)
    mkdir -p "$D/state" "$D/munge" "$D/log"
    cat > "$D/slurm.conf" <<EOF
# written by slurm/local_cluster.sh
ClusterName=fedma
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$D/munge/munge.socket,cred_expire=10
StateSaveLocation=$D/state
SlurmctldPidFile=$D/slurmctld.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdSpoolDir=$D/nodes/%n/spool
SlurmdPidFile=$D/nodes/%n/slurmd.pid
SlurmdLogFile=$D/nodes/%n/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,bf_interval=1
SlurmctldParameters=preempt_send_user_signal
SlurmdParameters=config_overrides
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
KillWait=5
MinJobAge=600
JobRequeue=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
EOF
    for ((i = 1; i <= NODES; i++)); do
        echo "NodeName=node$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$((NODE_PORT0 + i)) CPUs=$CPUS_PER_NODE RealMemory=$mem State=UNKNOWN" >> "$D/slurm.conf"
        mkdir -p "$D/nodes/node$i/spool"
    done
    cat >> "$D/slurm.conf" <<EOF
PartitionName=debug Nodes=ALL Default=YES PriorityTier=1 GraceTime=10 MaxTime=INFINITE State=UP
PartitionName=high Nodes=ALL PriorityTier=2 PreemptMode=OFF MaxTime=INFINITE State=UP
EOF
}

cluster_up() { SLURM_CONF=$D/slurm.conf timeout 10 sinfo -h -o '%T' 2>/dev/null | grep -qE 'idle|mixed|alloc'; }

start() {
    install_packages
    [ "$(id -u)" -eq 0 ] || { log "start needs root"; exit 1; }
    if [ "${FRESH:-0}" = 1 ]; then stop; rm -rf "$D"; fi
    mkdir -p "$D"
    [ -f "$D/slurm.conf" ] || write_conf
    hosts_add
    if ! pid_alive "$D/munge/munged.pid"; then
        [ -f "$D/munge/munge.key" ] || { dd if=/dev/urandom of="$D/munge/munge.key" bs=1024 count=1 status=none; chmod 600 "$D/munge/munge.key"; }
        munged --force --socket="$D/munge/munge.socket" --key-file="$D/munge/munge.key" \
            --pid-file="$D/munge/munged.pid" --log-file="$D/log/munged.log" --seed-file="$D/munge/munge.seed"
    fi
    if ! pid_alive "$D/slurmctld.pid"; then
        slurmctld -f "$D/slurm.conf"
    fi
    local n
    for n in $(node_names); do
        pid_alive "$D/nodes/$n/slurmd.pid" || slurmd -f "$D/slurm.conf" -N "$n"
    done
    local i
    for ((i = 0; i < 60; i++)); do
        if [ "$(SLURM_CONF=$D/slurm.conf sinfo -h -o '%T' 2>/dev/null | grep -cE 'idle|mixed|alloc')" -ge 1 ] &&
           ! SLURM_CONF=$D/slurm.conf sinfo -h -N -o '%T' 2>/dev/null | grep -qvE 'idle|mixed|alloc'; then
            log "up: $NODES node(s), state in $D"
            print_env
            return 0
        fi
        sleep 0.5
    done
    log "the cluster did not come up in 30 s; logs in $D/log and $D/nodes/*/slurmd.log"
    SLURM_CONF=$D/slurm.conf sinfo -N >&2 || true
    exit 1
}

stop_pidfile() {   # stop_pidfile PIDFILE NAME: TERM, wait up to 15 s, then KILL
    local f=$1 pid i
    pid_alive "$f" || { rm -f "$f"; return 0; }
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && { log "$2 ($pid) ignored SIGTERM; SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
    rm -f "$f"
}

stop() {
    if [ -f "$D/slurm.conf" ] && cluster_up; then   # end our jobs first, so no task outlives its slurmd
        local ids
        ids=$(SLURM_CONF=$D/slurm.conf squeue -h -o %i 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -z "$ids" ] || SLURM_CONF=$D/slurm.conf scancel --quiet $ids 2>/dev/null || true
        local i
        for ((i = 0; i < 40; i++)); do   # up to 20 s for the tasks to end (KillWait=5)
            [ -z "$(SLURM_CONF=$D/slurm.conf squeue -h -t R,CG -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    local f
    for f in "$D"/nodes/*/slurmd.pid; do [ -e "$f" ] && stop_pidfile "$f" slurmd; done
    stop_pidfile "$D/slurmctld.pid" slurmctld
    stop_pidfile "$D/munge/munged.pid" munged
    hosts_remove
    log "stopped (state kept in $D; FRESH=1 start wipes it)"
}

status() {
    if [ -f "$D/slurm.conf" ] && cluster_up; then
        SLURM_CONF=$D/slurm.conf sinfo -N
        return 0
    fi
    log "not running"
    return 1
}

print_env() { echo "export SLURM_CONF=$D/slurm.conf"; }

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
