#!/usr/bin/env bash
# The packages, as a distribution would use them: build the Debian packages
# (cargo-deb), check the package metadata of both formats against the release
# build, install the packages with dpkg, test the installed files (and run
# the real-libvirtd suite against them), remove and purge them, and check
# that nothing of ours is left but what policy keeps.
#
#   bash .ci/packages.sh        # as root; .ci/run calls it after the tests
#
# Isolation (VH_PACKAGES_ISOLATE=1, the default): everything from the first
# dpkg call on runs in a private mount namespace with overlays over /usr, /etc
# and /var. dpkg really installs and removes the packages there, but nothing
# of it outlives this script and no other process on the machine (a parallel
# `cargo test`, which must never see installed files) sees it.
# VH_PACKAGES_ISOLATE=0 installs on the machine itself, and purges the
# packages again even when a check fails.
#
# VH_LIBVIRT_DIR (made by .ci/libvirt/setup.sh) runs tests/libvirt against
# /usr/bin/virt-hook and the installed plugins; under CI=true its absence is
# a failure. Exit codes: 0 all good; 1 a check failed; 77 not root.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

t0=$SECONDS
# What the checks print, for a failure's post-mortem (target/debian is made
# anew by every run).
logs=target/debian/logs
step() { printf '\n::: packages [%ss]: %s\n' "$((SECONDS - t0))" "$*"; }
fail() { printf 'packages.sh: FAILED: %s\n' "$*" >&2; exit 1; }
# The packages built by this run: target/debian/*.deb.
debs() { find target/debian -maxdepth 1 -name '*.deb' | sort; }
names() { local d; for d in $(debs); do dpkg-deb -f "$d" Package; done; }
# Every path the packages hold (directories too), without the leading dot.
contents() {
    local d
    for d in $(debs); do dpkg-deb -c "$d" | awk '{print substr($6, 2)}' | sed 's:/$::; /^$/d'; done | sort -u
}

