import { chmodSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { trustedCache } from './code-cache.js';

describe('trustedCache', () => {
  let dir: string;
  let chunk: string;
  let cache: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'box-code-cache-'));
    chunk = join(dir, 'chunk-A.js');
    cache = join(dir, 'chunk-A.cache');
    writeFileSync(chunk, 'module.exports = 1;\n', { mode: 0o644 });
    writeFileSync(cache, 'cached bytes', { mode: 0o644 });
    // As the build leaves them: the cache written after its chunk.
    utimesSync(chunk, new Date(1_000_000), new Date(1_000_000));
    utimesSync(cache, new Date(2_000_000), new Date(2_000_000));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("is the build's cache", () => {
    expect(trustedCache(chunk)?.toString()).toBe('cached bytes');
  });

  it('reads each cache whole into the one buffer it reuses, growing it for a large one', () => {
    const large = Buffer.alloc(600 << 10, 7);
    large.write('end', large.length - 3);
    const other = join(dir, 'chunk-B.js');
    writeFileSync(other, 'module.exports = 3;\n', { mode: 0o644 });
    writeFileSync(join(dir, 'chunk-B.cache'), large, { mode: 0o644 });
    utimesSync(other, new Date(1_000_000), new Date(1_000_000));
    expect(trustedCache(chunk)?.toString()).toBe('cached bytes');
    expect(trustedCache(other)?.equals(large)).toBe(true);
    expect(trustedCache(chunk)?.toString()).toBe('cached bytes');
  });

  it('is not used once the chunk changed after it (even to the same length)', () => {
    writeFileSync(chunk, 'module.exports = 2;\n');
    expect(trustedCache(chunk)).toBeUndefined();
  });

  it('is not used when others may write it', () => {
    chmodSync(cache, 0o664);
    expect(trustedCache(chunk)).toBeUndefined();
    chmodSync(cache, 0o646);
    expect(trustedCache(chunk)).toBeUndefined();
  });

  it('is not there: the chunk loads from source', () => {
    rmSync(cache);
    expect(trustedCache(chunk)).toBeUndefined();
  });
});
