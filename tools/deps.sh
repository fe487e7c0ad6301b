#!/usr/bin/env bash
# Install the Debian packages profd needs to build, test and run the demo. Idempotent: packages
# already installed are not touched, and apt-get runs only when something is missing.
set -euo pipefail

pkgs=(
	make gcc g++ clang llvm pkg-config bpftool
	libclang-rt-14-dev
	libbpf-dev libelf-dev libdw-dev elfutils libiberty-dev
	libdebuginfod1 xz-utils
	libprotobuf-c-dev protobuf-c-compiler zlib1g-dev libdeflate-dev
	libcriterion-dev
	libsystemd-dev libmicrohttpd-dev libgnutls28-dev libcurl4-openssl-dev dpkg-dev
	curl openssl
	golang-go golang-github-google-pprof-dev
	gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user gdb-multiarch
	util-linux procps strace
	linux-perf time
	python3.11 libpython3.11-dev
	nodejs
	rustc
)
# npm installs speedscope for its importer (tests). A nodejs from elsewhere (NodeSource)
# brings its own npm and conflicts with Debian's package: only ask for it when npm is missing.
if ! command -v npm >/dev/null 2>&1; then
	pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
