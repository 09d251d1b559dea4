#!/usr/bin/env node
/**
 * Monitor memory benchmark: what watching detached containers costs the host.
 *
 * Detached containers are children of one box service, which keeps their
 * records, copies their output into logs and records their end. This starts
 * N idle containers (`sleep`) with `box run -d` and reads the service's memory
 * (RSS and PSS from /proc/PID/smaps_rollup) with 1 and with N containers:
 *
 *   per container, marginal   (service(N) - service(1)) / (N - 1)
 *   per container, amortised  service(N) / N
 *
 * side by side with the naive design, one Node.js process per container (an
 * idle `node` process, measured in the same run). Target: <= 2 MB per idle
 * container. The containers' own processes are the workload, not the monitor,
 * and are not counted.
 *
 * Usage: pnpm bench, or `node bench/monitor.bench.mjs` in apps/e2e, as root.
 * Env: BENCH_CONTAINERS (default 50).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOX_JS = join(REPO, 'apps/cli/dist/box.js');
const N = Number(process.env.BENCH_CONTAINERS ?? 50);
const TARGET_MB = 2;

const root = mkdtempSync(join(tmpdir(), 'box-monitor-bench-'));
const env = { ...process.env, BOX_ROOT: root, BOX_SERVICE_IDLE_MS: '1000' };

function box(args) {
  const r = spawnSync(process.execPath, [BOX_JS, ...args], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`box ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

function memoryOf(pid) {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0);
  return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024 };
}

function servicePid() {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmd.includes('system') && cmd.includes('service')) {
        if (readFileSync(`/proc/${entry}/environ`, 'utf8').includes(`BOX_ROOT=${root}`)) return Number(entry);
      }
    } catch {
      // gone
    }
  }
  throw new Error('the box service is not running');
}

const settle = () => new Promise((r) => setTimeout(r, 1500));
const fmt = (mb) => `${mb.toFixed(2)} MB`;

const ids = [];
let naive;
let failed = false;
try {
  const setup = spawnSync('bash', [join(REPO, 'scripts/busybox-image.sh')], { env, encoding: 'utf8' });
  if (setup.status !== 0) throw new Error(setup.stderr);

  ids.push(box(['run', '-d', 'busybox', 'sleep', '600']));
  await settle();
  const service = servicePid();
  const one = memoryOf(service);
  for (let i = 1; i < N; i += 10) {
    const batch = Array.from(
      { length: Math.min(10, N - i) },
      () =>
        new Promise((resolveRun, reject) => {
          const child = spawn(process.execPath, [BOX_JS, 'run', '-d', 'busybox', 'sleep', '600'], { env });
          let out = '';
          child.stdout.on('data', (d) => {
            out += d;
          });
          child.on('close', (code) =>
            code === 0 ? resolveRun(out.trim()) : reject(new Error(`run -d exited ${code}`)),
          );
        }),
    );
    ids.push(...(await Promise.all(batch)));
  }
  await settle();
  if (servicePid() !== service) throw new Error('the service was replaced during the run');
  const many = memoryOf(service);

  // The naive design, measured here: an idle Node.js process per container.
  naive = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await settle();
  const node = memoryOf(naive.pid);

  const marginal = { rss: (many.rss - one.rss) / (N - 1), pss: (many.pss - one.pss) / (N - 1) };
  const amortised = { rss: many.rss / N, pss: many.pss / N };
  console.log(`box monitor bench: ${N} idle detached containers, one box service; node ${process.version}`);
  console.log('                               RSS          PSS');
  console.log(`service, 1 container     ${fmt(one.rss).padStart(10)}   ${fmt(one.pss).padStart(10)}`);
  console.log(
    `service, ${String(N).padEnd(3)} containers  ${fmt(many.rss).padStart(10)}   ${fmt(many.pss).padStart(10)}`,
  );
  console.log(
    `per container, marginal  ${fmt(marginal.rss).padStart(10)}   ${fmt(marginal.pss).padStart(10)}`,
  );
  console.log(
    `per container, amortised ${fmt(amortised.rss).padStart(10)}   ${fmt(amortised.pss).padStart(10)}`,
  );
  console.log(`node process per container ${fmt(node.rss).padStart(8)}   ${fmt(node.pss).padStart(10)}`);
  console.log('');
  console.log(
    `amortised RSS per container = ${fmt(amortised.rss)} (target <= ${TARGET_MB} MB): ${amortised.rss <= TARGET_MB ? 'met' : 'MISSED'}`,
  );
  console.log(`one service / a node process per container = ${(many.rss / (node.rss * N)).toFixed(3)}`);
} catch (error) {
  failed = true;
  console.error(`monitor bench failed: ${error.message}`);
} finally {
  naive?.kill();
  if (ids.length > 0) spawnSync(process.execPath, [BOX_JS, 'rm', '-f', ...ids], { env });
  // The service leaves by itself once idle.
  await new Promise((r) => setTimeout(r, 2500));
  rmSync(root, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
