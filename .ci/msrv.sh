#!/usr/bin/env bash
# Builds the workspace with the minimum Rust version it declares
# (`rust-version` in the root Cargo.toml), as root:
#
#   .ci/msrv.sh                      # cache in /var/tmp/virt-hooks-msrv
#   VH_MSRV_DIR=/some/dir .ci/msrv.sh
#
# The only older toolchain this workplace can install is Debian's: rustup's
# downloads are not reachable. So the script debootstraps a minimal Debian
# (trixie, whose rustc and cargo are 1.85.1) into $VH_MSRV_DIR/root, installs
# Debian's `rustc` and `cargo` there, checks that this rustc is the declared
# rust-version, and runs, inside that root,
#
#   cargo build --workspace --all-targets --locked --offline
#
# on this checkout (bind-mounted read-only at /src; output in
# $VH_MSRV_DIR/target). The locked dependencies are first vendored into
# $VH_MSRV_DIR/vendor by the host's cargo, which reaches crates.io as the rest
# of CI does; cargo inside the root then never needs the network.
#
# Cache: an existing root (marked ready after a successful install) is reused,
# so only the first run pays for debootstrap and apt (about 1.3 GB); an
# interrupted one is removed and made again. The mounts live in a private
# mount namespace: they vanish when the build ends, whatever happens.
#
# Time: the whole run gets VH_MSRV_BUDGET seconds (default 900); a phase that
# would run past it is stopped and the script fails naming the phase.
#
# Exit codes: 0 the workspace builds at its declared rust-version; 1 it does
# not, or the toolchain is not the declared version, or the budget ran out;
# 77 something this needs cannot be had here (reason printed).
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${VH_MSRV_DIR:-/var/tmp/virt-hooks-msrv}"
SUITE="${VH_MSRV_SUITE:-trixie}"
MIRROR="${VH_MSRV_MIRROR:-http://deb.debian.org/debian}"
BUDGET="${VH_MSRV_BUDGET:-900}"
ROOT="$DIR/root"
READY="$ROOT/.virt-hooks-msrv-ready"
export DEBIAN_FRONTEND=noninteractive

exec 8>&2 # messages reach the caller even from a phase whose output goes to a log
log() { printf 'msrv.sh: %s\n' "$*" >&8; }
fail() { log "FAIL: $*"; exit 1; }
skip() { log "SKIP: $*"; exit 77; }
t0=$SECONDS
phase() { log "[$((SECONDS - t0))s] $*"; }

# Runs a program with what is left of the budget; names the phase if it runs
# out.
bounded() { # phase-name program args...
    local name="$1" left=$((BUDGET - (SECONDS - t0))) rc=0
    shift
    ((left > 0)) || fail "the budget of ${BUDGET}s ran out before: $name"
    timeout --kill-after=10 "$left" "$@" || rc=$?
    if ((rc == 124 || rc == 137)); then
        fail "$name did not finish within the budget of ${BUDGET}s (VH_MSRV_BUDGET)"
    fi
    return "$rc"
}

# Runs a command inside the root, in a private mount namespace with /proc and
# /dev; with `--build`, also the checkout (read-only), the vendored sources
# (read-only), the target directory and cargo's home. Clean environment.
# Within the budget (see bounded) when a phase name is given.
in_root() { # [--build] [--phase NAME] command...
    local build=0 run=()
    [[ $1 == --build ]] && { build=1; shift; }
    [[ $1 == --phase ]] && { run=(bounded "$2"); shift 2; }
    # shellcheck disable=SC2016 # the inner script expands its own arguments
    "${run[@]}" unshare --mount --propagation private --fork --kill-child /bin/sh -euc '
        root=$1 dir=$2 src=$3 build=$4
        shift 4
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        if [ "$build" = 1 ]; then
            mount --bind "$src" "$root/src"
            mount -o remount,bind,ro "$root/src"
            mount --bind "$dir/vendor" "$root/vendor"
            mount -o remount,bind,ro "$root/vendor"
            mount --bind "$dir/target" "$root/target"
            mount --bind "$dir/cargo-home" "$root/cargo-home"
        fi
        exec chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/bin:/bin \
            LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive CARGO_HOME=/cargo-home \
            CARGO_TARGET_DIR=/target CARGO_TERM_COLOR=never "$@"
    ' sh "$ROOT" "$DIR" "$SRC" "$build" "$@"
}

