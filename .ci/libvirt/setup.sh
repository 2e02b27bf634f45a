#!/usr/bin/env bash
# Install what the libvirt interop tests need (Debian 12 / bookworm, as root).
# Idempotent: a second run only checks.
#
#   VH_LIBVIRT_DIR=/tmp/vh-libvirt .ci/libvirt/setup.sh
#
# Installs with apt (--no-install-recommends), only what is missing:
#   libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base
#   iptables
# (bookworm has no libvirt-daemon-driver-network package: the network driver
# is in libvirt-daemon.  iptables is needed: libvirt 9.0 inserts its
# LIBVIRT_INP/... rules even for an isolated network with no IP.)
#
# QEMU: if qemu-system-x86_64 is already on PATH it is used.  Else, if
# qemu-system-x86 can be installed without removing anything, it is installed.
# Else (this machine: qemu-utils 10.0.2 from backports Breaks
# qemu-system-common << 8.0, so apt would REMOVE qemu-utils) the .debs of
# qemu-system-x86, qemu-system-common, qemu-system-data, seabios and ipxe-qemu
# are unpacked with dpkg-deb -x into $VH_LIBVIRT_DIR/qemu-root, and only the
# plain shared libraries qemu-system-x86 depends on are apt-installed.  QEMU
# finds its firmware and modules (accel-tcg is a module) relative to its own
# binary, so no wrapper or -L is needed.
#
# The emulator's path is written to $VH_LIBVIRT_DIR/emulator (use it as the
# domain's <emulator>); daemon.sh puts it in $VH_LIBVIRT_DIR/env as VH_QEMU.
#
# Exit codes: 0 ready; 77 something cannot be had here (reason printed);
# 1 unexpected failure.
set -euo pipefail

S="${VH_LIBVIRT_DIR:?set VH_LIBVIRT_DIR to a scratch directory}"
QROOT="$S/qemu-root"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'setup.sh: %s\n' "$*" >&2; }
skip() { log "SKIP: $*"; exit 77; }
t0=$SECONDS
phase() { log "[$((SECONDS - t0))s] $*"; }

[[ $EUID -eq 0 ]] || skip "must run as root (apt-get, namespaces, libvirtd)"
command -v apt-get >/dev/null || skip "no apt-get: not a Debian system"
mkdir -p "$S"

installed() { # pkg -> 0 if installed
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

phase "apt-get update"
apt-get update -qq >/dev/null 2>"$S/apt-update.err" \
    || { cat "$S/apt-update.err" >&2; skip "apt-get update failed (no package registry?)"; }

apt_install() { # pkgs...: install those not yet installed
    local want=() p
    for p in "$@"; do installed "$p" || want+=("$p"); done
    ((${#want[@]})) || return 0
    phase "apt-get install --no-install-recommends ${want[*]}"
    apt-get install -y -q --no-install-recommends "${want[@]}" >"$S/apt-install.log" 2>&1 || {
        tail -n 30 "$S/apt-install.log" >&2
        skip "apt-get install failed for: ${want[*]}"
    }
    if grep -q '^Removing ' "$S/apt-install.log"; then
        log "WARNING: apt removed packages:"; grep '^Removing ' "$S/apt-install.log" >&2
    fi
}

apt_install libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base iptables
command -v libvirtd >/dev/null || skip "libvirtd missing after install"
command -v virsh >/dev/null || skip "virsh missing after install"

# Can the emulator start a TCG machine?  (It should still be running after
# 2 s: timeout's 124.  No disk, so SeaBIOS just waits for a boot device.)
qemu_works() {
    local q="$1" rc=0
    "$q" --version >/dev/null 2>&1 || return 1
    timeout 2 "$q" -machine pc,accel=tcg -m 64 -display none -nodefaults \
        -no-user-config >"$S/qemu-probe.log" 2>&1 || rc=$?
    [[ $rc -eq 124 ]] || { cat "$S/qemu-probe.log" >&2; return 1; }
}

emu=""
if command -v qemu-system-x86_64 >/dev/null && qemu_works "$(command -v qemu-system-x86_64)"; then
    emu="$(command -v qemu-system-x86_64)"
    phase "using installed $emu"
elif [[ -x "$QROOT/usr/bin/qemu-system-x86_64" ]] && qemu_works "$QROOT/usr/bin/qemu-system-x86_64"; then
    emu="$QROOT/usr/bin/qemu-system-x86_64"
    phase "using previously unpacked $emu"
else
    sim="$(apt-get install -s --no-install-recommends qemu-system-x86 2>&1)" \
        || { echo "$sim" | tail -n 20 >&2; skip "qemu-system-x86 is not installable here"; }
    if ! grep -q '^Remv ' <<<"$sim"; then
        apt_install qemu-system-x86
        emu=/usr/bin/qemu-system-x86_64
    else
        phase "installing qemu-system-x86 would remove: $(grep '^Remv ' <<<"$sim" | cut -d' ' -f2 | tr '\n' ' ')-- unpacking it instead"
        # Runtime libraries of qemu-system-x86 (plain libs; safe to install).
        mapfile -t deps < <(apt-cache depends --no-recommends --no-suggests --no-conflicts \
            --no-breaks --no-replaces --no-enhances qemu-system-x86 \
            | awk '/Depends:/ {print $2}' | grep -v '^<' \
            | grep -vxE 'qemu-system-common|qemu-system-data|seabios|ipxe-qemu' | sort -u)
        apt_install "${deps[@]}"
        debs="$S/debs"
        rm -rf "$debs" "$QROOT"
        mkdir -p "$debs" "$QROOT"
        chmod 0777 "$debs"   # apt-get download runs as _apt
        phase "apt-get download qemu-system-x86 qemu-system-common qemu-system-data seabios ipxe-qemu"
        (cd "$debs" && apt-get download -q qemu-system-x86 qemu-system-common \
            qemu-system-data seabios ipxe-qemu) >"$S/apt-download.log" 2>&1 || {
            tail -n 20 "$S/apt-download.log" >&2
            skip "apt-get download of the qemu packages failed"
        }
        phase "dpkg-deb -x into $QROOT"
        for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$QROOT"; done
        emu="$QROOT/usr/bin/qemu-system-x86_64"
    fi
    qemu_works "$emu" || skip "$emu cannot start a TCG machine (see above)"
fi
echo "$emu" >"$S/emulator"

unshare --mount --net --propagation private true 2>/dev/null \
    || skip "cannot create mount+network namespaces (unshare), daemon.sh needs them"

phase "ready: libvirtd $(libvirtd --version | awk '{print $NF}'), $("$emu" --version | head -n 1)"
log "emulator: $emu (also in $S/emulator)"
