// Test helpers: build (hostile) tarballs in memory with tar-stream. Not part of the public API.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { type Header, pack } from 'tar-stream';

export interface FixtureEntry extends Partial<Header> {
  name: string;
  body?: string | Buffer;
}

/** A tar of `entries` (files by default), as one buffer. */
export async function makeTar(entries: FixtureEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of p) chunks.push(chunk as Buffer);
  })();
  for (const { body, ...header } of entries) {
    const isFile = header.type === undefined || header.type === 'file';
    const data = body === undefined ? (isFile ? Buffer.alloc(0) : undefined) : Buffer.from(body);
    await new Promise<void>((resolve, reject) => {
      const cb = (error?: Error | null) => (error ? reject(error) : resolve());
      const h = { type: 'file' as const, mode: 0o644, mtime: new Date(1_600_000_000_000), ...header };
      if (data !== undefined) p.entry({ ...h, size: data.length }, data, cb);
      else p.entry(h, cb);
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function makeTarGz(entries: FixtureEntry[]): Promise<Buffer> {
  return gzipSync(await makeTar(entries));
}

export function streamOf(buffer: Buffer, chunkSize = 4096): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < buffer.length; i += chunkSize) chunks.push(buffer.subarray(i, i + chunkSize));
  return Readable.from(chunks);
}

/** A temporary directory and its removal. */
export function tempDir(prefix = 'box-image-test-'): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
