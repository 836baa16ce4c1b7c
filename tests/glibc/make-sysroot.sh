#!/usr/bin/env bash
# make-sysroot.sh SUITE DESTDIR
#
# Builds a minimal amd64 glibc sysroot for a Debian suite (e.g. bullseye ->
# glibc 2.31, trixie -> glibc 2.41) so that test programs can be compiled with
# the host gcc (`gcc --sysroot=DESTDIR`) and run against that glibc
# (`-Wl,--dynamic-linker=$LOADER -Wl,-rpath=$LIBDIR`), with matching debug
# info from libc6-dbg for heapinspect / gdb.
#
# Packages: libc6 libc6-dev libc6-dbg linux-libc-dev libgcc-s1 (the last one
# because the host's libgcc_s.so.1 needs a newer glibc than 2.31, and glibc
# dlopens libgcc_s for pthread_exit/pthread_cancel unwinding).
#
# experimental is a partial suite: it holds only the packages that have a
# version newer than unstable's (glibc, but not libgcc-s1), and apt never
# picks its packages by itself (its Release file says NotAutomatic).  Its
# sysroot is experimental layered on sid: both suites in the private
# sources list, the glibc packages pinned to experimental, the others from
# sid; the script checks that the glibc packages did come from experimental.
#
# The .debs are fetched with apt using a private sources list and private
# state/cache dirs (the host's apt state is never touched). The mirror is the
# first Debian "main" URI of the host's apt sources; override with
# HI_SYSROOT_MIRROR=URI.
#
# Environment:
#   HI_SYSROOT_CACHE     download/apt-state cache root (default: a
#                        .hi-sysroot-cache dir next to DESTDIR); the cache for
#                        SUITE is $HI_SYSROOT_CACHE/SUITE.
#   HI_SYSROOT_MIRROR    Debian mirror URI to use instead of the host's.
#   HI_SYSROOT_KEYRING   keyring file for Signed-By instead of the automatic one.
#   HI_SYSROOT_MAX_AGE   max age in seconds of the cached package lists before
#                        `apt-get update` is run again (default 86400).
#   HI_SYSROOT_REFRESH=1 force `apt-get update`.
#   HI_SYSROOT_INSECURE=1 last resort: allow an unsigned/unverifiable Release
#                        file (debs are still checked against its hashes).
#
# Result: DESTDIR/sysroot.env (KEY=value lines, no quoting, paths absolute):
#   SUITE, GLIBC_VERSION, LIBC6_VERSION, LOADER, LIBDIR, LIBC, DEBUGDIR,
#   LIBC_BUILD_ID, LIBC_DEBUG (the .debug file of libc.so.6), DWZ_FILE (the
#   dwz alt file it refers to, empty if none).
# DESTDIR/.complete records the package versions; a rerun with the same
# versions does nothing.
set -euo pipefail

