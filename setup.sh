#!/usr/bin/env bash
# Set up vlagent on a Debian/Ubuntu machine: system packages for the virtual
# display and adb, a CPU build of torch, then vlagent with every extra.
# Usage: bash setup.sh            (as root, or with sudo available)
#        VLAGENT_TORCH="torch==2.13.0" bash setup.sh   to choose the torch build
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if command -v apt-get >/dev/null 2>&1; then
  echo "== system packages (Xvfb, Xorg dummy driver, xdotool, xclip, xrandr, adb, fonts, C compiler for the CPU kernels)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    xvfb xserver-xorg-core xserver-xorg-video-dummy x11-xserver-utils xauth \
    xdotool xclip adb fonts-dejavu-core fonts-wqy-microhei gcc libc6-dev > /dev/null
  echo "== grounding harvesters (chromium for web pages; GTK3 apps, AT-SPI and D-Bus for desktop screens; the Adwaita icons for generated toolbars)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium at-spi2-core python3-pyatspi dbus galculator gucharmap mousepad zenity gtk-3-examples \
    adwaita-icon-theme > /dev/null
  echo "== OCR for scripts the bundled rapidocr models cannot read (tesseract with its Russian model)"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    tesseract-ocr tesseract-ocr-rus > /dev/null
else
  echo "apt-get not found: install Xvfb, xdotool, xclip, xrandr, adb (and tesseract with its Russian model) yourself" >&2
fi

PY=${PYTHON:-python3}
echo "== torch (CPU build unless VLAGENT_TORCH says otherwise)"
if ! $PY -c "import torch" 2>/dev/null; then
  # A bare `torch` requirement pulls a multi-GB CUDA build; ask for the CPU one.
  $PY -m pip install -q "${VLAGENT_TORCH:-torch==2.13.0}"
fi
# No torchvision: PyPI's x86_64 wheels are CUDA builds whose C ops do not load beside the CPU torch
# (importing it fails, and transformers, seeing it installed, would then fail to build its processors).
# The processor tests check the video resize against a float64 antialiased bicubic of their own instead,
# and use real torchvision where one that imports is installed.
echo "== vlagent[dev]"
$PY -m pip install -q -e ".[dev]"
$PY -c "import vlagent, vlagent.model, vlagent.environments, vlagent.kernels; print('vlagent', vlagent.__version__, 'installed')"
