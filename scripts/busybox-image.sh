#!/usr/bin/env bash
# Creates the local default image "busybox" in $BOX_ROOT/images (default /var/lib/box)
# from Debian's busybox-static, with no registry. Idempotent.
set -euo pipefail
root=${BOX_ROOT:-/var/lib/box}
image=$root/images/busybox
if [ -x "$image/rootfs/bin/busybox" ] && [ -f "$image/config.json" ]; then
  exit 0
fi
if ! [ -x /bin/busybox ] || ! /bin/busybox --help 2>&1 | head -1 | grep -q static 2>/dev/null && ! dpkg -s busybox-static >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
tmp=$(mktemp -d "$root/images/.busybox.XXXXXX" 2>/dev/null || { mkdir -p "$root/images"; mktemp -d "$root/images/.busybox.XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
rootfs=$tmp/rootfs
mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,tmp,root,home,var,usr/bin,usr/sbin,sbin}
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
cat > "$tmp/config.json" <<'CONFIG'
{
  "architecture": "amd64",
  "os": "linux",
  "config": {
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "Cmd": ["sh"]
  }
}
CONFIG
rm -rf "$image"
mkdir -p "$root/images"
chmod 711 "$root" "$root/images"
mv "$tmp" "$image"
trap - EXIT
echo "box: image busybox created in $image"
