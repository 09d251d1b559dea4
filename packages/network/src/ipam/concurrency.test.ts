/**
 * Many processes allocating on one pool at once (with the built package: run after a build).
 * Each child opens the pools, says it is ready, waits for the word, then asks for two
 * addresses: 20 children, 40 requests, 29 addresses in a /27 (less the gateway). Every address
 * must go to one container only, and the 11 requests left over must fail as exhausted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { openIpam } from './ipam.js';

const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));
const CHILDREN = 20;

let top = '';
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await Promise.all(
    children.map((child) =>
      child.exitCode === null && child.signalCode === null
        ? new Promise((resolve) => child.once('exit', resolve))
        : null,
    ),
  );
  children.length = 0;
  if (top) rmSync(top, { recursive: true, force: true });
});

interface Outcome {
  id: string;
  address?: string;
  code?: string;
  message?: string;
}

it(`${CHILDREN} processes allocating at once never share an address, and the rest fail as exhausted`, async () => {
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: build @box/network before its tests`);
  top = mkdtempSync(join(tmpdir(), 'box-ipam-race-'));
  const dir = join(top, 'networks');
  openIpam(dir).createPool('race', { subnet: '10.99.0.0/27' });

  const script = `
    import { openIpam } from ${JSON.stringify(DIST)};
    const ipam = openIpam(${JSON.stringify(dir)}, { lockTimeoutMs: 30000 });
    process.stdout.write('ready\\n');
    process.stdin.once('data', () => {
      const outcomes = [];
      for (const suffix of ['a', 'b']) {
        const id = 'c' + process.argv[1] + suffix;
        try {
          outcomes.push({ id, address: ipam.allocate('race', id) });
        } catch (error) {
          outcomes.push({ id, code: error.code, message: error.message });
        }
      }
      process.stdout.write(JSON.stringify(outcomes) + '\\n');
      process.exit(0);
    });`;
  const outputs: Array<Promise<string>> = [];
  const ready: Array<Promise<void>> = [];
  for (let n = 0; n < CHILDREN; n++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, String(n)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(child);
    let out = '';
    ready.push(
      new Promise((resolve) => {
        child.stdout!.on('data', (chunk) => {
          out += chunk;
          if (out.startsWith('ready\n')) resolve();
        });
      }),
    );
    outputs.push(
      new Promise((resolve, reject) => {
        child.once('exit', (code) =>
          code === 0 ? resolve(out.slice('ready\n'.length)) : reject(new Error(`child ${n} exited ${code}`)),
        );
      }),
    );
  }
  await Promise.all(ready);
  for (const child of children) child.stdin!.write('go\n');
  const outcomes: Outcome[] = (await Promise.all(outputs)).flatMap((text) => JSON.parse(text));

  expect(outcomes).toHaveLength(2 * CHILDREN);
  const granted = outcomes.filter((outcome) => outcome.address);
  const refused = outcomes.filter((outcome) => !outcome.address);
  expect(granted).toHaveLength(29);
  expect(new Set(granted.map((outcome) => outcome.address)).size).toBe(29);
  expect(granted.map((outcome) => outcome.address)).not.toContain('10.99.0.1');
  expect(refused).toHaveLength(2 * CHILDREN - 29);
  for (const outcome of refused) {
    expect(outcome).toMatchObject({
      code: 'EIPAMFULL',
      message: 'no available addresses on this pool (network race, 10.99.0.0/27: all 29 in use)',
    });
  }
  // The file says what the processes were told.
  const inUse = openIpam(dir).inUse('race');
  expect(Object.fromEntries(inUse)).toEqual(
    Object.fromEntries(granted.map((outcome) => [outcome.id, outcome.address])),
  );
}, 60_000);
