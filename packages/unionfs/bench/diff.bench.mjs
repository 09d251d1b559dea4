// Times diffLayer of a directory of 10k small changed files against GNU `tar -c` of the same
// directory, interleaved over 3 rounds, and prints the medians and the ratio (target ≤ 1.2).
// Run after a build, as root: `pnpm --filter @box/unionfs build && node packages/unionfs/bench/diff.bench.mjs`.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { diffLayer } from '../dist/index.js';

const FILES = Number(process.env.BENCH_FILES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

function makeTree(root) {
  // 100 directories of 100 files of 1–4 KiB, like a container that rewrote a package's files.
  const perDir = 100;
  for (let d = 0; d < Math.ceil(FILES / perDir); d++) {
    const dir = join(root, 'usr', 'lib', `pkg${String(d).padStart(3, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir && d * perDir + f < FILES; f++) {
      writeFileSync(join(dir, `file${f}.txt`), Buffer.alloc(1024 + ((d * perDir + f) % 3072), 97 + (f % 26)));
    }
  }
}

function counter() {
  let bytes = 0;
  const sink = new Writable({
    write(chunk, _enc, cb) {
      bytes += chunk.length;
      cb();
    },
  });
  return { sink, bytes: () => bytes };
}

async function timeDiff(root) {
  const start = process.hrtime.bigint();
  const { sink, bytes } = counter();
  await pipeline(diffLayer(root), sink);
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, bytes: bytes() };
}

async function timeTar(root) {
  const start = process.hrtime.bigint();
  const { sink, bytes } = counter();
  const child = spawn('tar', ['-c', '-C', root, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`))));
  });
  await pipeline(child.stdout, sink);
  await exited;
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, bytes: bytes() };
}

const print = (line) => process.stdout.write(`${line}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const root = mkdtempSync(join(tmpdir(), 'box-diff-bench-'));
try {
  makeTree(root);
  await timeDiff(root); // warm the page cache and the JIT for both
  await timeTar(root);
  const diff = [];
  const tar = [];
  for (let round = 0; round < ROUNDS; round++) {
    const d = await timeDiff(root);
    const t = await timeTar(root);
    diff.push(d.ms);
    tar.push(t.ms);
    print(
      `round ${round + 1}: diffLayer ${d.ms.toFixed(1)} ms (${d.bytes} B)  tar -c ${t.ms.toFixed(1)} ms (${t.bytes} B)`,
    );
  }
  const ratio = median(diff) / median(tar);
  print(
    `diff of ${FILES} files: diffLayer ${median(diff).toFixed(1)} ms, tar -c ${median(tar).toFixed(1)} ms, ratio ${ratio.toFixed(2)}× (target ≤ 1.20)`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