PROG=${0##*/}
die() { echo "$PROG: error: $*" >&2; exit 1; }
note() { echo "$PROG: $*" >&2; }

[[ $# -eq 2 ]] || { echo "usage: $PROG SUITE DESTDIR   (e.g. $PROG bullseye /tmp/sysroots/bullseye)" >&2; exit 2; }
SUITE=$1
DESTDIR_ARG=$2
[[ $SUITE =~ ^[a-z][a-z0-9-]*$ ]] || die "bad suite name '$SUITE'"
[[ $DESTDIR_ARG != *[[:space:]]* ]] || die "DESTDIR must not contain whitespace: '$DESTDIR_ARG'"

for tool in apt-get apt-cache dpkg-deb tar readelf realpath sha256sum find; do
    command -v "$tool" >/dev/null 2>&1 || die "required tool '$tool' not found"
done

mkdir -p "$DESTDIR_ARG" || die "cannot create DESTDIR '$DESTDIR_ARG'"
DESTDIR=$(realpath "$DESTDIR_ARG")
[[ $DESTDIR != / ]] || die "DESTDIR must not be /"
# DESTDIR is replaced as a whole: refuse to wipe a non-empty directory that is
# not a sysroot made by this script.
if [[ ! -f $DESTDIR/.complete && ! -f $DESTDIR/sysroot.env ]] && [[ -n $(ls -A "$DESTDIR") ]]; then
    die "DESTDIR '$DESTDIR' is not empty and is not a sysroot made by $PROG; refusing to replace it"
fi

CACHE_ROOT=${HI_SYSROOT_CACHE:-$(dirname "$DESTDIR")/.hi-sysroot-cache}
CACHE=$CACHE_ROOT/$SUITE
mkdir -p "$CACHE" || die "cannot create cache dir '$CACHE'"
CACHE=$(realpath "$CACHE")
case "$CACHE/" in "$DESTDIR"/*) die "cache dir '$CACHE' must not be inside DESTDIR" ;; esac

# Serialise concurrent runs for the same suite/cache (e.g. parallel builds).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.lock"
    flock 9 || die "cannot lock $CACHE/.lock"
fi

PACKAGES=(libc6 libc6-dev libc6-dbg linux-libc-dev libgcc-s1)
GLIBC_PACKAGES=(libc6 libc6-dev libc6-dbg)
# A partial suite and the full suite it is layered on.
case $SUITE in
    experimental) BASE_SUITE=sid ;;
    *) BASE_SUITE= ;;
esac
SUITES="$SUITE${BASE_SUITE:+ $BASE_SUITE}"

# ---------------------------------------------------------------- mirror ----
# First URI of a "deb" source with component main that is not a security /
# updates / backports archive, from the host's deb822 .sources files, then the
# one-line sources.list format.
find_mirror() {
    local f
    shopt -s nullglob
    for f in /etc/apt/sources.list.d/*.sources; do
        awk '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && enabled !~ /^[Nn]o/) {
                    n = split(uris, u, " ")
                    for (i = 1; i <= n; i++)
                        if (u[i] !~ /security/) { print u[i]; found = 1; exit }
                }
                types = ""; uris = ""; comps = ""; enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[A-Za-z-]+:/ {
                key = tolower($1); sub(/:$/, "", key)
                val = $0; sub(/^[^:]*:[ \t]*/, "", val)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "components") comps = val
                else if (key == "enabled") enabled = val
            }
            END { if (!found) flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        awk '
            /^[ \t]*deb[ \t]/ {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
                uri = $i; comps = ""
                for (j = i + 2; j <= NF; j++) comps = comps " " $j
                if (uri !~ /security/ && comps ~ / main( |$)/) { print uri; exit }
            }
        ' "$f"
    done
    shopt -u nullglob
}

if [[ -n ${HI_SYSROOT_MIRROR:-} ]]; then
    MIRROR=$HI_SYSROOT_MIRROR
else
    MIRROR=$(find_mirror | head -n1)
    [[ -n $MIRROR ]] || die "no Debian 'main' URI found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; set HI_SYSROOT_MIRROR"
fi
MIRROR=${MIRROR%/}

