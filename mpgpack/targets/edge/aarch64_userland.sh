#!/usr/bin/env bash
# Builds a Raspberry Pi OS-like aarch64 userland under DIR — Debian 12 "bookworm" arm64 with
# Python 3.11 (Raspberry Pi OS 12) or Debian 13 "trixie" arm64 with Python 3.13 (Raspberry Pi
# OS 13, the current one) — so that aarch64 Python code can run on an x86_64 host through qemu
# user-mode emulation, on a Cortex-A72 (a Raspberry Pi 4's CPU; QEMU_CPU overrides it). Nothing on the host is changed except that
# qemu-user-static is installed when missing. Needs root (apt-get) on a Debian 12 host.
#
#   mpgpack/targets/edge/aarch64_userland.sh DIR [bookworm|trixie]      (default bookworm)
#   DIR/python3 -c 'import platform; print(platform.machine())'     # -> aarch64
#   DIR/mkvenv /tmp/v                     # an aarch64 venv with pip, as `python3 -m venv` makes
#   DIR/run /tmp/v/bin/python -m pip install --no-index --find-links WHEELS PKG...
#   DIR/run /tmp/v/bin/python script.py
# The host kernel has no binfmt_misc here, so an emulated program cannot exec another aarch64
# program itself (subprocess, `python -m venv` with pip, building an sdist): start each one
# through DIR/run, and install wheels only. Wheels can also be fetched on the host with
#   pip download --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \   (3.13/cp313 for trixie)
#     --abi abi3 --abi none --platform manylinux2014_aarch64 --platform manylinux_2_17_aarch64 \
#     --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 -d WHEELS PKG...
# Emulation checks that wheels, glibc and the Python ABI fit and that results are right;
# its timings say nothing about a real device. The emulated CPU changes which kernels LiteRT's
# XNNPACK picks: results differ from x86 in the last float32 bits (seen: up to 7.6e-6 MPG), so
# compare with the golden tolerance, not bit for bit.
# The project's copy of the team's shared tools/aarch64-userland.sh (kept in step with it), so
# that `mpgpack edge userland|emulate` and the tests work on a fresh machine; they build one
# userland per release in ~/.cache/mpgpack/aarch64-<release>.
set -euo pipefail
DIR=$(realpath -m "${1:?usage: aarch64-userland.sh DIR [bookworm|trixie]}")
SUITE=${2:-bookworm}
case $SUITE in bookworm) PYV=3.11 ;; trixie) PYV=3.13 ;; *) echo "suite must be bookworm or trixie" >&2; exit 2 ;; esac
SYS=$DIR/sysroot A=$DIR/apt
if [ -x "$SYS/usr/bin/python$PYV" ] && [ -x "$DIR/run" ]; then echo "$DIR already holds an aarch64 $SUITE userland"; exit 0; fi
if ! command -v qemu-aarch64-static >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
fi
mkdir -p "$A"/{lists/partial,cache/archives/partial,etc/sources.list.d,etc/preferences.d,etc/apt.conf.d,state} "$SYS"
: > "$A/status"
# The host's own Debian sources, restricted to arm64 (a private apt state: the host's is untouched).
[ -f /etc/apt/sources.list.d/debian.sources ] || { echo "no /etc/apt/sources.list.d/debian.sources on this host" >&2; exit 1; }
# For trixie the suite names are rewritten (bookworm-security -> trixie-security).
sed -e 's/^Types: deb$/Types: deb\nArchitectures: arm64/' -e "s/\bbookworm\b/$SUITE/g; s/\bbookworm-/$SUITE-/g" \
  /etc/apt/sources.list.d/debian.sources > "$A/etc/sources.list.d/debian.sources"
cat > "$A/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::Etc "$A/etc";
Dir::Etc::SourceList "$A/etc/sources.list";
Dir::Etc::SourceParts "$A/etc/sources.list.d";
Dir::Etc::Parts "$A/etc/apt.conf.d";
Dir::Etc::PreferencesParts "$A/etc/preferences.d";
Dir::Etc::TrustedParts "/etc/apt/trusted.gpg.d";
Dir::State "$A/state";
Dir::State::Lists "$A/lists";
Dir::State::status "$A/status";
Dir::Cache "$A/cache";
Debug::NoLocking "true";
APT::Sandbox::User "root";
CONF
touch "$A/etc/sources.list"
export APT_CONFIG=$A/apt.conf
apt-get -qq update
apt-get -qq install -y --download-only --no-install-recommends python$PYV python$PYV-venv python3-pip-whl python3-setuptools-whl libstdc++6 >/dev/null
unset APT_CONFIG
for d in "$A"/cache/archives/*.deb; do dpkg -x "$d" "$SYS"; done
# Debian 13 packages ship only /usr: /lib, /bin, /sbin must be links, or qemu finds no
# /lib/ld-linux-aarch64.so.1.
for d in bin sbin lib; do [ -e "$SYS/$d" ] || ln -s "usr/$d" "$SYS/$d"; done
ln -sf python$PYV "$SYS/usr/bin/python3"
# qemu 7.2 (Debian 12) crashes inside some aarch64 wheels (ai-edge-litert, onnxruntime) when
# they read the host's x86 /proc/cpuinfo; serve a Raspberry Pi 4's through the -L prefix.
mkdir -p "$SYS/proc"
{ for n in 0 1 2 3; do printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' $n; done
  printf 'Hardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B\n'; } > "$SYS/proc/cpuinfo"
cat > "$DIR/run" <<RUN
#!/bin/sh
# Runs an aarch64 program (a path inside or outside the userland) under emulation.
prog=\$1; shift
[ -e "\$prog" ] || prog=$SYS\$prog
exec qemu-aarch64-static -cpu "\${QEMU_CPU:-cortex-a72}" -L $SYS "\$prog" "\$@"
RUN
cat > "$DIR/python3" <<PY
#!/bin/sh
exec qemu-aarch64-static -cpu "\${QEMU_CPU:-cortex-a72}" -L $SYS $SYS/usr/bin/python$PYV "\$@"
PY
cat > "$DIR/mkvenv" <<VENV
#!/bin/sh
# An aarch64 venv with pip: venv without pip (ensurepip would exec aarch64), then pip's own wheel.
set -e
"$DIR/python3" -m venv --without-pip "\$1"
python3 -c "import glob, sys, zipfile; zipfile.ZipFile(glob.glob('$SYS/usr/share/python-wheels/pip-*.whl')[0]).extractall(sys.argv[1] + '/lib/python$PYV/site-packages')" "\$1"
VENV
chmod +x "$DIR/run" "$DIR/python3" "$DIR/mkvenv"
"$DIR/python3" -c 'import platform, sys; print("aarch64 userland ready:", platform.machine(), sys.version.split()[0])'
