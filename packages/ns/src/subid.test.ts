import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  findIdMapHelper,
  ID_MAP_HELPER_DIRS,
  SubordinateIdError,
  subordinateRange,
  writeIdMapsWithHelpers,
} from './subid.js';

const dir = mkdtempSync(join(tmpdir(), 'box-subid-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('subordinateRange', () => {
  const file = join(dir, 'subuid');
  writeFileSync(
    file,
    'alice:100000:65536\n# a comment\n1005:300000:1000\nbob:x:5\ncarol:400000:0\ncarol:500000:10\n',
  );

  it('finds a user by name, or by uid', () => {
    expect(subordinateRange(file, 'alice', 1000)).toEqual({ start: 100000, count: 65536 });
    expect(subordinateRange(file, 'dave', 1005)).toEqual({ start: 300000, count: 1000 });
  });

  it('skips malformed and empty ranges', () => {
    expect(subordinateRange(file, 'bob', 1001)).toBeUndefined();
    expect(subordinateRange(file, 'carol', 1002)).toEqual({ start: 500000, count: 10 });
  });

  it('is undefined for a user without a line, or without the file', () => {
    expect(subordinateRange(file, 'erin', 1003)).toBeUndefined();
    expect(subordinateRange(join(dir, 'missing'), 'alice', 1000)).toBeUndefined();
  });
});

describe('id map helpers', () => {
  it('are looked for only in the fixed system directories', () => {
    expect(ID_MAP_HELPER_DIRS).toEqual(['/usr/bin', '/bin', '/usr/sbin', '/sbin']);
    const path = findIdMapHelper('newuidmap');
    expect(path === undefined || ID_MAP_HELPER_DIRS.some((d) => path === `${d}/newuidmap`)).toBe(true);
  });

  it('report a refusal as a SubordinateIdError with the helper words', () => {
    // A helper that fails (as newuidmap does for a range the user was not given).
    const helpers = { newuidmap: '/bin/false', newgidmap: '/bin/false' };
    expect(() => writeIdMapsWithHelpers(1, [{ containerID: 0, hostID: 0, size: 1 }], [], helpers)).toThrow(
      SubordinateIdError,
    );
  });
});
