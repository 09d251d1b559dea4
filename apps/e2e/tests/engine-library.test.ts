/**
 * The engine as a library: a program that uses only @box/runtime (and @box/image, @box/unionfs
 * for images) runs a detached container, follows its logs, execs into it, stops and removes it,
 * and the `box` command sees the same container meanwhile.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BoxEnv, box, makeBoxRoot, repoRoot } from '../helpers/box.js';

let env: BoxEnv;
beforeAll(() => {
  env = makeBoxRoot();
});
afterAll(() => env.cleanup());

/** Prints `running ID` once its container runs, then on each line of stdin does one more step. */
const PROGRAM = `
import { createInterface } from 'node:readline';
import { engineImageProvider, openImageStore } from '@box/image';
import { createEngine } from '@box/runtime';
import { overlayWhiteoutHooks } from '@box/unionfs';

const root = process.argv[2];
const store = await openImageStore({ root: root + '/image', ...overlayWhiteoutHooks() });
const engine = createEngine({ root, images: engineImageProvider(store) });
const c = await engine.run({ image: 'busybox', name: 'from-library', command: ['sh', '-c', 'echo first line; sleep 600'] });
for await (const entry of engine.logs(c.id, { follow: true })) if (entry.log === 'first line\\n') break;
console.log('running ' + c.id);
const steps = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
await steps.next();
const exec = await engine.exec(c.id, { command: ['sh', '-c', 'exit 5'] });
console.log('exec ' + (await exec.exited).exitCode);
await engine.stop(c.id, { timeout: 1 });
console.log('stopped ' + (await engine.inspect(c.id)).exitCode);
await engine.remove(c.id);
console.log('removed');
`;

/** A terminal container run and attached in the program's own process (no service): detached, attached again, ended. */
const ATTACH_PROGRAM = `
import { PassThrough, Writable } from 'node:stream';
import { engineImageProvider, openImageStore } from '@box/image';
import { createEngine } from '@box/runtime';
import { overlayWhiteoutHooks } from '@box/unionfs';

const root = process.argv[2];
const store = await openImageStore({ root: root + '/image', ...overlayWhiteoutHooks() });
const engine = createEngine({ root, images: engineImageProvider(store) });
const c = await engine.create({ image: 'busybox', name: 'lib-tty', tty: true, openStdin: true, command: ['sh'] });
let out = '';
const sink = new Writable({ write(chunk, _e, done) { out += chunk; done(); } });
const until = async (text) => { while (!out.includes(text)) await new Promise((r) => setTimeout(r, 50)); };
const first = new PassThrough();
const a = await engine.attach(c.id, { stdin: first, stdout: sink, stderr: sink }, { start: true });
first.write('echo lib-$((2+3))\\n');
await until('lib-5');
first.write('\\u0010');
first.write('\\u0011');
console.log('first ' + JSON.stringify(await a.ended) + ' running=' + (await engine.inspect(c.id)).running);
const second = new PassThrough();
const b = await engine.attach(c.id, { stdin: second, stdout: sink, stderr: sink });
second.write('exit 9\\n');
console.log('second ' + JSON.stringify(await b.ended));
await engine.remove(c.id);
console.log('removed');
`;

describe('a program using the engine', () => {
  it('attaches to a terminal container its own supervisor runs, detaches and attaches again', async () => {
    const script = join(repoRoot, 'apps/e2e', `engine-attach-${process.pid}.mjs`);
    writeFileSync(script, ATTACH_PROGRAM);
    const child = spawn(process.execPath, [script, env.root], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async () => (await lines.next()).value as string;
    try {
      expect(await next()).toBe('first {"detached":true} running=true');
      expect(await next()).toBe('second {"detached":false,"exitCode":9,"oomKilled":false}');
      expect(await next()).toBe('removed');
      expect(box(env.root, ['ps', '-a', '-q']).stdout).toBe('');
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
      rmSync(script, { force: true });
      box(env.root, ['rm', '-f', 'lib-tty']);
    }
  });

  it('runs, follows, execs, stops and removes a container that box ps sees', async () => {
    // In the e2e package, where @box/runtime, @box/image and @box/unionfs resolve.
    const script = join(repoRoot, 'apps/e2e', `engine-library-${process.pid}.mjs`);
    writeFileSync(script, PROGRAM);
    const child = spawn(process.execPath, [script, env.root], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const next = async () => (await lines.next()).value as string;
    try {
      const first = await next();
      expect(first).toMatch(/^running [0-9a-f]{64}$/);
      const id = first.split(' ')[1]!;
      // The same container, through the box command.
      const ps = box(env.root, ['ps', '--format', '{{.ID}} {{.Names}} {{.State}}', '--no-trunc']);
      expect(ps.stdout).toBe(`${id} from-library running\n`);
      expect(box(env.root, ['logs', 'from-library']).stdout).toBe('first line\n');
      expect(box(env.root, ['exec', 'from-library', 'echo', 'from box']).stdout).toBe('from box\n');
      child.stdin!.write('go\n');
      expect(await next()).toBe('exec 5');
      expect(await next()).toBe('stopped 137');
      expect(await next()).toBe('removed');
      expect(box(env.root, ['ps', '-a', '-q']).stdout).toBe('');
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('close', resolve));
      rmSync(script, { force: true });
      box(env.root, ['rm', '-f', 'from-library']);
    }
  });
});
