/** Helpers for this package's tests (not exported): temp dirs, mounts, tar parsing. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract, type Header } from 'tar-stream';

const made: string[] = [];

/** A new temp dir, removed by cleanupTemp(). */
export function tempDir(prefix = 'box-unionfs-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Unmounts anything still mounted below our temp dirs, then removes them. */
export function cleanupTemp(): void {
  for (const dir of made.splice(0)) {
    for (const target of mountsUnder(dir).reverse()) {
      try {
        execFileSync('umount', ['-l', target]);
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Mount points at or below dir, from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
}

export interface TarEntry {
  header: Header;
  data: Buffer;
}

/** Reads a whole (small) tar stream into entries with tar-stream's parser. */
export async function readTar(stream: Readable): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const ex = extract();
  const done = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, body, next) => {
      const parts: Buffer[] = [];
      body.on('data', (c: unknown) => parts.push(c as Buffer));
      body.on('end', () => {
        entries.push({ header, data: Buffer.concat(parts) });
        next();
      });
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
    stream.on('error', reject);
  });
  stream.pipe(ex);
  await done;
  return entries;
}

/** All bytes of a stream. */
export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}
