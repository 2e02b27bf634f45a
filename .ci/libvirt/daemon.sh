#!/usr/bin/env bash
# Start or stop a scratch, monolithic libvirtd (Debian 12: libvirt 9.0.0) for
# the interop tests.  No systemd is needed.
#
#   VH_LIBVIRT_DIR=/tmp/vh-libvirt .ci/libvirt/daemon.sh start
#   VH_LIBVIRT_DIR=/tmp/vh-libvirt .ci/libvirt/daemon.sh stop
#   VH_LIBVIRT_DIR=/tmp/vh-libvirt .ci/libvirt/daemon.sh status
#
# The daemon runs in its own mount and network namespaces (unshare(1)).  In
# the mount namespace these scratch directories are bind-mounted over the
# fixed, build-time paths libvirt uses, so the host's files are never touched:
#
#   $VH_LIBVIRT_DIR/etc    -> /etc/libvirt        (libvirtd.conf, qemu.conf,
#                                                  hooks/ = THE hook dir)
#   $VH_LIBVIRT_DIR/run    -> /run/libvirt        (sockets, runtime state)
#   $VH_LIBVIRT_DIR/lib    -> /var/lib/libvirt
#   $VH_LIBVIRT_DIR/cache  -> /var/cache/libvirt
#   $VH_LIBVIRT_DIR/log    -> /var/log/libvirt    (qemu domain logs)
#   $VH_LIBVIRT_DIR/virt-hooks -> /etc/virt-hooks    (virt-hooks.toml for hooks
#                                                  run by this daemon)
#   $VH_LIBVIRT_DIR/audit  -> /var/log/virt-hooks (virt-hook's default audit
#                                                  log, audit.jsonl)
#   $VH_LIBVIRT_DIR/journal -> /run/systemd/journal (empty: hooks log to the
#                             journal only while a test binds a datagram
#                             socket at $VH_LIBVIRT_DIR/journal/socket)
#   $VH_LIBVIRT_DIR/passwd -> /etc/passwd, $VH_LIBVIRT_DIR/group -> /etc/group
#                             (host's, plus user/group libvirt-qemu)
#
# So the hook directory the daemon sees is $VH_LIBVIRT_DIR/etc/hooks
# (libvirt only ever looks in SYSCONFDIR/libvirt/hooks = /etc/libvirt/hooks;
# there is no option or environment variable to move it).  Hook scripts run
# inside the namespaces; /tmp and everything else is the host's.
#
# The network namespace starts with only `lo`, so bridges and dnsmasq made by
# libvirt's network driver never appear on the host.
#
# After `start`, $VH_LIBVIRT_DIR/env holds (shell syntax):
#   VH_URI         connection URI for `virsh -c`
#   VH_HOOKS_DIR   the hook directory as seen from the host
#   VH_PIDFILE     libvirtd's pid file
#   VH_LOG         libvirtd's log (util.hook at debug level)
#   VH_QEMU        the emulator for <emulator> (from setup.sh), if known
#   VH_AUDIT_DIR   the hooks' /var/log/virt-hooks as seen from the host
#   VH_JOURNAL_SOCKET  where a test may bind the hooks' journal socket
#
# Exit codes: 0 ok; 1 failure; 2 usage; 77 a prerequisite is missing (run
# setup.sh first) or namespaces cannot be made here.
set -euo pipefail

S="${VH_LIBVIRT_DIR:?set VH_LIBVIRT_DIR to a scratch directory}"
START_TIMEOUT="${VH_LIBVIRT_START_TIMEOUT:-30}"   # seconds
STOP_TIMEOUT="${VH_LIBVIRT_STOP_TIMEOUT:-30}"     # seconds

log() { printf 'daemon.sh: %s\n' "$*" >&2; }
skip() { log "SKIP: $*"; exit 77; }

PIDFILE="$S/libvirtd.pid"
SOCK="$S/run/libvirt-sock"
URI="qemu+unix:///system?socket=$SOCK"
# Mount points on the host; created (empty) when missing, removed again on
# stop if we created them and they are still empty.
MOUNTS=(/etc/libvirt:etc /run/libvirt:run /var/lib/libvirt:lib
        /var/cache/libvirt:cache /var/log/libvirt:log /etc/virt-hooks:virt-hooks
        /var/log/virt-hooks:audit /run/systemd/journal:journal)

daemon_pid() {
    local pid
    [[ -s "$PIDFILE" ]] || return 1
    pid="$(cat "$PIDFILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == */libvirtd ]] || return 1
    printf '%s\n' "$pid"
}

