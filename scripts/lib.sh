# Shared by the scripts in this folder: installing Debian/Ubuntu packages
# and checking for the Rust toolchain.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

# The engines Storytime runs on the embedded default.
ENGINE_PACKAGES=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor tesseract-ocr-osd espeak-ng)

# Refreshes the package lists and installs the given packages (a no-op
# for those already installed).
install_packages() {
  echo "==> installing system packages: $*"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

require_cargo() {
  if ! command -v cargo >/dev/null 2>&1; then
    echo "Rust is not installed. Install it with rustup (https://rustup.rs), then run this again:" >&2
    echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
    exit 1
  fi
}
