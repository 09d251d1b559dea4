/**
 * What the bench scripts share: running a command that must succeed, reading numeric settings,
 * finding runc, medians and percentiles.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** spawnSync that throws, with the command's stderr, unless the command exits 0. */
export function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
    ...options,
  });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    const how = result.signal ? `signal ${result.signal}` : `exit code ${result.status}`;
    const stderr = result.stderr ? `: ${result.stderr.trim()}` : '';
    throw new Error(`${[command, ...args].join(' ')} failed with ${how}${stderr}`);
  }
  return result;
}

/** The positive integer in environment variable `name`, or `fallback`; exits 2 with one line otherwise. */
export function positiveInteger(name, fallback, who) {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${who}: ${name} must be a positive integer, not "${value}"`);
    process.exit(2);
  }
  return n;
}

/** Finds runc on PATH, installing Debian's package when it is missing. */
export function ensureRunc() {
  const probe = () => spawnSync('runc', ['--version'], { encoding: 'utf8' });
  let version = probe();
  if (version.error?.code === 'ENOENT') {
    console.error('bench: runc not found, installing the Debian package "runc"');
    const apt = {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    };
    if (spawnSync('apt-get', ['install', '-y', '-qq', 'runc'], apt).status !== 0) {
      run('apt-get', ['update', '-qq'], apt);
      run('apt-get', ['install', '-y', '-qq', 'runc'], apt);
    }
    version = probe();
  }
  if (version.error || version.status !== 0) {
    throw new Error(`runc does not run: ${version.error?.message ?? version.stderr}`);
  }
  return version.stdout.split('\n')[0].replace(/^runc version /, '');
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile. */
export function percentile(values, p) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
}

/**
 * Removes a bench's temporary state root's networks from the host (the default network's
 * bridge and box's firewall rules for it), through the engine as an embedder done with a root.
 */
const IP_FORWARD = '/proc/sys/net/ipv4/ip_forward';
/** The host's ip_forward before the bench: box turns it on for its networks, as docker does. */
const ipForwardBefore = readFileSync(IP_FORWARD, 'utf8').trim();

export async function removeRootNetworks(root) {
  const { createEngine } = await import('@box/runtime');
  const noImages = {
    resolve: async () => {
      throw new Error('no images here');
    },
    hold: async () => undefined,
    release: async () => undefined,
  };
  await createEngine({ root, images: noImages }).removeAllNetworks();
  // With no network of any box root left, box's table (its forwarding restriction, kept while
  // ip_forward is on) goes, and ip_forward is as it was before the bench.
  const table = spawnSync('nft', ['list', 'table', 'ip', 'box'], { encoding: 'utf8' });
  if (table.status !== 0 || !/chain (net|ctr)-/.test(table.stdout)) {
    spawnSync('nft', ['delete', 'table', 'ip', 'box'], { stdio: 'ignore' });
    writeFileSync(IP_FORWARD, ipForwardBefore);
  }
}

/** Removes the (empty) cgroups a peer (podman's conmon) made for itself under `name` on every hierarchy. */
export function removeClientCgroups(name) {
  for (const hierarchy of readdirSync('/sys/fs/cgroup')) {
    const top = join('/sys/fs/cgroup', hierarchy, name);
    if (!existsSync(top)) continue;
    for (const entry of readdirSync(top, { withFileTypes: true }))
      if (entry.isDirectory()) rmdirSync(join(top, entry.name));
    rmdirSync(top);
  }
}
