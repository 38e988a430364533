# deps.sh - install what guildtab needs on Debian 12, only what is missing.
# Sourced by demo.sh and test.sh; needs root (or sudo) when something is
# missing.

GT_PACKAGES="gcc g++ pkg-config meson ninja-build libxxhash-dev \
libcriterion-dev liblmdb-dev"

# gt_ensure_deps [EXTRA-PACKAGES...]
gt_ensure_deps() {
    missing=""
    for p in $GT_PACKAGES "$@"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
                grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    [ -z "$missing" ] && return 0
    echo "guildtab: installing:$missing" >&2
    sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || {
            echo "guildtab: need root to install:$missing" >&2
            return 1
        }
        sudo_cmd="sudo"
    fi
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $sudo_cmd env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# gt_build DIR [meson options...]: configure (once) and build, quietly;
# a failing step prints its output (the compiler's errors) to stderr.
gt_build() {
    dir=$1
    shift
    log=$(mktemp)
    if [ ! -f "$dir/build.ninja" ]; then
        if ! meson setup "$dir" "$@" >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            return 1
        fi
    fi
    if ! ninja -C "$dir" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        return 1
    fi
    rm -f "$log"
}