# --------------------------------------------------------------- keyring ----
# The bookworm debian-archive-keyring.gpg (2023.3+deb12u1 or later) holds the
# bullseye, bookworm and trixie keys. If an older one lacks the suite's keys,
# the per-release keyrings shipped by debian-archive-keyring are appended to
# a private keyring (binary OpenPGP keyrings may be concatenated).
KEYRING=${HI_SYSROOT_KEYRING:-}
if [[ -z $KEYRING ]]; then
    parts=()
    [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] && parts+=(/usr/share/keyrings/debian-archive-keyring.gpg)
    for k in /usr/share/keyrings/debian-archive-"$SUITE"-*.gpg; do
        [[ -f $k ]] && parts+=("$k")
    done
    if [[ ${#parts[@]} -gt 0 ]]; then
        KEYRING=$CACHE/archive-keyring.gpg
        cat "${parts[@]}" >"$KEYRING.tmp"
        mv -f "$KEYRING.tmp" "$KEYRING"
    fi
fi
[[ -z $KEYRING || -r $KEYRING ]] || die "keyring '$KEYRING' not readable"

# ------------------------------------------------------------ apt setup ----
mkdir -p "$CACHE/etc/preferences.d" "$CACHE/etc/sources.list.d" \
         "$CACHE/state/lists/partial" "$CACHE/apt-cache/archives/partial" "$CACHE/debs"
: >"$CACHE/state/status"
{
    echo "Types: deb"
    echo "URIs: $MIRROR"
    echo "Suites: $SUITES"
    echo "Components: main"
    echo "Architectures: amd64"
    [[ -n $KEYRING ]] && echo "Signed-By: $KEYRING"
    [[ ${HI_SYSROOT_INSECURE:-0} == 1 ]] && echo "Trusted: yes"
} >"$CACHE/etc/sources.list.d/$SUITE.sources"
rm -f "$CACHE/etc/preferences.d/glibc.pref"
if [[ -n $BASE_SUITE ]]; then
    # Above sid's 500, so that apt prefers experimental's glibc.
    printf 'Package: %s\nPin: release a=%s\nPin-Priority: 990\n' \
        "${GLIBC_PACKAGES[*]}" "$SUITE" >"$CACHE/etc/preferences.d/glibc.pref"
fi

APT_OPTS=(
    -o "Dir::Etc::sourcelist=$CACHE/etc/sources.list"
    -o "Dir::Etc::sourceparts=$CACHE/etc/sources.list.d"
    -o "Dir::Etc::preferences=$CACHE/etc/preferences"
    -o "Dir::Etc::preferencesparts=$CACHE/etc/preferences.d"
    -o "Dir::State=$CACHE/state"
    -o "Dir::State::Lists=$CACHE/state/lists"
    -o "Dir::State::status=$CACHE/state/status"
    -o "Dir::Cache=$CACHE/apt-cache"
    -o "APT::Architecture=amd64"
    -o "APT::Architectures=amd64"
    -o "APT::Sandbox::User=$(id -un)"
    -o "Acquire::Languages=none"
    -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
    -o "APT::Get::List-Cleanup=true"
)
if [[ ${HI_SYSROOT_INSECURE:-0} == 1 ]]; then
    note "WARNING: HI_SYSROOT_INSECURE=1: not verifying the Release signature"
    APT_OPTS+=(-o "Acquire::AllowInsecureRepositories=true" -o "APT::Get::AllowUnauthenticated=true")
fi

lists_present() {
    local s
    for s in $SUITES; do
        compgen -G "$CACHE/state/lists/*_dists_${s}_*Packages*" >/dev/null || return 1
    done
}

# ---------------------------------------------------------- apt update ----
max_age=${HI_SYSROOT_MAX_AGE:-86400}
need_update=1
if [[ ${HI_SYSROOT_REFRESH:-0} != 1 ]] && lists_present && [[ -f $CACHE/state/.updated ]] \
   && [[ $(cat "$CACHE/state/.updated") == "$MIRROR $SUITES $KEYRING" ]]; then
    age=$(( $(date +%s) - $(stat -c %Y "$CACHE/state/.updated") ))
    (( age < max_age )) && need_update=0
fi
if (( need_update )); then
    note "apt-get update for $SUITES from $MIRROR"
    rm -f "$CACHE/state/.updated"
    fail_re='^E: |^W: (Failed to fetch|GPG error|.*not signed)'
    [[ ${HI_SYSROOT_INSECURE:-0} == 1 ]] && fail_re='^E: |^W: Failed to fetch'
    if apt-get "${APT_OPTS[@]}" -q update >"$CACHE/update.log" 2>&1 \
       && ! grep -qE "$fail_re" "$CACHE/update.log" && lists_present; then
        echo "$MIRROR $SUITES $KEYRING" >"$CACHE/state/.updated"
    else
        cat "$CACHE/update.log" >&2
        if grep -qE 'NO_PUBKEY|EXPKEYSIG|not signed|is not signed|signatures couldn.t be verified|InRelease.*invalid' "$CACHE/update.log"; then
            note "the Release file of '$SUITE' could not be verified with keyring '${KEYRING:-<apt default>}'."
            note "fix: 'apt-get install debian-archive-keyring' (bookworm's has the bullseye..trixie keys), or set"
            note "HI_SYSROOT_KEYRING=/path/to/keyring.gpg; last resort: HI_SYSROOT_INSECURE=1"
        fi
        if lists_present; then
            note "WARNING: apt-get update failed; using previously downloaded package lists"
        else
            die "apt-get update for suite '$SUITE' from '$MIRROR' failed (log: $CACHE/update.log)"
        fi
    fi
fi

# ------------------------------------------------- resolve the packages ----
declare -A VER FILE SHA
# One apt-cache call for all packages (each call rebuilds apt's cache).
records=$(apt-cache "${APT_OPTS[@]}" show --no-all-versions "${PACKAGES[@]}" 2>"$CACHE/show.log") || {
    cat "$CACHE/show.log" >&2
    die "some of ${PACKAGES[*]} not found in $SUITE (mirror $MIRROR)"
}
while read -r p v f h; do
    VER[$p]=$v FILE[$p]=$f SHA[$p]=$h
done < <(awk '
    /^Package:/  { p = $2 }
    /^Version:/  { v = $2 }
    /^Filename:/ { f = $2 }
    /^SHA256:/   { h = $2 }
    /^$/ { if (p != "") print p, v, f, h; p = v = f = h = "" }
    END  { if (p != "") print p, v, f, h }
' <<<"$records")
for p in "${PACKAGES[@]}"; do
    [[ -n ${VER[$p]:-} && -n ${FILE[$p]:-} && -n ${SHA[$p]:-} ]] \
        || die "package '$p' not found (or record incomplete) in $SUITES (mirror $MIRROR)"
done
for p in "${GLIBC_PACKAGES[@]}"; do
    [[ ${VER[$p]} == "${VER[libc6]}" ]] \
        || die "$p ${VER[$p]} is not the version of libc6 (${VER[libc6]}) in $SUITES"
done
if [[ -n $BASE_SUITE ]]; then
    # The pin falls back to sid's glibc when experimental has none.
    apt-cache "${APT_OPTS[@]}" madison libc6 2>/dev/null \
        | awk -F'|' -v v="${VER[libc6]}" -v s="$SUITE" '
            { gsub(/ /, "", $2) } $2 == v && $3 ~ (" " s "/") { ok = 1 }
            END { exit !ok }' \
        || die "libc6 ${VER[libc6]} is not from $SUITE: $SUITE has no glibc of its own now; nothing to layer on $BASE_SUITE"
fi

stamp=$(for p in "${PACKAGES[@]}"; do echo "$p=${VER[$p]}"; done)
stamp=$(printf 'suite=%s\ndestdir=%s\nformat=1\n%s\n' "$SUITE" "$DESTDIR" "$stamp")
if [[ -f $DESTDIR/.complete && -f $DESTDIR/sysroot.env ]] && [[ $(cat "$DESTDIR/.complete") == "$stamp" ]]; then
    note "$DESTDIR is up to date ($SUITE, libc6 ${VER[libc6]})"
    exit 0
fi

# -------------------------------------------------------------- download ----
verify_deb() { # file sha256
    [[ -f $1 ]] || return 1
    [[ -z $2 ]] && return 0
    [[ $(sha256sum "$1" | cut -d' ' -f1) == "$2" ]]
}
to_fetch=()
for p in "${PACKAGES[@]}"; do
    f=$CACHE/debs/${FILE[$p]##*/}
    verify_deb "$f" "${SHA[$p]}" || { rm -f "$f"; to_fetch+=("$p=${VER[$p]}"); }
done
if [[ ${#to_fetch[@]} -gt 0 ]]; then
    note "downloading ${to_fetch[*]}"
    (cd "$CACHE/debs" && apt-get "${APT_OPTS[@]}" -q download "${to_fetch[@]}") >"$CACHE/download.log" 2>&1 || {
        cat "$CACHE/download.log" >&2
        die "apt-get download failed for: ${to_fetch[*]}"
    }
fi
for p in "${PACKAGES[@]}"; do
    f=$CACHE/debs/${FILE[$p]##*/}
    verify_deb "$f" "${SHA[$p]}" || die "downloaded '$f' is missing or its SHA256 does not match the index"
done
# drop stale versions from the download cache
keep=$(for p in "${PACKAGES[@]}"; do echo "${FILE[$p]##*/}"; done)
for f in "$CACHE"/debs/*.deb; do
    [[ -e $f ]] || continue
    grep -qxF "${f##*/}" <<<"$keep" || rm -f "$f"
done

# --------------------------------------------------------------- extract ----
# Extract into a fresh tree next to DESTDIR, then swap it in. The tree is
# usr-merged up front (lib, lib64, bin, sbin -> usr/...), and tar keeps these
# directory symlinks, so bullseye (files under /lib) and trixie (files under
# /usr/lib) end up in the same layout and every path resolves in the sysroot.
STAGE=$DESTDIR.tmp.$$
trap 'rm -rf "$STAGE"' EXIT
rm -rf "$STAGE"
mkdir -p "$STAGE"/usr/{lib,lib64,bin,sbin}
for d in lib lib64 bin sbin; do ln -s "usr/$d" "$STAGE/$d"; done
for p in "${PACKAGES[@]}"; do
    f=$CACHE/debs/${FILE[$p]##*/}
    dpkg-deb --fsys-tarfile "$f" | tar -x -C "$STAGE" --keep-directory-symlink --no-same-owner \
        || die "extracting '$f' failed"
done

# Rewrite absolute symlinks (e.g. libc.so -> /lib/x86_64-linux-gnu/libc.so.6,
# /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-2.31.so) into
# relative ones that stay inside the sysroot.
while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    rel=$(realpath -ms --relative-to="$(dirname "$link")" "$STAGE$target")
    ln -sfn "$rel" "$link"
done < <(find "$STAGE/" -type l -lname '/*' -print0)

# Every symlink must now resolve inside the tree (links that dangle inside it
# are fine: packages may point to files of packages we do not install).
escapes=$(find "$STAGE/" -type l -print0 | xargs -0 -r realpath -mz -- \
          | tr '\0' '\n' | awk -v root="$STAGE" '$0 != root && index($0, root "/") != 1')
[[ -z $escapes ]] || die "symlinks escape the sysroot: $(head -n5 <<<"$escapes" | tr '\n' ' ')"

# ----------------------------------------------------------- describe it ----
LIBDIR_S=$(realpath -e "$STAGE/lib/x86_64-linux-gnu") || die "no lib/x86_64-linux-gnu in the extracted tree"
[[ -e $LIBDIR_S/libc.so.6 ]] || die "libc.so.6 not found in $LIBDIR_S"
[[ -e $LIBDIR_S/ld-linux-x86-64.so.2 ]] || die "ld-linux-x86-64.so.2 not found in $LIBDIR_S"
[[ -e $STAGE/lib64/ld-linux-x86-64.so.2 ]] || die "lib64/ld-linux-x86-64.so.2 not found in the extracted tree"
LIBC_S=$(realpath -e "$LIBDIR_S/libc.so.6")
# awk reads to the end: exiting early would kill readelf with SIGPIPE, which
# pipefail turns into a failure of the script.
BUILD_ID=$(readelf -n "$LIBC_S" | awk '/Build ID:/ && id == "" {id = $3} END {print id}')
[[ $BUILD_ID =~ ^[0-9a-f]{4,}$ ]] || die "cannot read the build-id of $LIBC_S"

DEBUGDIR_S=$STAGE/usr/lib/debug
DEBUG_S=$DEBUGDIR_S/.build-id/${BUILD_ID:0:2}/${BUILD_ID:2}.debug
if [[ ! -e $DEBUG_S ]]; then
    {
        echo "$PROG: error: libc6-dbg ${VER[libc6-dbg]} has no $DEBUG_S"
        echo "  (build-id of libc.so.6: $BUILD_ID; libc6 ${VER[libc6]}). Layout of libc6-dbg:"
        dpkg-deb -c "$CACHE/debs/${FILE[libc6-dbg]##*/}" | awk '{print "    " $NF}' | head -n 40
    } >&2
    exit 1
fi
DEBUG_S=$(realpath -e "$DEBUG_S")
# Does the libc .debug refer to a dwz alt file (.gnu_debugaltlink)?
DWZ_S=
if readelf -SW "$DEBUG_S" 2>/dev/null | grep -q '\.gnu_debugaltlink'; then
    alt=$(readelf -p .gnu_debugaltlink "$DEBUG_S" 2>/dev/null | awk '/\[ *0\]/ && a == "" {a = $3} END {print a}')
    if [[ -n $alt ]]; then
        if [[ $alt == /* ]]; then cand=$STAGE$alt; else cand=$(dirname "$DEBUG_S")/$alt; fi
        [[ -e $cand ]] || die "libc debug file refers to dwz file '$alt', which is not in the sysroot"
        DWZ_S=$(realpath -e "$cand")
    fi
fi

GLIBC_VERSION=${VER[libc6]#*:}
GLIBC_VERSION=${GLIBC_VERSION%%-*}
[[ $GLIBC_VERSION =~ ^[0-9]+\.[0-9]+ ]] || die "cannot derive the glibc version from libc6 ${VER[libc6]}"

fin() { local s=$1; echo "$DESTDIR${s#"$STAGE"}"; }
{
    echo "SUITE=$SUITE"
    echo "GLIBC_VERSION=$GLIBC_VERSION"
    echo "LIBC6_VERSION=${VER[libc6]}"
    echo "LOADER=$(fin "$LIBDIR_S")/ld-linux-x86-64.so.2"
    echo "LIBDIR=$(fin "$LIBDIR_S")"
    echo "LIBC=$(fin "$LIBC_S")"
    echo "DEBUGDIR=$(fin "$DEBUGDIR_S")"
    echo "LIBC_BUILD_ID=$BUILD_ID"
    echo "LIBC_DEBUG=$(fin "$DEBUG_S")"
    echo "DWZ_FILE=${DWZ_S:+$(fin "$DWZ_S")}"
} >"$STAGE/sysroot.env"
printf '%s\n' "$stamp" >"$STAGE/.complete"

# ---------------------------------------------------------------- swap in ----
OLD=$DESTDIR.old.$$
mv "$DESTDIR" "$OLD"
mv "$STAGE" "$DESTDIR"
rm -rf "$OLD"
trap - EXIT
note "sysroot for $SUITE (glibc $GLIBC_VERSION, libc6 ${VER[libc6]}) ready in $DESTDIR"
cat "$DESTDIR/sysroot.env"
