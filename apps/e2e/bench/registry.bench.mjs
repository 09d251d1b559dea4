#!/usr/bin/env node
/**
 * Registry benchmark: pull and unpack of one image from a registry on 127.0.0.1, box against
 * its peers in the same run.
 *
 * The image: BENCH_PULL_LAYERS (default 5) gzip layers of BENCH_PULL_MB (default 200) MB in all,
 * files of text-like data (compressible about as much as real layers), built as an OCI layout
 * here and copied into Debian's docker-registry with skopeo. Each round, on empty stores:
 *
 *   box pull            `box pull 127.0.0.1:PORT/bench/image:1` into a new BOX_ROOT (fetch,
 *                       verify, unpack: the image is runnable when it returns)
 *   skopeo + umoci      `skopeo copy docker://… oci:DIR:1` then `umoci unpack --image DIR:1`
 *
 * Figures: the median time of each, their ratio (target: box >= 1.5x faster), and box's peak
 * RSS (GNU time's %M; target < 150 MB whatever the image size).
 *
 * Usage: pnpm bench, or `node bench/registry.bench.mjs` in apps/e2e, as root.
 * Exit status: 0 when every round succeeded (targets met or not), 1 otherwise.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { median, positiveInteger, run } from './lib.mjs';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BOX_JS = join(REPO, 'apps/cli/dist/box.js');
const LAYERS = positiveInteger('BENCH_PULL_LAYERS', 5, 'registry bench');
const TOTAL_MB = positiveInteger('BENCH_PULL_MB', 200, 'registry bench');
const ROUNDS = positiveInteger('BENCH_PULL_ROUNDS', 3, 'registry bench');
const SPEED_TARGET = 1.5;
const RSS_TARGET_MB = 150;

const top = mkdtempSync(join(tmpdir(), 'box-registry-bench-'));
let registry;
let failed = false;

/** A tar of `files` (name → Buffer), ustar headers by hand: the bench needs no tar tool. */
function tar(files) {
  const blocks = [];
  for (const [name, data] of files) {
    const header = Buffer.alloc(512);
    header.write(name, 0, 100);
    header.write('0000644\0', 100);
    header.write('0000000\0', 108);
    header.write('0000000\0', 116);
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    header.write(
      `${Math.floor(Date.now() / 1000)
        .toString(8)
        .padStart(11, '0')}\0`,
      136,
    );
    header.write('        ', 148);
    header.write('0', 156);
    header.write('ustar\0', 257);
    header.write('00', 263);
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Text-like content: random words, so gzip shrinks it about as much as it does real files. */
function textLike(size) {
  const words = Array.from({ length: 4096 }, () => randomBytes(6).toString('base64url'));
  const parts = [];
  let length = 0;
  while (length < size) {
    const line = `${Array.from({ length: 12 }, () => words[Math.floor(Math.random() * words.length)]).join(' ')}\n`;
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

const sha = (data) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** An OCI layout of the bench image at `dir`, tag 1. */
function buildLayout(dir) {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const put = (data) => {
    const digest = sha(data);
    writeFileSync(join(dir, 'blobs/sha256', digest.slice(7)), data);
    return { digest, size: data.length };
  };
  const layers = [];
  const diffIds = [];
  const perLayer = Math.floor((TOTAL_MB * 1024 * 1024) / LAYERS);
  for (let i = 0; i < LAYERS; i++) {
    const files = [];
    const fileSize = 1024 * 1024;
    for (let f = 0; f * fileSize < perLayer; f++) files.push([`layer${i}/file${f}.txt`, textLike(fileSize)]);
    const raw = tar(files);
    diffIds.push(sha(raw));
    layers.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      ...put(gzipSync(raw, { level: 1 })),
    });
  }
  const config = put(
    Buffer.from(
      JSON.stringify({
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        os: 'linux',
        config: { Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: diffIds },
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers,
      }),
    ),
  );
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': '1' },
        },
      ],
    }),
  );
}

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

async function startRegistry() {
  const port = await freePort();
  const dir = join(top, 'registry');
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/storage\nhttp:\n  addr: 127.0.0.1:${port}\n`,
  );
  const child = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://${host}/v2/`)).ok) return { host, child };
    } catch {}
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`docker-registry did not start on ${host}`);
}

/** Runs a command under GNU time; returns its wall time in ms and peak RSS in MB. */
function timed(argv, env) {
  const start = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { env, encoding: 'utf8' });
  const ms = performance.now() - start;
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr.trim()}`);
  const rssKb = Number(r.stderr.trim().split('\n').at(-1));
  return { ms, rssMb: rssKb / 1024 };
}

try {
  for (const tool of ['docker-registry', 'skopeo', 'umoci'])
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      throw new Error(`${tool} is not installed (scripts/setup.sh installs it)`);
  const layout = join(top, 'layout');
  buildLayout(layout);
  registry = await startRegistry();
  const ref = `${registry.host}/bench/image:1`;
  run('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:1`, `docker://${ref}`]);

  const box = [];
  const peers = [];
  let rss = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const root = join(top, `box-${round}`);
    const a = timed([process.execPath, BOX_JS, 'pull', '-q', ref], { ...process.env, BOX_ROOT: root });
    box.push(a.ms);
    rss = Math.max(rss, a.rssMb);
    rmSync(root, { recursive: true, force: true });

    const oci = join(top, `oci-${round}`);
    const bundle = join(top, `bundle-${round}`);
    const start = performance.now();
    run('skopeo', ['copy', '--src-tls-verify=false', `docker://${ref}`, `oci:${oci}:1`]);
    run('umoci', ['unpack', '--image', `${oci}:1`, bundle]);
    peers.push(performance.now() - start);
    rmSync(oci, { recursive: true, force: true });
    rmSync(bundle, { recursive: true, force: true });
  }
  const boxMs = median(box);
  const peerMs = median(peers);
  const ratio = peerMs / boxMs;
  console.log(
    `box registry bench: ${LAYERS} layers, ${TOTAL_MB} MB unpacked, ${ROUNDS} rounds, node ${process.version}`,
  );
  console.log(`box pull                          ${boxMs.toFixed(0).padStart(8)} ms (median)`);
  console.log(`skopeo copy + umoci unpack        ${peerMs.toFixed(0).padStart(8)} ms (median)`);
  console.log(
    `box is ${ratio.toFixed(2)}x as fast (target >= ${SPEED_TARGET}): ${ratio >= SPEED_TARGET ? 'met' : 'MISSED'}`,
  );
  console.log(
    `box pull peak RSS ${rss.toFixed(0)} MB (target < ${RSS_TARGET_MB}): ${rss < RSS_TARGET_MB ? 'met' : 'MISSED'}`,
  );
} catch (error) {
  failed = true;
  console.error(`registry bench failed: ${error.message}`);
} finally {
  if (registry) {
    const exited = new Promise((r) => registry.child.once('exit', r));
    registry.child.kill('SIGTERM');
    await exited;
  }
  rmSync(top, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
