#!/usr/bin/env bash
# Rebuild every sample distribution of packages-dir-example/ from the source
# projects next to this script.
#
# Usage:  bash packages-dir-example/.build/rebuild.sh      (from any directory)
#
# Needs a Python that has `build`, `hatchling`, `setuptools` and `wheel`
# importable; builds run with --no-isolation (and --skip-dependency-check), so
# nothing is downloaded.
# On Debian/Ubuntu: apt-get install python3-build python3-hatchling \
#                                   python3-setuptools python3-wheel
# Override the interpreter with PYTHON=/path/to/python3.
#
# Each project is copied into a temporary staging directory (the pypi-lite-demo
# template gets its version substituted there), its file times are pinned to
# SOURCE_DATE_EPOCH, and it is built from there. Every *.whl / *.tar.gz that
# was directly in packages-dir-example/ or packages-dir-example/legacy/ is
# replaced.
set -euo pipefail

PYTHON="${PYTHON:-/usr/bin/python3}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1700000000}"
export PYTHONDONTWRITEBYTECODE=1
export PYTHONHASHSEED=0
export TZ=UTC
umask 022

SRC_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
OUT_DIR="$(dirname -- "$SRC_DIR")"
LEGACY_DIR="$OUT_DIR/legacy"

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/pypi-lite-rebuild.XXXXXX")"
cleanup() {
    rm -rf -- "$STAGE"
    # Leftovers of anyone who built in place inside .build/.
    find "$SRC_DIR" -depth \( -name build -o -name dist -o -name '*.egg-info' \
        -o -name __pycache__ \) -type d -exec rm -rf -- {} +
}
trap cleanup EXIT

if ! "$PYTHON" -c 'import build, hatchling, setuptools, wheel' 2>/dev/null; then
    echo "error: $PYTHON lacks build/hatchling/setuptools/wheel" >&2
    exit 1
fi

# stage NAME [VERSION REQUIRES_PYTHON] -> prints the staging directory
stage() {
    local name="$1" dest="$STAGE/$1${2:+-$2}"
    mkdir -p -- "$dest"
    (cd -- "$SRC_DIR/$name" && tar --exclude=build --exclude=dist \
        --exclude='*.egg-info' --exclude=__pycache__ -cf - .) |
        tar -xf - -C "$dest"
    if [[ $# -ge 3 ]]; then
        find "$dest" -type f -exec sed -i \
            -e "s/@VERSION@/$2/g" -e "s/@REQUIRES_PYTHON@/$3/g" {} +
    fi
    find "$dest" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    printf '%s\n' "$dest"
}

# pybuild PROJECT_DIR OUTDIR [build options...]
pybuild() {
    local dir="$1" outdir="$2"
    shift 2
    mkdir -p -- "$outdir"
    echo "==> building $(basename -- "$dir") $* -> $outdir"
    # --skip-dependency-check: Debian's hatchling declares editables>=0.3
    # (only needed for editable installs), which Debian does not ship; the
    # backends themselves were checked above.
    (cd -- "$dir" && "$PYTHON" -m build --no-isolation --skip-dependency-check \
        --outdir "$outdir" "$@")
}

# clamp_sdist TARBALL: setuptools (unlike hatchling) stamps generated files
# (PKG-INFO, *.egg-info, setup.cfg) and the gzip header with the current time.
# Rewrite the tarball with the same members in the same order, mtimes clamped
# to SOURCE_DATE_EPOCH, so that rebuilds are byte-identical.
clamp_sdist() {
    "$PYTHON" - "$1" <<'PY'
import gzip, io, os, sys, tarfile

path = sys.argv[1]
epoch = int(os.environ["SOURCE_DATE_EPOCH"])
buf = io.BytesIO()
with tarfile.open(path, "r:gz") as src, \
        tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as dst:
    for member in src.getmembers():
        member.mtime = min(int(member.mtime), epoch)
        member.pax_headers.pop("mtime", None)
        data = src.extractfile(member) if member.isfile() else None
        dst.addfile(member, data)
tmp = path + ".tmp"
with open(tmp, "wb") as raw, \
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=epoch) as gz:
    gz.write(buf.getvalue())
os.replace(tmp, path)
PY
}

# Start from a clean slate.
rm -f -- "$OUT_DIR"/*.whl "$OUT_DIR"/*.tar.gz
if [[ -d "$LEGACY_DIR" ]]; then
    rm -f -- "$LEGACY_DIR"/*.whl "$LEGACY_DIR"/*.tar.gz
fi

# 1. pypi-lite-demo: several versions with different Requires-Python.
while read -r version requires_python; do
    pybuild "$(stage pypi-lite-demo "$version" "$requires_python")" "$OUT_DIR"
done <<'EOF'
1.0.0 >=3.6
1.1.0 >=3.7
2.0.0 >=3.9
EOF

# 2. Fancy.Mixed_Name: un-normalized project name, wheel + sdist.
pybuild "$(stage fancy-mixed-name)" "$OUT_DIR"

# 3. sdist-only-tool: setuptools, source distribution only.
pybuild "$(stage sdist-only-tool)" "$OUT_DIR" --sdist
clamp_sdist "$OUT_DIR/sdist-only-tool-0.9.tar.gz"

# 4. pypi-lite-extras: dependency + extra; wheel at the top, sdist in legacy/.
extras="$(stage pypi-lite-extras)"
pybuild "$extras" "$OUT_DIR" --wheel
pybuild "$extras" "$LEGACY_DIR" --sdist

# hatchling writes its artifacts with mode 0600; make them world-readable.
find "$OUT_DIR" -maxdepth 2 -path "$SRC_DIR" -prune -o -type f \
    \( -name '*.whl' -o -name '*.tar.gz' \) -exec chmod 0644 {} +

echo "==> done:"
(cd -- "$OUT_DIR" && find . -path ./.build -prune -o -type f \
    \( -name '*.whl' -o -name '*.tar.gz' \) -print | sort)