write_config() {
    mkdir -p "$S"/{etc,run,lib,cache,log,virt-hooks,audit,journal} "$S/etc/hooks"
    # Client-side files the host has (harmless if absent).
    for f in libvirt.conf libvirt-admin.conf; do
        if [[ -e "/etc/libvirt/$f" && ! -e "$S/etc/$f" ]]; then cp "/etc/libvirt/$f" "$S/etc/$f"; fi
    done
    # libvirt 9.0's qemu driver resolves its built-in default user and group
    # (Debian: libvirt-qemu:libvirt-qemu) BEFORE reading qemu.conf, and fails
    # to initialise if they do not exist.  libvirt-daemon-system would create
    # them; instead the namespace gets its own /etc/passwd and /etc/group with
    # them added (the host's files are not changed).
    cp /etc/passwd "$S/passwd"
    cp /etc/group "$S/group"
    getent passwd libvirt-qemu >/dev/null \
        || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu (virt-hooks CI):/var/lib/libvirt:/usr/sbin/nologin' >>"$S/passwd"
    getent group libvirt-qemu >/dev/null \
        || echo 'libvirt-qemu:x:64055:' >>"$S/group"
    cat >"$S/etc/libvirtd.conf" <<EOF
# scratch libvirtd.conf written by .ci/libvirt/daemon.sh
unix_sock_dir = "/run/libvirt"
unix_sock_ro_perms = "0777"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_filters = "1:util.hook 1:util.command 3:*"
log_outputs = "1:file:$S/libvirtd.log"
EOF
    cat >"$S/etc/qemu.conf" <<'EOF'
# scratch qemu.conf written by .ci/libvirt/daemon.sh
# Debian's default qemu user (libvirt-qemu) exists only with
# libvirt-daemon-system; run qemu as root instead.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
# No AppArmor/SELinux confinement of qemu.
security_driver = "none"
# No per-domain /dev mount namespace.
namespaces = []
# No cgroup placement (no systemd/machined here).
cgroup_controllers = []
# Write qemu's stdout/stderr to /var/log/libvirt/qemu/<name>.log directly,
# so no virtlogd is needed.
stdio_handler = "file"
EOF
}

start() {
    local pid
    if pid="$(daemon_pid)"; then
        log "already running (pid $pid)"
        return 0
    fi
    command -v libvirtd >/dev/null || skip "libvirtd not installed (run .ci/libvirt/setup.sh)"
    command -v virsh >/dev/null || skip "virsh not installed (run .ci/libvirt/setup.sh)"
    [[ $EUID -eq 0 ]] || skip "must run as root"
    unshare --mount --net --propagation private true 2>/dev/null \
        || skip "cannot create mount/network namespaces here (unshare failed)"

    write_config
    rm -f "$PIDFILE" "$SOCK"
    local m host
    for m in "${MOUNTS[@]}"; do
        host="${m%%:*}"
        if [[ ! -d "$host" ]]; then
            mkdir -p "$host"
            echo "$host" >>"$S/created-mountpoints"   # removed by stop
        fi
    done

    # Inside the new namespaces: bind the scratch dirs, bring lo up, then
    # exec libvirtd (same pid as the background job).
    local inner='set -e
        S="$1"
        mount --bind "$S/etc"   /etc/libvirt
        mount --bind "$S/run"   /run/libvirt
        mount --bind "$S/lib"   /var/lib/libvirt
        mount --bind "$S/cache" /var/cache/libvirt
        mount --bind "$S/log"   /var/log/libvirt
        mount --bind "$S/virt-hooks" /etc/virt-hooks
        mount --bind "$S/audit" /var/log/virt-hooks
        mount --bind "$S/journal" /run/systemd/journal
        mount --bind "$S/passwd" /etc/passwd
        mount --bind "$S/group"  /etc/group
        ip link set lo up 2>/dev/null || true
        exec libvirtd --config /etc/libvirt/libvirtd.conf --pid-file "$S/libvirtd.pid"'
    : >"$S/libvirtd.stderr"
    setsid unshare --mount --net --propagation private \
        bash -c "$inner" inner "$S" </dev/null >>"$S/libvirtd.stderr" 2>&1 &
    local job=$!

    local deadline=$((SECONDS + START_TIMEOUT))
    local myns jobns
    myns="$(readlink /proc/self/ns/mnt)"
    rm -f "$S/mntns"
    while :; do
        # Remember the daemon's mount namespace as soon as unshare made it,
        # so cleanup can find every process in it (even after a failed start).
        if [[ ! -s "$S/mntns" ]]; then
            jobns="$(readlink "/proc/$job/ns/mnt" 2>/dev/null || true)"
            [[ -n "$jobns" && "$jobns" != "$myns" ]] && echo "$jobns" >"$S/mntns"
        fi
        if ! kill -0 "$job" 2>/dev/null; then
            log "libvirtd exited during start-up; its stderr:"
            cat "$S/libvirtd.stderr" >&2 || true
            grep -E ' (error|warning) : ' "$S/libvirtd.log" 2>/dev/null | tail -n 20 >&2 || true
            cleanup
            return 1
        fi
        # (not `virsh version`: it fails while no qemu-system-* is on PATH)
        if [[ -S "$SOCK" ]] && virsh -q -c "$URI" list --all >/dev/null 2>&1; then
            break
        fi
        if ((SECONDS >= deadline)); then
            log "libvirtd did not answer within ${START_TIMEOUT}s; stopping it"
            kill -TERM "$job" 2>/dev/null || true
            sleep 1
            cat "$S/libvirtd.stderr" >&2 || true
            cleanup
            return 1
        fi
        sleep 0.2
    done
    pid="$(daemon_pid)" || { log "no pid file after start"; cleanup; return 1; }
    readlink "/proc/$pid/ns/mnt" >"$S/mntns"

    local qemu=""
    [[ -s "$S/emulator" ]] && qemu="$(cat "$S/emulator")"
    cat >"$S/env" <<EOF
VH_URI='$URI'
VH_HOOKS_DIR='$S/etc/hooks'
VH_PIDFILE='$PIDFILE'
VH_LOG='$S/libvirtd.log'
VH_QEMU='$qemu'
VH_AUDIT_DIR='$S/audit'
VH_JOURNAL_SOCKET='$S/journal/socket'
EOF
    log "libvirtd running, pid $pid, uri $URI"
}