[[ $EUID -eq 0 ]] || skip "must run as root (debootstrap, chroot, mount namespaces)"
command -v apt-get >/dev/null || skip "no apt-get: not a Debian system"
command -v unshare >/dev/null || skip "no unshare (util-linux)"

declared="$(sed -n 's/^rust-version = "\([0-9.]*\)".*/\1/p' "$SRC/Cargo.toml" | head -n 1)"
[[ -n $declared ]] || fail "no rust-version = \"X.Y[.Z]\" line in $SRC/Cargo.toml"
log "declared rust-version: $declared; toolchain: Debian $SUITE's rustc; cache: $DIR"

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -w 60 9 || fail "another msrv.sh holds $DIR/.lock"

# 1. The Debian root with rustc and cargo.
if [[ ! -e $READY ]]; then
    if [[ -e $ROOT ]]; then
        phase "removing an unfinished root: $ROOT"
        rm -rf --one-file-system "$ROOT"
    fi
    if ! command -v debootstrap >/dev/null; then
        phase "apt-get install debootstrap"
        { bounded "apt-get update" apt-get update -qq &&
            bounded "apt-get install debootstrap" \
                apt-get install -y -q --no-install-recommends debootstrap; } \
            >"$DIR/apt-host.log" 2>&1 || {
            tail -n 20 "$DIR/apt-host.log" >&2
            skip "cannot install debootstrap (no Debian package registry?)"
        }
    fi
    phase "debootstrap --variant=minbase $SUITE (log: $DIR/debootstrap.log)"
    # In its own mount namespace, so that an interrupted run leaves no mounts.
    bounded "debootstrap" unshare --mount --propagation private --fork --kill-child \
        debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" \
        >"$DIR/debootstrap.log" 2>&1 || {
        tail -n 20 "$DIR/debootstrap.log" >&2
        skip "debootstrap of Debian $SUITE from $MIRROR failed"
    }
    cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
    phase "apt-get install rustc cargo in the root (log: $DIR/apt.log)"
    { in_root --phase "apt-get update in the root" apt-get update -qq &&
        in_root --phase "apt-get install rustc cargo in the root" \
            apt-get install -y -q --no-install-recommends rustc cargo; } \
        >"$DIR/apt.log" 2>&1 || {
        tail -n 20 "$DIR/apt.log" >&2
        skip "cannot install Debian $SUITE's rustc and cargo"
    }
    in_root apt-get clean
    mkdir -p "$ROOT/src" "$ROOT/vendor" "$ROOT/target" "$ROOT/cargo-home"
    in_root rustc --version >"$READY"
else
    phase "reusing $ROOT ($(cat "$READY"))"
fi

# 2. The toolchain must be the declared version: 1.85.1 for "1.85.1" or "1.85".
rustc_version="$(in_root rustc --version)"
cargo_version="$(in_root cargo --version)"
log "$rustc_version; $cargo_version"
have="$(awk '{print $2}' <<<"$rustc_version")"
if [[ $have != "$declared" && $have != "$declared".* ]]; then
    fail "Debian $SUITE's rustc is $have but the workspace declares rust-version $declared: \
this does not verify it. Declare $have (if the workspace builds with it) or pick \
a Debian suite whose rustc is $declared (VH_MSRV_SUITE; remove $DIR to switch)"
fi

# 3. The locked dependencies, vendored by the host's cargo.
phase "cargo vendor --locked (host cargo) into $DIR/vendor"
mkdir -p "$DIR/target" "$DIR/cargo-home"
(cd "$SRC" && bounded "cargo vendor" cargo vendor --locked --versioned-dirs --quiet \
    "$DIR/vendor" >/dev/null) || fail "cargo vendor --locked failed (is Cargo.lock current?)"
cat >"$DIR/cargo-home/config.toml" <<'EOF'
# Written by .ci/msrv.sh: crates.io's sources come from the vendored copy.
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "/vendor"
EOF

# 4. The build.
phase "cargo build --workspace --all-targets --locked --offline with rustc $have"
if ! in_root --build --phase "cargo build" /bin/sh -c \
    'cd /src && exec cargo build --workspace --all-targets --locked --offline'; then
    fail "the workspace does not build with rustc $have, its declared rust-version \
$declared (errors above). Keep the code within Rust $declared (no let chains: they \
need 1.88) or declare and verify a newer version"
fi
phase "done: the workspace builds with rustc $have (rust-version $declared)"
