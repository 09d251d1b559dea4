#!/usr/bin/env bash
# Creates the local default image "busybox" in $BOX_ROOT/images (default /var/lib/box)
# from Debian's busybox-static, with no registry. Idempotent.
set -euo pipefail
root=${BOX_ROOT:-/var/lib/box}
here=$(cd "$(dirname "$0")/.." && pwd)
box() { node "$here/apps/cli/dist/box.js" "$@"; }
if box image inspect busybox:latest >/dev/null 2>&1; then
  exit 0
fi
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/box-busybox.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,tmp,root,home,var,usr/bin,usr/sbin,sbin}
chmod 755 "$rootfs"
chmod 1777 "$rootfs/tmp"
chmod 700 "$rootfs/root"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $("$rootfs/bin/busybox" --list); do
  [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
done
cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
GROUP
# The book's flow: a filesystem tarball imported as an image.
tar --numeric-owner -C "$rootfs" -cf "$tmp/busybox.tar" .
box import --change 'CMD ["sh"]' --message 'busybox from Debian busybox-static' "$tmp/busybox.tar" busybox:latest >/dev/null
echo "box: image busybox imported into $root/image"
