#!/usr/bin/env bash
# Install what heapinspect needs to build and to run its tests on Debian 12
# (as root): the compiler and CMake, elfutils and jansson, glibc's debug
# information (libc6-dbg, matching the installed libc6), the tools the
# tests drive (promtool from prometheus checks the OpenMetrics file,
# rsvg-convert from librsvg2-bin renders the plot, gdb finds a member of
# glibc's malloc state for live.info_checks, gcc-multilib and musl-tools
# build the 32-bit and musl programs live.errors.* must see refused,
# nginx-light is the real service live.call_nginx calls into, postgresql
# the pre-forking server live.postgres reads, strace holds a thread beside
# heapinspect, memcached is a real service to watch), what the install
# tests use (setcap, useradd from passwd, man, zsh, systemd-analyze,
# debootstrap), clang with its libFuzzer runtime for the fuzz targets, and
# for the leak targets valgrind (their truth), g++ and Python's headers and
# setuptools (a C++ target, a CPython extension built the ordinary way).
# Safe to run again.
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
	python3 util-linux libjemalloc2 gdb gcc-multilib musl-tools \
	strace memcached prometheus librsvg2-bin nginx-light postgresql \
	debuginfod libarchive-tools \
	apt dpkg-dev binutils tar ca-certificates debian-archive-keyring \
	libcap2-bin passwd man-db zsh systemd debootstrap \
	valgrind g++ python3-dev python3-setuptools
