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
 * Then, side by side in the same run, what bridge networking costs one `run --rm busybox true`:
 * box with its default network minus box with `--network none` (target <= 15 ms), and podman
 * (runc, netavark on its default network) the same way. podman runs in a network namespace the
 * bench makes (`nsenter --net`; `ip netns exec` would hide the cgroup mounts), so netavark's bridge, iptables rules and ip_forward go with it;
 * the namespace's cost is in both of podman's runs and cancels out. podman gets the image from
 * `box save`, its storage in a temporary directory (vfs).
 *
 * Usage: pnpm bench, or `node bench/network.bench.mjs` in apps/e2e, as root.
 * Exit status: 0 when every start succeeded (target met or not), 1 otherwise or when something
 * was left behind (containers, the network's bridge, box's firewall chains for it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { median, positiveInteger, removeClientCgroups, removeRootNetworks, run } from './lib.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOX_JS = join(REPO, 'apps/cli/dist/box.js');
const N = positiveInteger('BENCH_NETWORK_CONTAINERS', 50, 'network bench');
const ROUNDS = positiveInteger('BENCH_NETWORK_ROUNDS', 10, 'network bench');
const TARGET = 1.5;
const COST_TARGET_MS = 15;
const PODMAN_NETNS = `box-bench-podman-${process.pid}`;

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
  // First, with no other container running in the root (each box command costs more with every
  // running container: see the bench README).
  compareWithPodman();
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
  cleanUpPodman();
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

/** Per-container cost of bridge networking, box and podman+netavark in the same rounds. */
function compareWithPodman() {
  const conf = join(root, 'containers.conf');
  // This host's hard limits (root lacks CAP_SYS_RESOURCE), cgroupfs, no event log (machine notes).
  writeFileSync(
    conf,
    '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n',
  );
  const podmanEnv = { ...process.env, CONTAINERS_CONF: conf };
  const podman = podmanArgv();
  run('ip', ['netns', 'add', PODMAN_NETNS]);
  run('ip', ['-n', PODMAN_NETNS, 'link', 'set', 'lo', 'up']);
  const archive = join(root, 'busybox.tar');
  box(['save', 'busybox', '-o', archive]);
  run(podman[0], [...podman.slice(1), 'load', '-i', archive], { env: podmanEnv });
  const contenders = [
    {
      name: 'box run --rm busybox true',
      argv: [process.execPath, BOX_JS, 'run', '--rm', 'busybox', 'true'],
      env,
    },
    {
      name: 'box run --rm --network none',
      argv: [process.execPath, BOX_JS, 'run', '--rm', '--network', 'none', 'busybox', 'true'],
      env,
    },
    {
      name: 'podman run --rm busybox true',
      argv: [...podman, 'run', '--rm', 'busybox', 'true'],
      env: podmanEnv,
    },
    {
      name: 'podman run --rm --network none',
      argv: [...podman, 'run', '--rm', '--network', 'none', 'busybox', 'true'],
      env: podmanEnv,
    },
  ];
  const times = contenders.map(() => []);
  // One warm-up round, then ROUNDS rounds with the contenders interleaved.
  for (let round = 0; round <= ROUNDS; round++) {
    for (const [i, c] of contenders.entries()) {
      const start = performance.now();
      run(c.argv[0], c.argv.slice(1), { env: c.env });
      if (round > 0) times[i].push(performance.now() - start);
    }
  }
  const medians = times.map(median);
  console.log('');
  console.log(`bridge networking per container, ${ROUNDS} rounds (median):`);
  for (const [i, c] of contenders.entries())
    console.log(`${c.name.padEnd(34)} ${medians[i].toFixed(1).padStart(8)} ms`);
  const boxCost = medians[0] - medians[1];
  const podmanCost = medians[2] - medians[3];
  console.log(
    `box: default network - none = ${boxCost.toFixed(1)} ms (target <= ${COST_TARGET_MS}): ${boxCost <= COST_TARGET_MS ? 'met' : 'MISSED'}`,
  );
  console.log(`podman+netavark: default network - none = ${podmanCost.toFixed(1)} ms`);
  console.log(`box / podman+netavark (network cost) = ${(boxCost / podmanCost).toFixed(3)}`);
}

/** podman in the bench's network namespace, its storage in the temp root. */
function podmanArgv() {
  const dir = join(root, 'podman');
  const storage = ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs'];
  return ['nsenter', `--net=/run/netns/${PODMAN_NETNS}`, 'podman', ...storage];
}

/** podman's containers, images and storage, and the namespace holding netavark's bridge and rules. */
function cleanUpPodman() {
  if (existsSync(join(root, 'podman'))) {
    const [command, ...args] = podmanArgv();
    spawnSync(command, [...args, 'rm', '-af'], { stdio: 'ignore' });
    spawnSync(command, [...args, 'rmi', '-af'], { stdio: 'ignore' });
  }
  spawnSync('ip', ['netns', 'del', PODMAN_NETNS], { stdio: 'ignore' });
  removeClientCgroups('libpod_parent');
}
