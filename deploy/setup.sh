# deploy/setup.sh -- sourced by deploy/run and deploy/test: installs the Debian
# packages snnd needs that are missing (apt-get, through sudo when not root;
# nothing when all are present), then configures and builds into build/.
#
# Variables: SNND_BUILD_DIR (default build), SNND_MESON_ARGS (extra meson args).

SNND_PACKAGES=(
  gcc pkg-config meson ninja-build
  libuv1-dev libprotobuf-c-dev protobuf-c-compiler libjansson-dev libopenblas-dev libcmocka-dev
  libhdf5-dev   # NIR graphs are HDF5 files
  libsoxr-dev   # audio resampling to 16 kHz
  clang libclang-rt-14-dev   # libFuzzer targets (tests/fuzz), deploy/test only
)

snnd_install_packages() {
  local missing=() p
  for p in "${SNND_PACKAGES[@]}" "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "deploy: installing ${missing[*]}" >&2
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    "${sudo[@]}" apt-get update -qq >/dev/null
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# snnd_build DIR [meson args...]: configure (once) and build.
snnd_build() {
  local dir=$1
  shift
  local log
  log=$(mktemp)
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; return 1; }
  else
    meson configure "$dir" "$@" >"$log" 2>&1 || { cat "$log" >&2; rm -f "$log"; return 1; }
  fi
  rm -f "$log"
  ninja -C "$dir" >&2
}
