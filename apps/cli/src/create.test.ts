import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEnvFlags, parseLabels } from './create-flags.js';

describe('parseEnvFlags (docker -e)', () => {
  it('keeps K=V, copies a bare K from the host, drops an unset one', () => {
    process.env.BOX_TEST_FROM_HOST = 'host value';
    delete process.env.BOX_TEST_UNSET;
    expect(parseEnvFlags(['A=1', 'B=', 'C=x=y', 'BOX_TEST_FROM_HOST', 'BOX_TEST_UNSET'])).toEqual([
      'A=1',
      'B=',
      'C=x=y',
      'BOX_TEST_FROM_HOST=host value',
    ]);
  });

  it.each(['=x', '', 'A B=1'])('rejects %j', (value) => {
    expect(() => parseEnvFlags([value])).toThrow('invalid environment variable');
  });
});

describe('parseLabels (docker --label-file, then --label)', () => {
  it('K=V and a bare K (empty value); files first, a later key wins; comments and blank lines skipped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'box-labels-'));
    try {
      const file = join(dir, 'labels');
      writeFileSync(file, '# team labels\n\n  tier=web\nowner=a=b\nbare\nwins=file\n');
      process.env.bare = 'not from the environment';
      expect(parseLabels(['wins=flag', 'flag', 'x= spaced '], [file])).toEqual({
        tier: 'web',
        owner: 'a=b',
        bare: '',
        wins: 'flag',
        flag: '',
        x: ' spaced ',
      });
      expect(() => parseLabels([], [join(dir, 'missing')])).toThrow(
        `open ${join(dir, 'missing')}: no such file or directory`,
      );
    } finally {
      delete process.env.bare;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an empty name or one with a space, as docker', () => {
    expect(() => parseLabels(['=v'])).toThrow(
      `invalid argument "=v" for "-l, --label" flag: invalid label '=v': empty name`,
    );
    expect(() => parseLabels(['a b=c'])).toThrow(
      `invalid argument "a b=c" for "-l, --label" flag: label 'a b' contains whitespaces`,
    );
  });
});