# Processes (other than pid $1) that live in the daemon's mount namespace:
# qemu, dnsmasq, hook children left behind.
ns_members() {
    local ns p
    [[ -s "$S/mntns" ]] || return 0
    ns="$(cat "$S/mntns")"
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        [[ "$p" == "$$" ]] && continue
        [[ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" == "$ns" ]] || continue
        # zombies are already dead (their reaper is pid 1 here)
        [[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" == Z ]] && continue
        echo "$p"
    done
    return 0
}

stop() {
    local pid
    if pid="$(daemon_pid)"; then
        # libvirtd leaves running domains and networks alone when it exits:
        # destroy them first so their hooks run and nothing is left.
        local d
        for d in $(virsh -q -c "$URI" list --name 2>/dev/null); do
            timeout 20 virsh -q -c "$URI" destroy "$d" >/dev/null 2>&1 || true
        done
        for d in $(virsh -q -c "$URI" net-list --name 2>/dev/null); do
            timeout 20 virsh -q -c "$URI" net-destroy "$d" >/dev/null 2>&1 || true
        done
        kill -TERM "$pid"
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                log "libvirtd (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
        log "libvirtd (pid $pid) stopped"
    else
        log "libvirtd not running"
    fi
    cleanup
}

# The pid of a running libvirtd (any), if there is one.
other_libvirtd() {
    local p
    for p in /proc/[0-9]*; do
        [[ "$(readlink "$p/exe" 2>/dev/null)" == */libvirtd ]] && { echo "${p#/proc/}"; return 0; }
    done
    return 0
}

# Kill what is left in the daemon's namespace (qemu, dnsmasq, backgrounded
# hook children) and remove host mount points we created.
cleanup() {
    local left
    left="$(ns_members | tr '\n' ' ')"
    if [[ -n "${left// /}" ]]; then
        log "terminating leftover processes in the daemon's namespace: $left"
        kill -TERM $left 2>/dev/null || true
        sleep 1
        left="$(ns_members | tr '\n' ' ')"
        [[ -n "${left// /}" ]] && kill -KILL $left 2>/dev/null || true
    fi
    rm -f "$PIDFILE" "$S/mntns"
    # Another scratch daemon (another VH_LIBVIRT_DIR) may have bind mounts
    # on these mount points: removing them on the host would silently
    # detach those mounts in its namespace.  Keep them (and the list, so a
    # later stop removes them) while any libvirtd runs.
    local other
    other="$(other_libvirtd)"
    if [[ -n "$other" && -s "$S/created-mountpoints" ]]; then
        log "keeping the mount points: another libvirtd (pid $other) may use them"
        return 0
    fi
    if [[ -s "$S/created-mountpoints" ]]; then
        local host
        while read -r host; do rmdir "$host" 2>/dev/null || true; done <"$S/created-mountpoints"
        rm -f "$S/created-mountpoints"
    fi
}

status() {
    local pid
    if pid="$(daemon_pid)"; then echo "running $pid"; else echo "stopped"; return 3; fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: VH_LIBVIRT_DIR=DIR $0 start|stop|status" >&2; exit 2 ;;
esac
