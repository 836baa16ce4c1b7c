#!/usr/bin/env bash
# Install what heapinspect needs to build and to run its tests on Debian 12
# (as root): the compiler and CMake, elfutils and jansson, glibc's debug
# information (libc6-dbg, matching the installed libc6), the tools the
# tests drive (promtool from prometheus checks the OpenMetrics file,
# rsvg-convert from librsvg2-bin renders the plot, postgresql is the real
# pre-forking server of live.postgres), and clang with its libFuzzer
# runtime for the fuzz targets.  Safe to run again.
set -euo pipefail
if [[ $(id -u) -ne 0 ]]; then
	echo "setup-debian.sh: run as root (it installs Debian packages)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential cmake pkg-config clang libclang-rt-14-dev \
	libdw-dev libelf-dev libjansson-dev \
	libc6-dbg \
	python3 util-linux libjemalloc2 \
	prometheus librsvg2-bin postgresql \
	debuginfod libarchive-tools \
	apt dpkg-dev binutils tar ca-certificates debian-archive-keyring
