#!/usr/bin/env bash
# Sets up a fresh Debian machine (as root) to build and run box: system packages,
# pnpm, dependencies, a build, and the local busybox image. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v busybox >/dev/null 2>&1 || need_apt+=(busybox-static)
command -v script >/dev/null 2>&1 || need_apt+=(util-linux)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# Bridge networks: NAT and published ports through nft (@box/network's firewall).
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need_apt+=(nftables)
command -v as >/dev/null 2>&1 || need_apt+=(binutils)
# The e2e tests build a static probe program (apps/e2e/fixtures/probe.c).
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
# The seccomp syscall tables are checked against the kernel headers.
[ -f /usr/include/x86_64-linux-gnu/asm/unistd_64.h ] || need_apt+=(linux-libc-dev)
command -v tar >/dev/null 2>&1 || need_apt+=(tar)
# Real peers for the image interop tests and the benchmarks.
command -v skopeo >/dev/null 2>&1 || need_apt+=(skopeo)
command -v umoci >/dev/null 2>&1 || need_apt+=(umoci)
# @box/image's registry tests: a real registry, and bcrypt htpasswd files for its basic auth.
command -v docker-registry >/dev/null 2>&1 || need_apt+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need_apt+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v getfattr >/dev/null 2>&1 || need_apt+=(attr)
command -v runc >/dev/null 2>&1 || need_apt+=(runc)
# Rootless box: newuidmap/newgidmap map a user's /etc/subuid range (looked for in fixed dirs).
[ -x /usr/bin/newuidmap ] && [ -x /usr/bin/newgidmap ] || need_apt+=(uidmap)
# --network slirp4netns (box looks for it in fixed directories, not in PATH).
[ -x /usr/bin/slirp4netns ] || need_apt+=(slirp4netns)
# A rootless container's overlay where the kernel refuses overlayfs in a user namespace.
[ -x /usr/bin/fuse-overlayfs ] || need_apt+=(fuse-overlayfs)
# The clients that drive box-runtime in the e2e tests.
command -v podman >/dev/null 2>&1 || need_apt+=(podman)
command -v containerd >/dev/null 2>&1 || need_apt+=(containerd)
if [ "${#need_apt[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# Rootless containers' slirp4netns opens /dev/net/tun as the user. Debian's udev rules make it
# 0666 (the kernel lets a tun device be made only in a network namespace its opener is admin of);
# machines without udev leave it 0600.
if [ -c /dev/net/tun ] && [ "$(stat -c %a /dev/net/tun)" != 666 ]; then chmod 0666 /dev/net/tun; fi
# fuse-overlayfs's container opens /dev/fuse as the user: 0666 by Debian's udev rules too.
if [ -c /dev/fuse ] && [ "$(stat -c %a /dev/fuse)" != 666 ]; then chmod 0666 /dev/fuse; fi
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "12.4.2" ]; then
  npm i -g pnpm@12.4.2 >/dev/null
fi
pnpm install --frozen-lockfile
pnpm build
bash scripts/busybox-image.sh
