#!/usr/bin/env bash
# A private Docker engine for machines that have none (CI VMs, sandboxes); a machine whose Docker
# already answers never needs it, and the script touches nothing there.
#
#   scripts/local-engine.sh start    start the engine (idempotent) and print DOCKER_HOST=unix://…
#   scripts/local-engine.sh stop     stop exactly that dockerd and its containerd, by pid, and
#                                    check that nothing of it is left running or mounted
#   scripts/local-engine.sh status   exit 0 and print DOCKER_HOST when it answers, else exit 3
#
# start, when no engine answers (the caller's DOCKER_HOST or docker context, or the default
# socket) and we are root on Debian: installs Debian's docker.io (dockerd, containerd, runc) when
# missing, without starting the system's docker service; starts dockerd with everything under the
# state directory (data-root, exec-root, its containerd, socket, pid file, daemon.json, log);
# runs a privileged probe container, and only where that fails with runc's "unable to apply caps"
# (a bounding set without CAP_SYS_RESOURCE) builds scripts/runc-shim and makes it dockerd's
# default runtime. It never uses /var/run/docker.sock or /etc/docker: pass the printed DOCKER_HOST
# to the commands that should use the engine, e.g.
#   export "$(scripts/local-engine.sh start)" && make e2e; scripts/local-engine.sh stop
# Nothing is printed on stdout when another engine already answers (use that one).
#
# Environment:
#   MESHCONFORM_ENGINE_DIR  state directory (default ${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/engine)
#   DOCKER                  docker CLI (default: docker on PATH)
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin" # dockerd, runc and docker-proxy live in sbin

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${MESHCONFORM_ENGINE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/meshconform/engine}"
SOCK="$STATE/docker.sock"
HOST="unix://$SOCK"
PIDFILE="$STATE/dockerd.pid"
EXEC_ROOT="$STATE/exec"
DATA_ROOT="$STATE/data"
CONFIG="$STATE/daemon.json"
LOG="$STATE/dockerd.log"
SHIM="$STATE/bin/meshconform-runc"
NEEDS_SHIM="$STATE/needs-shim" # holds the probe's error from the run that found the shim needed
PROBE_IMAGE="meshconform/engine-probe:busybox"
DOCKER="${DOCKER:-docker}"
# The packages whose binaries the engine runs (Debian 12: dockerd 20.10, containerd 1.6, runc 1.1).
ENGINE_BINARIES=(dockerd containerd containerd-shim-runc-v2 runc docker-init docker-proxy)

log() { printf 'local-engine: %s\n' "$*" >&2; }
die() { printf 'local-engine: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# ours runs the docker CLI against this engine only, whatever the caller's environment says;
# ours_within SECONDS ... gives it a deadline (a CLI stuck on a dead socket must not hang us).
ours() { env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH "$DOCKER" -H "$HOST" "$@"; }
ours_within() {
  local t=$1
  shift
  timeout "$t" env -u DOCKER_CONTEXT -u DOCKER_TLS_VERIFY -u DOCKER_CERT_PATH "$DOCKER" -H "$HOST" "$@"
}

# our_pid prints the pid of the dockerd this state directory started, if it is still that dockerd
# (a pid file outliving its process must not make us signal a stranger).
our_pid() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  local args
  args=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ "$args" == dockerd\ * && "$args" == *" --exec-root $EXEC_ROOT "* ]] || return 1
  echo "$pid"
}

