# Sourced by the image scripts (node-image.sh, workload-images.sh, istiod-image.sh): logging and
# the cached build step they share. The sourcing script sets PROG (its name in messages) and
# CACHE (where artifacts and logs live) first.

# The image builds run at low priority (nice 19, idle I/O class), so a machine building them stays
# usable. MESHCONFORM_BUILD_NICE=N sets the niceness; 0 builds at normal priority (.ci/run: there the
# images are the live phases' critical path, built before make test starts).
LOWPRI=(nice -n "${MESHCONFORM_BUILD_NICE:-19}" ionice -c3)
[ "${MESHCONFORM_BUILD_NICE:-19}" != 0 ] || LOWPRI=()

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

# step NAME KEY FUNCTION: runs FUNCTION OUT (OUT empty, fresh) unless CACHE/artifacts/NAME/KEY is
# done; sets $OUT to the artifact's dir either way, and appends NAME/KEY to KEYS. A failure
# stops the script, unless STEP_CONTINUE=1: then it sets FAILED=1 (the log's tail on stderr) and
# returns 0, so that independent steps still build. step must not run as a condition, where
# set -e would not hold inside FUNCTION.
KEYS=()
step() {
  local name=$1 key=$2 fn=$3 dir="$CACHE/artifacts/$1/$2" t
  local logf="$CACHE/logs/$name-$key.log"
  KEYS+=("$name/$key")
  OUT="$dir" FAILED=
  if [ -f "$dir/.done" ]; then
    log "$name: cached ($key)"
    return
  fi
  rm -rf "$dir" "$dir.tmp" && mkdir -p "$dir.tmp" "$CACHE/logs"
  log "$name: building ($key), log $logf"
  t=$(now)
  # In the background, not as an if condition, so that set -e holds inside FUNCTION.
  ( "$fn" "$dir.tmp" ) >"$logf" 2>&1 &
  if ! wait $!; then
    tail -n 30 "$logf" >&2
    if [ "${STEP_CONTINUE:-}" = 1 ]; then
      log "error: $name failed after $(took "$t") (log: $logf)"
      FAILED=1
      return 0
    fi
    die "$name failed after $(took "$t") (log: $logf)"
  fi
  mv "$dir.tmp" "$dir" && touch "$dir/.done"
  log "$name: built in $(took "$t")"
}

# minbase OUT PACKAGES: a debootstrap'ed Debian minbase root (SUITE, default bookworm; DEBIAN_MIRROR)
# with PACKAGES (comma-separated) in OUT/rootfs, without docs, manuals and package lists.
minbase() {
  local r=$1/rootfs
  command -v debootstrap >/dev/null || "${LOWPRI[@]}" apt-get install -y -q debootstrap
  "${LOWPRI[@]}" debootstrap --variant=minbase --include="$2" "${SUITE:-bookworm}" "$r" \
    "${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/var/lib/apt/lists/* \
    "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/log/*.log
}
