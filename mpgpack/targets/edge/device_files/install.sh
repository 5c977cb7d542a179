#!/bin/sh
# Installs the mpg-edge runner from this folder with no network: checks every file against
# SHA256SUMS, makes a venv, installs the wheels in wheels/ (pip --no-index), copies the model
# bundle beside it and runs `mpg-edge verify`. Running it again replaces the previous install.
#
#   sudo ./install.sh                   # into /opt/mpg-edge, command /usr/local/bin/mpg-edge
#   ./install.sh --prefix ~/mpg-edge    # no root needed (no command link, no service)
#   sudo ./install.sh --service         # also the systemd units (folders in /var/lib/mpg-edge)
#   sudo ./install.sh --registry URL    # --service, and follow the model registry at URL
#
# Needs only the Python of Raspberry Pi OS 12 (3.11) or 13 (3.13) itself (TARGET lists the
# Pythons and machine this tarball's wheels are for): the venv is made without pip and pip runs
# from its wheel in wheels/, so neither python3-venv (ensurepip) nor a network is needed.
# Environment, for another Python and for the emulated check of the test suite (there no
# aarch64 program can start another aarch64 program by itself):
#   PYTHON  the Python that builds the venv (default: python3)
#   RUN     a command prefix that runs the venv's python (default: none; there: qemu)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/opt/mpg-edge
LINK=/usr/local/bin/mpg-edge
SERVICE=0
REGISTRY=""
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --no-link) LINK=""; shift ;;
    --service) SERVICE=1; shift ;;
    --registry) REGISTRY=${2:?--registry needs a URL}; SERVICE=1; shift 2 ;;
    --registry=*) REGISTRY=${1#*=}; SERVICE=1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see ./install.sh --help)" >&2; exit 2 ;;
  esac
done
PYTHON=${PYTHON:-python3}
RUN=${RUN:-}
say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

cd "$HERE"
# The wheels are for one machine and a few Pythons: refuse first, in one line saying what fits.
read -r want_arch want_abis < TARGET
wanted=$(echo "$want_abis" | sed 's/cp3\([0-9]*\)/3.\1/g; s/ / or /g')   # "3.11 or 3.13"
have=$("$PYTHON" -c 'import platform, struct, sys
bits = "" if struct.calcsize("P") == 8 else "-32bit"
print(platform.machine() + bits, "cp%d%d" % sys.version_info[:2])' 2>/dev/null) \
  || die "cannot run $PYTHON: Python $wanted is needed (set PYTHON=/path/to/python3)"
have_arch=${have% *} have_abi=${have#* }
case $have_arch in *-32bit) have_arch="32-bit ${have_arch%-32bit}" ;; esac
case $want_arch in
  aarch64) need="a 64-bit ARM OS with Python $wanted (Raspberry Pi OS 12 or 13, 64-bit)" ;;
  *) need="an $want_arch machine with Python $wanted" ;;
esac
[ "$have_arch" = "$want_arch" ] || die "this tarball is for $want_arch, but $PYTHON runs on $have_arch; needed: $need"
case " $want_abis " in
  *" $have_abi "*) ;;
  *) die "this tarball is for Python $wanted, but $PYTHON is Python $(echo "$have_abi" | sed 's/cp3/3./'); needed: $need" ;;
esac

say "checking every file against SHA256SUMS"
sha256sum --quiet --strict -c SHA256SUMS || die "files above differ from SHA256SUMS: copy the tarball again"

mkdir -p "$PREFIX"
PREFIX=$(cd "$PREFIX" && pwd)
say "creating the venv $PREFIX/venv"
rm -rf "$PREFIX/venv"
"$PYTHON" -m venv --without-pip "$PREFIX/venv"

