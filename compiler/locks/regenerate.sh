#!/usr/bin/env bash
# Regenerate the hashed pip locks that stackc's first-boot scripts (and the systemd docs) install with
#     pip install --require-hashes --no-deps -r LOCK
# Target: CPython 3.12 on Linux x86_64, glibc 2.39 (Ubuntu 24.04).
#
# Needs PyPI (pypi.org, files.pythonhosted.org) and nothing else. It downloads no
# wheels: uv reads each wheel's METADATA with HTTP range requests, and
# filter_lock.py reads PyPI's simple index (PEP 691 JSON).
#
# usage: ./regenerate.sh [LOCK_NAME...]      (default: all of them)
set -euo pipefail
cd "$(dirname "$0")"

PYTHON_VERSION=3.12
GLIBC=2.39
PLATFORM="x86_64-manylinux_${GLIBC/./_}"
INDEX=https://pypi.org/simple
UV_VERSION=0.13.9
# Ignore files uploaded after this instant, so that a rerun gives the same pins.
# Move it forward on purpose when the pins are bumped.
EXCLUDE_NEWER=2026-12-01T21:00:00Z

# One lock per virtual environment: NAME -> top-level requirements.
declare -A LOCKS=(
  [vllm-0.33.0]="vllm==0.33.0"
  # LMCache: requirements/kv_connectors.txt at vLLM v0.33.0 says lmcache>=0.5.6;
  # 0.5.6 is the newest release on PyPI.
  [vllm-0.33.0-lmcache]="vllm==0.33.0 lmcache==0.5.6"
  [sglang-0.5.21]="sglang[all]==0.5.21"
  # What the gateway image also ships and stackc's config uses (callbacks: [prometheus];
  # prisma for the 401 on a bad key): the same pins as tests/integration/requirements-gateway.txt.
  [litellm-1.104.2-gateway]="litellm[proxy]==1.104.2 prometheus-client==0.26.0 prisma==0.15.0"
)
# Extra uv flags per lock. Nothing may build from source (--only-binary :all:),
# except where a pin has no wheel on PyPI: sglang 0.5.21 pins cuda-tile==1.6.0rc5,
# which PyPI has only as a wheel-stub sdist. uv reads its static PKG-INFO; it
# builds nothing. (--no-binary here must name only packages without wheels.)
declare -A FLAGS=(
  [sglang-0.5.21]="--no-binary cuda-tile"
)

# The tools, in a venv beside this script.
if [ "$(.venv/bin/uv --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" "packaging==26.4"
fi
export UV_CACHE_DIR="$PWD/.uv-cache" UV_PYTHON_DOWNLOADS=never UV_NO_CONFIG=1

trap 'rm -rf in raw .index-cache' EXIT   # intermediate files: only the locks stay
mkdir -p in raw
rm -rf .index-cache   # filter_lock.py's copy of PyPI's index: always read it afresh
names=("$@")
[ ${#names[@]} -gt 0 ] || names=("${!LOCKS[@]}")
for name in "${names[@]}"; do
  reqs=${LOCKS[$name]:?unknown lock $name}
  tr ' ' '\n' <<<"$reqs" > "in/$name.in"
  # uv would take an existing output file as preferred pins; start from nothing instead,
  # so that the result depends only on the inputs above.
  rm -f "raw/$name.txt"
  start=$(date +%s.%N)
  # shellcheck disable=SC2086  # FLAGS are words
  .venv/bin/uv pip compile "in/$name.in" \
    --generate-hashes --no-header \
    --python-version "$PYTHON_VERSION" --python-platform "$PLATFORM" \
    --index-url "$INDEX" --exclude-newer "$EXCLUDE_NEWER" \
    --only-binary :all: ${FLAGS[$name]:-} -c constraints.txt \
    -o "raw/$name.txt" -q
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
  cat > "raw/$name.header" <<EOF
# $reqs
# A hashed lock for: pip install --require-hashes --no-deps -r $name.txt
# Target: CPython $PYTHON_VERSION, Linux x86_64, glibc $GLIBC (Ubuntu 24.04).
# Resolved by uv $UV_VERSION against $INDEX, files uploaded before $EXCLUDE_NEWER:
#   uv pip compile $name.in --generate-hashes --python-version $PYTHON_VERSION \\
#     --python-platform $PLATFORM --only-binary :all: ${FLAGS[$name]:+${FLAGS[$name]} }\\
#     -c constraints.txt --exclude-newer $EXCLUDE_NEWER
# then cut by filter_lock.py to the hashes of the files this target can install
# (cp${PYTHON_VERSION/./} / abi3 / py3 wheels tagged manylinux_2_5 .. manylinux_${GLIBC/./_} x86_64; an sdist only where no such wheel exists).
# Regenerate with ./regenerate.sh $name
EOF
  .venv/bin/python filter_lock.py "raw/$name.txt" "$name.txt" \
    --python "$PYTHON_VERSION" --glibc "$GLIBC" \
    --header-file "raw/$name.header" --report "raw/$name.json"
  echo "$name: resolved in ${secs}s"
done