our_answers() { ours_within 20 version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# other_engine_answers: an engine other than ours answers the caller's docker configuration.
other_engine_answers() {
  [ "${DOCKER_HOST:-}" = "$HOST" ] && return 1
  if command -v "$DOCKER" >/dev/null; then
    timeout 20 "$DOCKER" version --format '{{.Server.Version}}' >/dev/null 2>&1
  else
    [ -S /var/run/docker.sock ] # no CLI to ask; a socket there means someone runs an engine
  fi
}

# our_processes lists the pids of everything this engine runs: dockerd, its containerd, the
# containerd shims (they name our containerd's socket), and the pid files' processes.
our_processes() {
  local p args
  for p in /proc/[0-9]*; do
    args=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    case "$args" in
      *"$STATE/"*) case "$args" in dockerd\ * | containerd\ * | */containerd\ * | */dockerd\ * | *containerd-shim*) echo "${p#/proc/}" ;; esac ;;
    esac
  done
}

our_mounts() { awk -v s="$STATE/" 'index($5, s) == 1 { print $5 }' /proc/self/mountinfo; }

install_engine() {
  local missing=() b
  for b in "${ENGINE_BINARIES[@]}"; do
    command -v "$b" >/dev/null || missing+=("$b")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "no Docker engine answers and ${missing[*]} are missing; install Docker, or run this as root on Debian to get a private engine"
  if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null; then
    die "no Docker engine answers; this script installs one only on Debian (apt-get). Install Docker and start it"
  fi
  log "installing Debian's docker.io (missing: ${missing[*]})"
  local t0 policy_added=
  t0=$(now)
  # The package's maintainer scripts would start the system's docker service on the default
  # socket; policy-rc.d (exit 101) forbids that for this install only.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# meshconform local-engine.sh: no service starts during its install\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io; } \
    >"$STATE/apt.log" 2>&1 || rc=$?
  [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
  [ $rc -eq 0 ] || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get install docker.io failed (log: $STATE/apt.log)"; }
  log "installed docker.io in $(took "$t0")"
}

# write_config with-shim|without-shim writes daemon.json. deprecated-key-path keeps dockerd
# 20.10's key.json out of /etc/docker (the option exists only in the config file).
write_config() {
  {
    printf '{\n  "deprecated-key-path": "%s"' "$STATE/key.json"
    if [ "$1" = with-shim ]; then
      printf ',\n  "runtimes": {"meshconform-runc": {"path": "%s"}},\n  "default-runtime": "meshconform-runc"' "$SHIM"
    fi
    printf '\n}\n'
  } >"$CONFIG.new"
  mv -f "$CONFIG.new" "$CONFIG"
}

build_shim() {
  command -v go >/dev/null || die "the shim needs Go (go build ./scripts/runc-shim); Go is not on PATH"
  mkdir -p "$STATE/bin"
  (cd "$ROOT" && CGO_ENABLED=0 go build -o "$SHIM.new" ./scripts/runc-shim) || die "building scripts/runc-shim failed"
  mv -f "$SHIM.new" "$SHIM"
}

# probe_image makes a one-binary image from Debian's busybox-static, without any registry.
probe_image() {
  ours image inspect "$PROBE_IMAGE" >/dev/null 2>&1 && return 0
  local bb=/bin/busybox
  if ! dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then die "the probe image needs Debian's busybox-static"; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends busybox-static >>"$STATE/apt.log" 2>&1 ||
      die "apt-get install busybox-static failed (log: $STATE/apt.log)"
  fi
  local dir="$STATE/probe-rootfs"
  rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/etc"
  cp "$bb" "$dir/bin/busybox"
  ln -s busybox "$dir/bin/sh"
  ln -s busybox "$dir/bin/true"
  tar -C "$dir" -c . | ours import -c 'CMD ["/bin/sh"]' - "$PROBE_IMAGE" >/dev/null
}

# probe runs a privileged container the way kind runs its nodes; prints runc's error on failure.
# shellcheck disable=SC2069 # stderr (runc's error) to the caller, stdout away, on purpose
probe() { ours_within 60 run --rm --privileged --network none "$PROBE_IMAGE" true 2>&1 >/dev/null; }

reload_config() {
  local pid
  pid=$(our_pid) || die "dockerd is gone"
  kill -HUP "$pid"
  for _ in $(seq 1 50); do
    [ "$(ours info --format '{{.DefaultRuntime}}' 2>/dev/null)" = "$1" ] && return 0
    sleep 0.2
  done
  die "dockerd did not reload $CONFIG (default runtime still $(ours info --format '{{.DefaultRuntime}}' 2>&1))"
}

start() {
  if our_pid >/dev/null && our_answers; then
    log "already running (pid $(our_pid))"
    echo "DOCKER_HOST=$HOST"
    return 0
  fi
  if other_engine_answers; then
    log "a Docker engine already answers (${DOCKER_HOST:-default context}); nothing to do"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "no Docker engine answers; install Docker, or run this as root on Debian to get a private engine"
  [ ${#SOCK} -lt 100 ] || die "state directory path too long for a unix socket: $SOCK (set MESHCONFORM_ENGINE_DIR)"
  mkdir -p "$STATE"
  install_engine
  if [ -n "$(our_processes)" ]; then
    die "processes of an earlier engine under $STATE are still running (pids $(our_processes | tr '\n' ' ')); run: $0 stop"
  fi
  cleanup_mounts

  local t0 pid
  # The shim stays the default runtime once a probe found it needed: containers made with it
  # (a kept kind cluster) name it as their runtime.
  if [ -s "$NEEDS_SHIM" ]; then build_shim && write_config with-shim; else write_config without-shim; fi
  [ -d /run/containerd ] || touch "$STATE/made-run-containerd"
  rm -f "$SOCK" "$PIDFILE"
  t0=$(now)
  # setsid: Ctrl-C in the caller's terminal must not reach the engine (stop does, by pid).
  setsid dockerd --host "$HOST" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" --pidfile "$PIDFILE" \
    --config-file "$CONFIG" </dev/null >>"$LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$STATE/dockerd.started"
  for _ in $(seq 1 300); do
    our_answers && break
    alive "$pid" || { tail -n 20 "$LOG" >&2; die "dockerd exited while starting (log: $LOG)"; }
    sleep 0.2
  done
  our_answers || { tail -n 20 "$LOG" >&2; stop; die "dockerd did not answer on $SOCK within 60s (log: $LOG)"; }
  [ "$(our_pid)" = "$pid" ] || { stop; die "the pid file names $(cat "$PIDFILE" 2>/dev/null), not the dockerd started ($pid)"; }
  log "dockerd $(ours version --format '{{.Server.Version}}') (pid $pid) answers on $SOCK after $(took "$t0")"

  t0=$(now)
  probe_image
  local err
  if err=$(probe); then
    log "privileged probe container ran ($(took "$t0")); default runtime: $(ours info --format '{{.DefaultRuntime}}')"
  else
    err=${err%%$'\n'*} # docker's error; the lines after it are its "Run 'docker run --help'" hint
    if [[ "$err" != *"unable to apply caps"* ]] || [ -s "$NEEDS_SHIM" ]; then
      stop
      die "a privileged container cannot run on this engine: $err"
    fi
    log "privileged probe failed: $err"
    log "so scripts/runc-shim (it drops CAP_SYS_RESOURCE) becomes dockerd's default runtime"
    build_shim
    write_config with-shim
    reload_config meshconform-runc
    local again
    again=$(probe) || { stop; die "privileged probe still fails with the shim: ${again%%$'\n'*}"; }
    printf '%s without the shim: %s\n' "$(date -u +%FT%TZ)" "$err" >"$NEEDS_SHIM"
    log "privileged probe container ran with the shim ($(took "$t0"))"
  fi
  echo "DOCKER_HOST=$HOST" >"$STATE/env"
  echo "DOCKER_HOST=$HOST"
}

cleanup_mounts() {
  # dockerd leaves its default network namespace's bind mount (exec-root/netns/default) behind;
  # anything else still mounted under the state directory after our processes are gone is ours too.
  local m
  our_mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || log "cannot unmount $m"
  done
}

# alive PID: the process exists and is not a zombie (an unreaped dockerd still answers kill -0).
alive() {
  local st
  st=$(sed 's/.*) //' 2>/dev/null <"/proc/$1/stat") || return 1
  [ -n "$st" ] && [ "${st%% *}" != Z ]
}

any_alive() {
  local p
  for p in "$@"; do alive "$p" && return 0; done
  return 1
}

# containerd_runs: any containerd or containerd shim on the machine, ours or not, is running.
containerd_runs() {
  local p
  for p in $(pgrep -x containerd) $(pgrep -f '^[^ ]*containerd-shim'); do
    alive "$p" && return 0
  done
  return 1
}

# our_containers lists "runc-root id" for every container runc still knows under our exec-root.
our_containers() {
  local root
  for root in "$EXEC_ROOT"/runtime-*/*/; do
    [ -d "$root" ] || continue
    runc --root "${root%/}" list -q 2>/dev/null | sed "s#^#${root%/} #"
  done
}

stop() {
  local pid left
  if pid=$(our_pid); then
    log "stopping dockerd (pid $pid; it stops its containers and its containerd)"
    local t0
    t0=$(now)
    kill -TERM "$pid"
    for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.2; done
    if alive "$pid"; then
      log "dockerd (pid $pid) still running after 60s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "dockerd stopped in $(took "$t0")"
  fi
  # A dockerd that died without stopping its containers (killed, crashed) leaves them, their
  # shims and its containerd running: runc removes the containers, then the rest is signalled.
  local root id
  while read -r root id; do
    [ -n "$id" ] || continue
    log "removing container $id left running (runc --root $root delete --force)"
    runc --root "$root" delete --force "$id" || true
  done < <(our_containers)
  local pids=()
  mapfile -t pids < <(our_processes)
  if [ ${#pids[@]} -gt 0 ]; then
    log "still running under $STATE: pids ${pids[*]}; sending TERM"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    any_alive "${pids[@]}" && for _ in $(seq 1 50); do sleep 0.2; any_alive "${pids[@]}" || break; done
    if any_alive "${pids[@]}"; then
      kill -KILL "${pids[@]}" 2>/dev/null || true
      for _ in $(seq 1 25); do sleep 0.2; any_alive "${pids[@]}" || break; done
    fi
  fi
  cleanup_mounts
  rm -f "$SOCK" "$PIDFILE" "$STATE/env"
  if [ -f "$STATE/made-run-containerd" ]; then
    # Our containerd made /run/containerd for its shims' sockets. With no containerd or shim
    # left on the machine, its sockets are stale: remove them and the directory.
    if ! containerd_runs; then
      find /run/containerd/s -maxdepth 1 -type s -delete 2>/dev/null || true
      rmdir /run/containerd/s /run/containerd 2>/dev/null || true
    fi
    [ -d /run/containerd ] || rm -f "$STATE/made-run-containerd"
  fi
  left=$(our_processes | tr '\n' ' ')
  local mounts containers
  mounts=$(our_mounts | tr '\n' ' ')
  containers=$(our_containers | cut -d' ' -f2 | tr '\n' ' ')
  if [ -n "$left" ] || [ -n "$mounts" ] || [ -n "$containers" ]; then
    die "left behind: processes [$left] mounts [$mounts] containers [$containers]"
  fi
  log "stopped: no process of it runs, no container, nothing mounted under $STATE"
}

status() {
  local pid
  if pid=$(our_pid) && our_answers; then
    local rt
    rt=$(ours info --format '{{.DefaultRuntime}}')
    log "running: dockerd $(ours version --format '{{.Server.Version}}') pid $pid, default runtime $rt"
    echo "DOCKER_HOST=$HOST"
    return 0
  fi
  log "not running (state: $STATE)"
  local left
  left=$(our_processes | tr '\n' ' ')
  [ -z "$left" ] || log "but these processes of it are running: $left"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