say "installing mpg-edge, numpy and ai-edge-litert from wheels/ (no network)"
set -- "$HERE"/wheels/pip-*.whl
[ -f "$1" ] || die "no pip wheel in $HERE/wheels"
# No config files (a machine-wide pip.conf could add an index) and no index at all.
PIP_CONFIG_FILE=/dev/null $RUN "$PREFIX/venv/bin/python" "$1/pip" install --quiet --no-index \
  --only-binary=:all: --no-cache-dir --disable-pip-version-check --no-warn-script-location \
  --find-links "$HERE/wheels" mpg-edge

say "copying the model bundle to $PREFIX/bundle"
rm -rf "$PREFIX/bundle.new" "$PREFIX/share"
cp -R "$HERE/bundle" "$PREFIX/bundle.new"
rm -rf "$PREFIX/bundle" && mv "$PREFIX/bundle.new" "$PREFIX/bundle"
mkdir -p "$PREFIX/share" && cp README.md mpg-edge.service mpg-edge.path mpg-edge-follow.service \
  mpg-edge-follow.timer TARGET "$PREFIX/share/"
# The public key bundles must be signed by (only when the tarball carries one; a key installed
# before stays: the device keeps trusting it, so an unsigned tarball then fails verify below).
if [ -f trust.pub ]; then
  say "installing the trusted public key $PREFIX/trust.pub (bundles must be signed by it)"
  cp trust.pub "$PREFIX/trust.pub.new" && mv "$PREFIX/trust.pub.new" "$PREFIX/trust.pub"
fi

say "verifying on this device"
$RUN "$PREFIX/venv/bin/python" -m mpgpack.targets.edge.device verify --bundle "$PREFIX/bundle" \
  || die "mpg-edge verify failed (see above); the install is not usable"

COMMAND=$PREFIX/venv/bin/mpg-edge
if [ -n "$LINK" ]; then
  if ln -sf "$COMMAND" "$LINK" 2>/dev/null; then COMMAND=mpg-edge
  else say "could not link $LINK (not root?): run $COMMAND"; fi
fi

if [ "$SERVICE" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "--service needs root (sudo ./install.sh --service)"
  id mpg-edge >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin mpg-edge
  install -d -o mpg-edge -g mpg-edge -m 2775 /var/lib/mpg-edge/incoming /var/lib/mpg-edge/inbox /var/lib/mpg-edge/outbox
  # Following a registry: the model lives in /var/lib/mpg-edge/model (versions/, current),
  # first filled from this tarball's bundle with the same checks as every update.
  MODEL=/var/lib/mpg-edge/model SERVE="--bundle $PREFIX/bundle"
  if [ -n "$REGISTRY" ]; then
    install -d -o mpg-edge -g mpg-edge -m 755 "$MODEL"
    runuser -u mpg-edge -- "$PREFIX/venv/bin/mpg-edge" follow "$PREFIX/bundle" --once --prefix "$MODEL" \
      || die "could not install the bundle into $MODEL (see above)"
    SERVE="--prefix $MODEL"
  fi
  for unit in mpg-edge.service mpg-edge.path mpg-edge-follow.service mpg-edge-follow.timer; do
    sed "s|@PREFIX@|$PREFIX|g; s|--bundle $PREFIX/bundle|$SERVE|" "$HERE/$unit" > "/etc/systemd/system/$unit"
  done
  systemctl daemon-reload
  systemctl enable --now mpg-edge.path
  if [ -n "$REGISTRY" ]; then
    install -d -m 755 /etc/mpg-edge
    printf 'MPG_EDGE_REGISTRY=%s\n' "$REGISTRY" > /etc/mpg-edge/follow.env
    systemctl enable --now mpg-edge-follow.timer
    say "following $REGISTRY every 15 min: mpg-edge status --prefix $MODEL"
  else
    say "mpg-edge-follow.timer installed, not enabled: to follow a registry, rerun with --registry URL"
  fi
  say "service on: write a file in /var/lib/mpg-edge/incoming, mv it into inbox/; results in outbox/"
fi
say "done: $COMMAND predict --input cars.csv"
