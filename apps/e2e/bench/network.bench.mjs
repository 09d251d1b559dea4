#!/usr/bin/env node
/**
 * Network benchmark: what a container's bridge networking costs as a network fills up.
 *
 * One user-defined network; BENCH_NETWORK_CONTAINERS (default 50) detached containers
 * (`box run -d --network bench-net busybox sleep 600`) started one after the other, each start
 * timed. Their networking (an address from the network's pool, a veth pair, eth0's address and
 * route, the peers' /etc/hosts, which grows with every container) must not make the 50th start
 * slower than the first: the figure is the median of the last ten starts over the median of the
 * first ten (target <= 1.5, linear setup), with `box run -d --network none` of the same image
 * timed in the same rounds, as the reference without networking.
 *
 * Usage: pnpm bench, or `node bench/network.bench.mjs` in apps/e2e, as root.
 * Exit status: 0 when every start succeeded (target met or not), 1 otherwise or when something
 * was left behind (containers, the network's bridge, box's firewall chains for it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { median, positiveInteger, removeRootNetworks } from './lib.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOX_JS = join(REPO, 'apps/cli/dist/box.js');
const N = positiveInteger('BENCH_NETWORK_CONTAINERS', 50, 'network bench');
const TARGET = 1.5;

const root = mkdtempSync(join(tmpdir(), 'box-network-bench-'));
const env = { ...process.env, BOX_ROOT: root, BOX_SERVICE_IDLE_MS: '1000' };

function box(args) {
  const r = spawnSync(process.execPath, [BOX_JS, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`box ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

function timed(args) {
  const start = performance.now();
  const id = box(args);
  return { id, ms: performance.now() - start };
}

const ids = [];
let failed = false;
try {
  const setup = spawnSync('bash', [join(REPO, 'scripts/busybox-image.sh')], { env, encoding: 'utf8' });
  if (setup.status !== 0) throw new Error(setup.stderr);
  box(['network', 'create', '--subnet', '10.231.0.0/24', 'bench-net']);
  // Warm: the service started, the network's bridge and rules in place.
  ids.push(timed(['run', '-d', '--network', 'bench-net', 'busybox', 'sleep', '600']).id);
  const withNet = [];
  const without = [];
  for (let i = 0; i < N; i++) {
    const a = timed(['run', '-d', '--network', 'bench-net', 'busybox', 'sleep', '600']);
    ids.push(a.id);
    withNet.push(a.ms);
    const b = timed(['run', '-d', '--network', 'none', 'busybox', 'sleep', '600']);
    ids.push(b.id);
    without.push(b.ms);
  }
  const first = median(withNet.slice(0, 10));
  const last = median(withNet.slice(-10));
  const noneFirst = median(without.slice(0, 10));
  const noneLast = median(without.slice(-10));
  console.log(
    `box network bench: ${N} containers on one network (and ${N} with --network none), node ${process.version}`,
  );
  console.log('                                   first 10 (median)   last 10 (median)');
  console.log(
    `box run -d --network bench-net     ${first.toFixed(1).padStart(10)} ms     ${last.toFixed(1).padStart(10)} ms`,
  );
  console.log(
    `box run -d --network none          ${noneFirst.toFixed(1).padStart(10)} ms     ${noneLast.toFixed(1).padStart(10)} ms`,
  );
  const ratio = last / first;
  console.log('');
  console.log(
    `last 10 / first 10 on the network = ${ratio.toFixed(2)} (target <= ${TARGET}): ${ratio <= TARGET ? 'met' : 'MISSED'}`,
  );
  console.log(
    `network minus none, last 10 = ${(last - noneLast).toFixed(1)} ms; first 10 = ${(first - noneFirst).toFixed(1)} ms`,
  );
} catch (error) {
  failed = true;
  console.error(`network bench failed: ${error.message}`);
} finally {
  for (let i = 0; i < ids.length; i += 20)
    spawnSync(process.execPath, [BOX_JS, 'rm', '-f', ...ids.slice(i, i + 20)], { env });
  const left = spawnSync(process.execPath, [BOX_JS, 'ps', '-aq'], { env, encoding: 'utf8' }).stdout.trim();
  if (left) {
    failed = true;
    console.error(`network bench: containers left behind: ${left.split('\n').length}`);
  }
  try {
    await removeRootNetworks(root);
  } catch (error) {
    failed = true;
    console.error(`network bench: its networks could not be removed: ${error.message}`);
  }
  // The service leaves by itself once idle.
  await new Promise((r) => setTimeout(r, 2500));
  rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
