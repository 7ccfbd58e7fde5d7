#!/usr/bin/env bash
# Build KenLM's `lmplz` (estimates an ARPA n-gram model) and `build_binary` (ARPA -> binary) into the
# virtual environment's bin/ folder. `webmill kenlm train` calls them; the `kenlm` Python module that
# scores text is a pip dependency and does not include them.
#
#   scripts/build_kenlm.sh            (or: make kenlm-tools)
#
# Environment: VENV (default .venv), PYTHON (default $VENV/bin/python).
# Needs a C++ compiler, CMake and Boost (program_options, system, thread, test); the Debian packages are
# installed with apt-get when missing. The source is the PyPI sdist of the same KenLM version as the
# pinned Python module, so the binaries and the module agree on the file format.
set -euo pipefail

KENLM_VERSION=0.3.0            # keep in step with `kenlm==` in pyproject.toml
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-$VENV/bin/python}
[[ -x $PYTHON ]] || PYTHON=python3  # no virtual environment yet: pip of the system Python downloads
BIN=$VENV/bin

if [[ -x $BIN/lmplz && -x $BIN/build_binary ]]; then
    exit 0
fi

DEB_PACKAGES=(cmake g++ make libboost-program-options-dev libboost-system-dev libboost-thread-dev
              libboost-test-dev zlib1g-dev libbz2-dev liblzma-dev)
missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    echo "build_kenlm: installing ${missing[*]}" >&2
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "build_kenlm: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
        SUDO=sudo
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { $SUDO apt-get update -qq && $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; }
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Only kenlm itself from source: `--no-binary :all:` would also compile its build requirements
# (CMake among them) from source just to read the package metadata.
"$PYTHON" -m pip download --quiet --no-deps --no-binary kenlm "kenlm==$KENLM_VERSION" -d "$work"
tar -xzf "$work/kenlm-$KENLM_VERSION.tar.gz" -C "$work"
src=$work/kenlm-$KENLM_VERSION

echo "build_kenlm: compiling lmplz and build_binary (KenLM $KENLM_VERSION)" >&2
log=$work/build.log
{ cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCOMPILE_TESTS=OFF -DENABLE_PYTHON=OFF \
    && cmake --build "$work/build" --target lmplz build_binary -j 2; } >"$log" 2>&1 \
    || { tail -n 40 "$log" >&2; echo "build_kenlm: the build failed (last 40 lines of its log above)" >&2; exit 1; }

mkdir -p "$BIN"
install -m 0755 "$work/build/bin/lmplz" "$work/build/bin/build_binary" "$BIN/"
echo "KenLM $KENLM_VERSION" > "$VENV/.kenlm-tools-version"  # recorded in each model's manifest
echo "build_kenlm: installed $BIN/lmplz and $BIN/build_binary" >&2
