import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonFileLogger } from './logs.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-logs-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const mode = (path: string) => statSync(path).mode & 0o7777;

describe('json-file logs', () => {
  it('are readable by their owner only, rotated files too', () => {
    const path = join(dir, 'json.log');
    const logger = new JsonFileLogger(path, { maxSize: 64, maxFiles: 3 });
    for (let i = 0; i < 5; i++) logger.write('stdout', `secret line ${i}\n`);
    logger.close();
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['json.log', 'json.log.1', 'json.log.2']);
    for (const file of files) expect({ file, mode: mode(join(dir, file)) }).toEqual({ file, mode: 0o600 });
  });

  it('closes a log an older version made readable by others', () => {
    const path = join(dir, 'json.log');
    writeFileSync(path, '');
    chmodSync(path, 0o644);
    new JsonFileLogger(path).close();
    expect(mode(path)).toBe(0o600);
  });
});
