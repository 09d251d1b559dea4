import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatIdMap, writeIdMaps } from './idmap.js';
import { JOIN_ORDER, NAMESPACE_FILES, NAMESPACE_FLAGS, namespacesOf } from './types.js';

describe('formatIdMap', () => {
  it('writes one "container host size" line per mapping', () => {
    expect(
      formatIdMap([
        { containerID: 0, hostID: 100000, size: 1 },
        { containerID: 1, hostID: 200001, size: 65535 },
      ]),
    ).toBe('0 100000 1\n1 200001 65535\n');
    expect(formatIdMap([])).toBe('');
  });
});

describe('writeIdMaps', () => {
  let proc: string;
  beforeEach(() => {
    proc = mkdtempSync(join(tmpdir(), 'box-ns-proc-'));
    mkdirSync(join(proc, '42'));
  });
  afterEach(() => rmSync(proc, { recursive: true, force: true }));

  it('writes uid_map and gid_map under the given proc root', () => {
    writeIdMaps(
      42,
      [{ containerID: 0, hostID: 100000, size: 65536 }],
      [{ containerID: 0, hostID: 200000, size: 10 }],
      proc,
    );
    expect(readFileSync(join(proc, '42/uid_map'), 'utf8')).toBe('0 100000 65536\n');
    expect(readFileSync(join(proc, '42/gid_map'), 'utf8')).toBe('0 200000 10\n');
  });

  it('writes nothing for empty mappings', () => {
    writeIdMaps(42, [], [], proc);
    expect(readdirSync(join(proc, '42'))).toEqual([]);
  });
});

describe('namespace tables', () => {
  it('lists the /proc/PID/ns files of a process in join order (user first, mount last)', () => {
    expect(namespacesOf(7)).toEqual([
      { type: 'user', path: '/proc/7/ns/user' },
      { type: 'ipc', path: '/proc/7/ns/ipc' },
      { type: 'uts', path: '/proc/7/ns/uts' },
      { type: 'network', path: '/proc/7/ns/net' },
      { type: 'pid', path: '/proc/7/ns/pid' },
      { type: 'cgroup', path: '/proc/7/ns/cgroup' },
      { type: 'mount', path: '/proc/7/ns/mnt' },
    ]);
    expect(namespacesOf(7, ['uts'])).toEqual([{ type: 'uts', path: '/proc/7/ns/uts' }]);
  });

  it('covers every kind, each with a distinct CLONE_NEW* flag and a file this kernel has', () => {
    const kinds = Object.keys(NAMESPACE_FLAGS);
    expect(new Set(JOIN_ORDER)).toEqual(new Set(kinds));
    expect(new Set(Object.values(NAMESPACE_FLAGS)).size).toBe(kinds.length);
    const files = readdirSync('/proc/self/ns');
    for (const file of Object.values(NAMESPACE_FILES)) expect(files).toContain(file);
  });
});
