/**
 * What the bench scripts share: running a command that must succeed, reading numeric settings,
 * finding runc, medians and percentiles, the table of targets, the clean-up's problem list, and
 * the way a bench is interrupted and exits.
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

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Prints the figures against their targets ({ figure, value, target, met }), one row each. */
export function printTargets(rows) {
  const fw = Math.max(...rows.map((r) => r.figure.length));
  const vw = Math.max(...rows.map((r) => r.value.length));
  const tw = Math.max(...rows.map((r) => r.target.length));
  console.log('');
  console.log(`${'figure'.padEnd(fw)}  ${'value'.padStart(vw)}  ${'target'.padEnd(tw)}  result`);
  for (const r of rows) {
    console.log(
      `${r.figure.padEnd(fw)}  ${r.value.padStart(vw)}  ${r.target.padEnd(tw)}  ${r.met ? 'met' : 'MISSED'}`,
    );
  }
}

/**
 * A clean-up's problem list and `attempt(what, fn)`, which runs one of its steps and records the
 * step's failure as a problem, so that one failing step does not stop the others.
 */
export function problemList() {
  const problems = [];
  const attempt = async (what, fn) => {
    try {
      await fn();
    } catch (error) {
      problems.push(`${what}: ${error.message}`);
    }
  };
  return { problems, attempt };
}

/** Unmounts (lazily, deepest first) what is still mounted at or under `dir`; each is a problem. */
export function unmountUnder(dir, problems) {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point) => point === dir || point?.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) {
    problems.push(`mount ${point} was left behind`);
    run('umount', ['-l', point]);
  }
}

let interrupted = false;

/** Whether Ctrl-C (or SIGTERM) asked the bench to stop after the current contender. */
export const isInterrupted = () => interrupted;

/**
 * Runs a bench's main (which resolves to its exit status) and exits with it. A first Ctrl-C stops
 * after the current contender and cleans up; a second one exits at once. The exit is explicit: a
 * library container's watched process may keep the loop alive.
 */
export async function runBench(main) {
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      if (interrupted) process.exit(130);
      interrupted = true;
    });
  }
  process.exit(
    await main().catch((error) => {
      console.error(`bench: ${error.message}`);
      return 1;
    }),
  );
}
