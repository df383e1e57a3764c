#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the `slurm` tests: munge + slurmctld + slurmd
# from Debian's packages (slurm-wlm 22.05), as root. Idempotent: a cluster already answering
# `sinfo` is left as it is. Installs the packages when apt-get can and they are missing.
# Usage: bash tests/slurm/one_node.sh [install|start|stop]   (default: install, then start)
set -euo pipefail
action=${1:-all}
conf_dir=/etc/slurm

install_packages() {
  if command -v slurmctld >/dev/null && command -v munged >/dev/null; then return 0; fi
  [ "$(id -u)" = 0 ] || { echo "one_node.sh: installing SLURM needs root" >&2; exit 3; }
  command -v apt-get >/dev/null || { echo "one_node.sh: no apt-get to install SLURM" >&2; exit 3; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || {
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q slurm-wlm munge >/dev/null
  }
}

start() {
  if sinfo -h -o %T 2>/dev/null | grep -q 'idle\|mix\|alloc'; then return 0; fi
  [ "$(id -u)" = 0 ] || { echo "one_node.sh: starting SLURM needs root" >&2; exit 3; }
  install -d -o munge -g munge -m 0755 /run/munge
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
    munge -n | unmunge >/dev/null || { echo "one_node.sh: munged does not answer" >&2; exit 1; }
  fi
  host=$(hostname -s)
  node=$(slurmd -C | head -1 | sed "s/NodeName=[^ ]*/NodeName=$host/")
  install -d "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
  cat > "$conf_dir/slurm.conf" <<CONF
ClusterName=resistkit-test
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=5
MinJobAge=3600
MailProg=/bin/true
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 50); do
    sinfo -h -o %T 2>/dev/null | grep -q idle && return 0
    sleep 0.2
  done
  echo "one_node.sh: SLURM started but the node is not idle: $(sinfo 2>&1)" >&2
  exit 1
}

stop() {
  pkill -x slurmd || true
  pkill -x slurmctld || true
  for _ in $(seq 50); do  # a daemon still exiting would be taken for a running one by start
    pgrep -x 'slurmd|slurmctld' >/dev/null || return 0
    sleep 0.2
  done
}

case "$action" in
  install) install_packages ;;
  start) start ;;
  stop) stop ;;
  all) install_packages; start ;;
  *) echo "usage: one_node.sh [install|start|stop]" >&2; exit 2 ;;
esac
