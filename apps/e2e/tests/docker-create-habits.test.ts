/**
 * What a docker user gives `run` and `create` (the docker CLI issue), as docker answers it:
 * labels and the filters on them, stop signals and timeouts, missing bind sources and working
 * directories, foreign platforms. One row per habit.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { box, boxOk, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'box-e2e-create-habits-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('--label and --label-file', () => {
  it("labels over the image's: inspect's Config.Labels, ps's {{.Labels}} and {{.Label}}, ps --filter label", () => {
    boxOk(env.root, ['create', '--name', 'label-base', 'busybox', 'true']);
    boxOk(env.root, [
      'commit',
      '-c',
      'LABEL tier=image',
      '-c',
      'LABEL from.image=yes',
      'label-base',
      'labelled:1',
    ]);
    boxOk(env.root, ['rm', 'label-base']);
    const file = join(dir, 'labels');
    writeFileSync(file, '# comment\n\nteam=storage\nbare\nowner=file\n');
    boxOk(env.root, [
      'create',
      '--name',
      'lab-a',
      '--label-file',
      file,
      '--label',
      'owner=flag',
      '-l',
      'tier=web',
      'labelled:1',
      'true',
    ]);
    boxOk(env.root, ['create', '--name', 'lab-b', '--label', 'tier=db', 'busybox', 'true']);
    expect(JSON.parse(boxOk(env.root, ['inspect', '-f', '{{json .Config.Labels}}', 'lab-a']))).toEqual({
      'from.image': 'yes',
      tier: 'web',
      team: 'storage',
      bare: '',
      owner: 'flag',
    });
    expect(boxOk(env.root, ['inspect', '-f', '{{json .Config.Labels}}', 'lab-b'])).toBe('{"tier":"db"}');
    expect(boxOk(env.root, ['ps', '-a', '--filter', 'name=lab-a', '--format', '{{.Labels}}'])).toBe(
      'bare=,from.image=yes,owner=flag,team=storage,tier=web',
    );
    expect(
      boxOk(env.root, ['ps', '-a', '--filter', 'name=lab-', '--format', '{{.Names}} {{.Label "tier"}}'])
        .split('\n')
        .sort(),
    ).toEqual(['lab-a web', 'lab-b db']);
    const names = (...filters: string[]) =>
      boxOk(env.root, ['ps', '-a', '--format', '{{.Names}}', ...filters.flatMap((f) => ['--filter', f])])
        .split('\n')
        .filter(Boolean)
        .sort();
    expect(names('label=tier')).toEqual(['lab-a', 'lab-b']);
    expect(names('label=tier=db')).toEqual(['lab-b']);
    expect(names('label=bare')).toEqual(['lab-a']);
    // Every label filter must match.
    expect(names('label=tier', 'label=team=storage')).toEqual(['lab-a']);
    expect(names('label=tier=db', 'label=team')).toEqual([]);
  });

  it('a label with an empty name or a missing --label-file: one line, exit 125, nothing made', () => {
    const empty = box(env.root, ['create', '--label', '=x', 'busybox', 'true']);
    expect([empty.code, empty.stderr.trim()]).toEqual([
      125,
      `box: invalid argument "=x" for "-l, --label" flag: invalid label '=x': empty name`,
    ]);
    const missing = box(env.root, ['run', '--rm', '--label-file', join(dir, 'nope'), 'busybox', 'true']);
    expect([missing.code, missing.stderr.trim()]).toEqual([
      125,
      `box: open ${join(dir, 'nope')}: no such file or directory`,
    ]);
    expect(boxOk(env.root, ['ps', '-aq'])).toBe('');
  });
});

describe('images --filter', () => {
  it('dangling, label, reference (path.Match), before and since; an unknown key is refused', () => {
    // Three images made one after the other: labelled:1 (above), then two more.
    boxOk(env.root, ['create', '--name', 'img-base', 'busybox', 'true']);
    boxOk(env.root, ['commit', '-c', 'LABEL kind=second', 'img-base', 'second:1']);
    boxOk(env.root, ['commit', '-c', 'LABEL kind=untagged', 'img-base']);
    boxOk(env.root, ['rm', 'img-base']);
    const listed = (...filters: string[]) =>
      boxOk(env.root, [
        'images',
        '--format',
        '{{.Repository}}:{{.Tag}}',
        ...filters.flatMap((f) => ['--filter', f]),
      ])
        .split('\n')
        .filter(Boolean)
        .sort();
    expect(listed('dangling=true')).toEqual(['<none>:<none>']);
    expect(listed('dangling=false')).toEqual(['busybox:latest', 'labelled:1', 'second:1']);
    expect(listed('label=kind')).toEqual(['<none>:<none>', 'second:1']);
    expect(listed('label=kind=second')).toEqual(['second:1']);
    expect(listed('label=tier=image')).toEqual(['labelled:1']);
    expect(listed('reference=*:1')).toEqual(['labelled:1', 'second:1']);
    expect(listed('reference=busy*')).toEqual(['busybox:latest']);
    expect(listed('reference=lab*', 'reference=sec*')).toEqual(['labelled:1', 'second:1']);
    expect(listed('since=labelled:1', 'dangling=false')).toEqual(['second:1']);
    expect(listed('before=second:1')).toEqual(['busybox:latest', 'labelled:1']);
    const bad = box(env.root, ['images', '--filter', 'colour=red']);
    expect([bad.code, bad.stderr.trim()]).toEqual([125, "box: invalid filter 'colour'"]);
  });
});
