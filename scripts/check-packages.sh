#!/usr/bin/env bash
# Checks the publishable packages as a user gets them: each one is packed with
# `pnpm pack` (which turns workspace: ranges into real versions) and installed with npm
# into an empty project outside the workspace, where the first ```js snippet of its
# README must run; the CLI is installed globally into a prefix and runs a container.
# Needs root (the snippets start containers) and the npm registry (koffi).
#
# Usage: scripts/check-packages.sh [--no-build]
# Prints one line per check; exits non-zero at the first failure, with its log.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=1
[ "${1:-}" = "--no-build" ] && build=0

work=$(mktemp -d "${TMPDIR:-/tmp}/box-check-packages.XXXXXX")
ip_forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
cleanup() {
  # The temporary roots' networks (the default one of `box run`): bridges and box's firewall
  # chains leave the host; with no box network left, box's table and ip_forward as they were.
  local record bridge kind
  for record in "$work"/*/networks/*.json "$work"/*/*/networks/*.json; do
    [ -f "$record" ] || continue
    bridge=$(sed -n 's/.*"bridge": *"\([^"]*\)".*/\1/p' "$record")
    [ -n "$bridge" ] || continue
    ip link delete "$bridge" 2>/dev/null || true
    for kind in forward postrouting guard; do nft delete chain ip box "net-$bridge-$kind" 2>/dev/null || true; done
  done
  if ! nft list table ip box 2>/dev/null | grep -qE 'chain (net|ctr)-'; then
    nft delete table ip box 2>/dev/null || true
    echo "$ip_forward_before" > /proc/sys/net/ipv4/ip_forward
  fi
  # Containers mount only in their own namespaces, but never let rm cross into a mount.
  local mnt
  for mnt in $(awk -v w="$work" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -l "$mnt" 2>/dev/null || true
  done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
chmod 755 "$work"
tarballs=$work/tarballs
box_root=$work/box-root
log=$work/log
mkdir -p "$tarballs"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

# check NAME COMMAND...: runs COMMAND with its output in $log; prints one line.
check() {
  local name=$1
  shift
  if "$@" >"$log" 2>&1; then
    printf 'ok    %s\n' "$name"
  else
    printf 'FAIL  %s\n' "$name"
    sed 's/^/      /' "$log" | tail -n 40
    exit 1
  fi
}

# expect_output NAME WANT COMMAND...: like check, and stdout must contain WANT.
expect_output() {
  local name=$1 want=$2
  shift 2
  local out
  if out=$("$@" 2>"$log"); then
    if grep -qF -- "$want" <<<"$out"; then
      printf 'ok    %s\n' "$name"
      return
    fi
    printf 'FAIL  %s: output lacks "%s"\n' "$name" "$want"
  else
    printf 'FAIL  %s (exit %s)\n' "$name" "$?"
  fi
  { printf '%s\n' "$out"; cat "$log"; } | sed 's/^/      /' | tail -n 40
  exit 1
}

checked=(@box/sys @box/ns @box/cgroups @box/network @box/image @box/unionfs @box/runtime box)

# For each checked package and each workspace package it needs at run time (its
# "dependencies", transitively): "name directory closure", the closure being itself and
# those it needs, comma-separated. They are all packed, and installed together.
workspace=$(node -e '
  const { readdirSync, readFileSync, existsSync } = require("node:fs");
  const [root, ...checked] = process.argv.slice(1);
  const dirs = {};
  for (const group of ["packages", "apps"]) {
    for (const entry of readdirSync(`${root}/${group}`)) {
      const file = `${root}/${group}/${entry}/package.json`;
      if (existsSync(file)) dirs[JSON.parse(readFileSync(file, "utf8")).name] = `${group}/${entry}`;
    }
  }
  const closure = (name, seen = new Set()) => {
    if (seen.has(name)) return seen;
    const pkg = JSON.parse(readFileSync(`${root}/${dirs[name]}/package.json`, "utf8"));
    for (const dep of Object.keys(pkg.dependencies ?? {})) if (dirs[dep]) closure(dep, seen);
    return seen.add(name);
  };
  const all = new Set(checked.flatMap((name) => [...closure(name)]));
  for (const name of all) console.log(name, dirs[name], [...closure(name)].join(","));
' "$repo" "${checked[@]}")

declare -A dirs needs
to_pack=()
while read -r name dir closure; do
  dirs[$name]=$dir
  needs[$name]=${closure//,/ }
  to_pack+=("$name")
done <<<"$workspace"

if [ "$build" = 1 ]; then
  filters=()
  for name in "${to_pack[@]}"; do filters+=(--filter "$name"); done
  check "build ${to_pack[*]}" pnpm -C "$repo" "${filters[@]}" build
fi

declare -A tgz

packed_ok() {
  local file=$1 manifest listing
  manifest=$(tar -xzOf "$file" package/package.json)
  listing=$(tar -tzf "$file")
  if grep -q '"workspace:' <<<"$manifest"; then
    echo "package.json still has workspace: ranges"
    return 1
  fi
  if ! grep -qx 'package/dist/.*\.js' <<<"$listing"; then
    echo "no dist/*.js in $file (not built?)"
    return 1
  fi
  if grep -q '\.test\.' <<<"$listing"; then
    echo "test files in $file"
    return 1
  fi
}

for name in "${to_pack[@]}"; do
  dir=$repo/${dirs[$name]}
  version=$(node -p "require('$dir/package.json').version")
  file=$tarballs/$(echo "${name#@}" | tr / -)-$version.tgz
  check "pack $name@$version" pnpm -C "$dir" pack --pack-destination "$tarballs"
  tgz[$name]=$file
  check "packed $name: real versions, dist, no tests" packed_ok "$file"
done

check "busybox image in a temporary BOX_ROOT" env BOX_ROOT="$box_root" bash "$repo/scripts/busybox-image.sh"
# A plain root filesystem directory for the runtime's snippet: a static busybox and its applets.
rootfs=$work/rootfs
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys" "$rootfs/etc"
cp /bin/busybox "$rootfs/bin/busybox"
for applet in sh echo true; do ln -s busybox "$rootfs/bin/$applet"; done

# The README's first ```js block, as an ES module.
snippet() {
  awk '/^```js[[:space:]]*$/ { inside = 1; next } inside && /^```/ { exit } inside { print }' "$1"
}

declare -A wants=([@box/sys]="sandbox" [@box/ns]="pid 1 on sandbox" [@box/runtime]="hello from box, exec exited 0"
  [@box/cgroups]="pids in the cgroup: 1 of 100" [@box/network]="eth0 in the container: 198.19.255.2/24, default via 198.19.255.1"
  [@box/image]="docker.io/library/hello:1 has 1 layer"
  [@box/unionfs]="merged view: base.txt top.txt")

# Packages a README's snippet uses besides the package's own closure.
declare -A snippet_needs=([@box/runtime]="@box/image @box/unionfs")

for name in @box/sys @box/ns @box/cgroups @box/network @box/image @box/unionfs @box/runtime; do
  project=$work/project-$(basename "$name")
  mkdir -p "$project"
  files=()
  for dep in ${needs[$name]}; do files+=("${tgz[$dep]}"); done
  for extra in ${snippet_needs[$name]:-}; do
    for dep in ${needs[$extra]}; do files+=("${tgz[$dep]}"); done
  done
  mapfile -t files < <(printf '%s\n' "${files[@]}" | sort -u)
  check "install $name from its tarball in an empty project" bash -c '
    set -euo pipefail
    cd "$1"
    shift
    npm init -y >/dev/null
    npm pkg set type=module
    npm install --no-audit --no-fund "$@"' _ "$project" "${files[@]}"
  snippet "$repo/${dirs[$name]}/README.md" >"$project/example.mjs"
  check "$name README has a js snippet" test -s "$project/example.mjs"
  expect_output "$name README snippet runs" "${wants[$name]}" \
    env -C "$project" BOX_ROOT="$box_root" ROOTFS="$rootfs" timeout 60 node example.mjs
done

prefix=$work/global
check "npm install -g box into a prefix" npm install -g --no-audit --no-fund --prefix "$prefix" "${tgz[box]}"
version=$(node -p "require('$repo/apps/cli/package.json').version")
expect_output "box --version" "box version $version" "$prefix/bin/box" --version

run_ok() {
  local out
  out=$(BOX_ROOT="$box_root" timeout 60 "$prefix/bin/box" run --rm busybox echo ok)
  if [ "$out" != ok ]; then
    printf 'expected "ok", got "%s"\n' "$out"
    return 1
  fi
  if [ -n "$(ls -A "$box_root/containers" 2>/dev/null)" ]; then
    echo "--rm left a container behind: $(ls -A "$box_root/containers")"
    return 1
  fi
}
check "box run --rm busybox echo ok" run_ok