# The checks on the installed system; runs in the namespace when isolated.
installed_phase() {
    local pkgs=() p path
    mapfile -t pkgs < <(names)
    for p in "${pkgs[@]}"; do
        if dpkg-query -W "$p" >/dev/null 2>&1; then
            fail "$p is already known to dpkg: purge it first (dpkg -P $p)"
        fi
    done
    # What exists before: afterwards, nothing else of the packages' may.
    local before; before="$(mktemp)"
    contents | while read -r path; do
        if [[ -e "$path" || -L "$path" ]]; then echo "$path"; fi
    done >"$before"

    step "tools for the checks (man-db, logrotate)"
    local want=()
    command -v man >/dev/null || want+=(man-db)
    command -v logrotate >/dev/null || want+=(logrotate)
    if ((${#want[@]})); then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${want[@]}" \
            >"$logs"/apt.log 2>&1 || { tail -n 20 "$logs"/apt.log >&2; fail "apt-get install ${want[*]}"; }
    fi

    step "a driver needs a host of its plugin interface"
    local qemu_deb; qemu_deb="$(debs | grep '/virt-hooks-driver-qemu_')"
    if dpkg -i "$qemu_deb" >"$logs"/dpkg.log 2>&1; then
        fail "the qemu driver installed without a host"
    fi
    grep -q 'depends on virt-hooks-plugin-abi-1' "$logs"/dpkg.log \
        || { cat "$logs"/dpkg.log >&2; fail "dpkg did not name virt-hooks-plugin-abi-1"; }
    dpkg -P virt-hooks-driver-qemu >/dev/null

    step "dpkg -i ${pkgs[*]}"
    local files=()
    mapfile -t files < <(debs)
    dpkg -i "${files[@]}"
    for p in "${pkgs[@]}"; do
        [[ "$(dpkg-query -W -f='${Status}' "$p")" == "install ok installed" ]] || fail "$p is not installed"
        for licence in LICENSE-MIT LICENSE-APACHE copyright; do
            [[ -s "/usr/share/doc/$p/$licence" ]] || fail "/usr/share/doc/$p/$licence is missing"
        done
    done

    step "smoke test of the installed /usr/bin/virt-hook"
    local out
    [[ "$(command -v virt-hook)" == /usr/bin/virt-hook ]] || fail "virt-hook on PATH is $(command -v virt-hook)"
    out="$(cd / && virt-hook --version)"
    echo "$out"
    grep -qx 'plugin directory: /usr/lib/virt-hooks/plugins' <<<"$out" || fail "--version: no plugin directory"
    out="$(cd / && virt-hook drivers)" || fail "virt-hook drivers failed: $out"
    for driver in daemon qemu lxc network libxl bhyve; do
        grep -q "^$driver .* (/usr/lib/virt-hooks/plugins/libvirt_hooks_driver_$driver.so)\$" <<<"$out" \
            || { echo "$out" >&2; fail "drivers: $driver not loaded from the plugin directory"; }
    done
    out="$(virt-hook config)" || fail "virt-hook config with the shipped configuration file"
    grep -q '^system_plugin_dir = /usr/lib/virt-hooks/plugins  (build)$' <<<"$out" || fail "config: $out"
    if grep -v '(default)$' <<<"$out" | grep -v '(build)$'; then
        fail "the shipped /etc/virt-hooks/virt-hooks.toml changes a default"
    fi
    for page in virt-hook virt-hook-run virt-hook-completions; do
        man -w "$page" >/dev/null || fail "man -w $page"
    done
    man -w 5 virt-hooks.toml >/dev/null || fail "man -w 5 virt-hooks.toml"
    MANWIDTH=80 MANPAGER=cat man virt-hook 2>/dev/null | grep -q '^EXIT STATUS' || fail "man virt-hook: no EXIT STATUS"
    MANWIDTH=80 MANPAGER=cat man 5 virt-hooks.toml 2>/dev/null | grep -q 'filter_stdout_cap' || fail "man 5 virt-hooks.toml"
    bash -c 'source /usr/share/bash-completion/completions/virt-hook && complete -p virt-hook' >/dev/null \
        || fail "the bash completion does not load"
    for f in /usr/share/zsh/vendor-completions/_virt-hook /usr/share/fish/vendor_completions.d/virt-hook.fish; do
        [[ -s "$f" ]] || fail "$f is missing"
    done
    out="$(dpkg-query -W -f='${Conffiles}\n' virt-hooks)"
    for f in /etc/virt-hooks/virt-hooks.toml /etc/logrotate.d/virt-hooks; do
        grep -q " $f " <<<"$out" || fail "$f is not a conffile: $out"
    done
    [[ "$(stat -c '%a %U' /var/log/virt-hooks)" == "750 root" ]] || fail "/var/log/virt-hooks: $(stat -c '%a %U' /var/log/virt-hooks)"
    logrotate -d /etc/logrotate.d/virt-hooks >"$logs"/logrotate.log 2>&1 \
        || { cat "$logs"/logrotate.log >&2; fail "logrotate rejects /etc/logrotate.d/virt-hooks"; }

    step "the real-libvirtd suite against the installed packages"
    if [[ -n "${VH_LIBVIRT_DIR:-}" ]]; then
        VH_LIBVIRT_VIRT_HOOK=/usr/bin/virt-hook cargo test --locked -q -p virt-hooks-e2e --test libvirt \
            -- --nocapture 2>&1 | tee "$logs"/libvirt.log
        grep -q '^testing the installed /usr/bin/virt-hook$' "$logs"/libvirt.log \
            || fail "the libvirt suite did not test the installed virt-hook"
        grep -q 'test result: ok. 1 passed' "$logs"/libvirt.log || fail "the libvirt suite"
    elif [[ "${CI:-}" == true ]]; then
        fail "VH_LIBVIRT_DIR is not set: run .ci/libvirt/setup.sh first (as .ci/run does)"
    else
        echo "SKIPPED: VH_LIBVIRT_DIR is not set (.ci/libvirt/setup.sh)"
    fi

    step "remove: the conffiles and the history stay"
    # A history, an edited configuration, and a hook that links to virt-hook.
    echo '{"test":"history"}' >>/var/log/virt-hooks/audit.jsonl
    echo '{"test":"rotated"}' >/var/log/virt-hooks/audit.jsonl.1
    echo '# edited by packages.sh' >>/etc/virt-hooks/virt-hooks.toml
    local made_hooks=""
    if [[ ! -e /etc/libvirt/hooks/qemu && ! -L /etc/libvirt/hooks/qemu ]]; then
        [[ -d /etc/libvirt/hooks ]] || { mkdir -p /etc/libvirt/hooks; made_hooks=dir; }
        ln -s /usr/bin/virt-hook /etc/libvirt/hooks/qemu
        made_hooks="link $made_hooks"
    fi
    dpkg -r "${pkgs[@]}" 2>&1 | tee "$logs"/remove.log
    if [[ -n "$made_hooks" ]]; then
        grep -q 'warning: /etc/libvirt/hooks/qemu is a link to virt-hook' "$logs"/remove.log \
            || fail "removing virt-hooks did not warn about the hook linked to it"
        rm /etc/libvirt/hooks/qemu
        if [[ "$made_hooks" == *dir* ]]; then rmdir /etc/libvirt/hooks /etc/libvirt 2>/dev/null || true; fi
    fi
    # Only the host has conffiles; dpkg forgets the drivers at once.
    for p in "${pkgs[@]}"; do
        local status expected="not-installed"
        status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || echo not-installed)"
        [[ "$p" == virt-hooks ]] && expected="deinstall ok config-files"
        [[ "$status" == *"$expected" ]] || fail "$p: $status after remove (expected $expected)"
    done
    [[ ! -e /usr/bin/virt-hook && ! -e /usr/lib/virt-hooks ]] || fail "the binary or the plugins are left after remove"
    grep -q 'edited by packages.sh' /etc/virt-hooks/virt-hooks.toml || fail "the edited conffile is gone after remove"
    [[ -f /etc/logrotate.d/virt-hooks ]] || fail "/etc/logrotate.d/virt-hooks is gone after remove"
    grep -q history /var/log/virt-hooks/audit.jsonl || fail "the history is gone after remove"

    step "purge: nothing of ours is left"
    dpkg -P virt-hooks
    step "purge: checking"
    for p in "${pkgs[@]}"; do
        if dpkg-query -W "$p" >/dev/null 2>&1; then fail "dpkg still knows $p after purge"; fi
    done
    local left=()
    for path in /etc/virt-hooks /etc/logrotate.d/virt-hooks /var/log/virt-hooks /usr/lib/virt-hooks \
        /usr/bin/virt-hook /usr/share/doc/virt-hooks; do
        if [[ -e "$path" || -L "$path" ]]; then left+=("$path"); fi
    done
    contents | while read -r path; do
        if [[ -e "$path" || -L "$path" ]] && ! grep -qxF "$path" "$before"; then echo "$path"; fi
    done >"$logs"/left
    mapfile -t -O "${#left[@]}" left <"$logs"/left
    ((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
    rm -f "$before"
    echo "nothing left"
}

if [[ "${1:-}" == --installed-phase ]]; then
    # Inside the namespace (see below): the overlays, then the checks.
    ovl="$2"
    for d in /usr /etc /var; do
        mkdir -p "$ovl$d/upper" "$ovl$d/work"
        mount -t overlay overlay -o "lowerdir=$d,upperdir=$ovl$d/upper,workdir=$ovl$d/work" "$d"
    done
    t0=$((SECONDS - $3))
    installed_phase
    exit 0
fi

[[ $EUID -eq 0 ]] || { echo "packages.sh: SKIP: must run as root (dpkg)" >&2; exit 77; }

step "tools"
if ! command -v cargo-deb >/dev/null 2>&1; then
    cargo install --locked cargo-deb@3.8.0
fi
cargo deb --version
# cargo-deb's `depends = "$auto"` runs dpkg-shlibdeps.
command -v dpkg-shlibdeps >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dpkg-dev >/dev/null

step "release build"
cargo build --release --locked --workspace

step "package metadata against the release build (deb and rpm file lists)"
VIRT_HOOKS_CHECK_RELEASE=1 cargo test --locked -q -p virt-hooks-e2e --test packages

step "Debian packages"
rm -rf target/debian
mkdir -p "$logs"
for manifest in crates/cli/Cargo.toml plugins/*/Cargo.toml; do
    cargo deb --no-build --locked --manifest-path "$manifest" --output target/debian/ >/dev/null
done
for d in $(debs); do
    printf '%s\n' "$d"
    dpkg-deb -f "$d" Package Version Depends Provides | sed 's/^/    /'
done

if [[ "${VH_PACKAGES_ISOLATE:-1}" == 1 ]]; then
    ovl="$(mktemp -d /tmp/vh-packages.XXXXXX)"
    rc=0
    unshare --mount --propagation private bash "$0" --installed-phase "$ovl" "$((SECONDS - t0))" || rc=$?
    rm -rf "$ovl"
    ((rc == 0)) || exit "$rc"
else
    # On the machine itself: purge whatever this run installed, even on failure.
    purge_all() { local q; for q in $(names); do dpkg -P "$q" >/dev/null 2>&1 || true; done; }
    trap purge_all EXIT
    installed_phase
fi
step "done in $((SECONDS - t0)) s"
