import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { box, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot();

/** One line on stderr, exit 125, nothing made. */
function expectRejected(args: string[], message: RegExp) {
  const r = box(env.root, ['run', '--rm', ...args]);
  expect(r.code).toBe(125);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  expect(r.stdout).toBe('');
}

describe('box run rejects bad input with one line and exit 125', () => {
  it('bad -e', () =>
    expectRejected(['-e', '=oops', 'busybox', 'true'], /invalid environment variable: "=oops"/));
  it('bad -u', () => {
    expectRejected(['-u', 'nosuchuser', 'busybox', 'true'], /unable to find user nosuchuser/);
    expectRejected(['-u', '0:nosuchgroup', 'busybox', 'true'], /unable to find group nosuchgroup/);
    expectRejected(['-u', '1:2:3', 'busybox', 'true'], /invalid user "1:2:3"/);
  });
  it('bad -w', () =>
    expectRejected(['-w', 'relative/dir', 'busybox', 'true'], /needs to be an absolute path/));
  it('bad --hostname', () =>
    expectRejected(['--hostname', 'not a host', 'busybox', 'true'], /invalid hostname/));
  it('bad --name', () => {
    expectRejected(['--name', '-x', 'busybox', 'true'], /Invalid container name/);
    expectRejected(
      ['--name', 'a'.repeat(3000), 'busybox', 'true'],
      /Invalid container name: longer than 253/,
    );
  });
  it('bad image reference', () => expectRejected(['Not/A:Valid:Ref', 'true'], /invalid reference format/));
  // --pull never: a missing image is not looked for on docker.io (tests reach no outside host).
  it('unknown image', () =>
    expectRejected(['--pull', 'never', 'nosuch', 'true'], /Unable to find image 'nosuch:latest' locally/));
  it('a working directory that is a file', () => {
    const r = box(env.root, ['run', '--rm', '-w', '/etc/passwd', 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim()).toBe(
      'box: failed to start the container: chdir /etc/passwd: ENOTDIR (not a directory)',
    );
  });

  it('a name already taken', () => {
    const first = box(env.root, ['run', '--name', 'taken', 'busybox', 'true']);
    expect(first.code).toBe(0);
    expect(readdirSync(join(env.root, 'containers'))).toHaveLength(1);
    const r = box(env.root, ['run', '--rm', '--name', 'taken', 'busybox', 'true']);
    expect(r.code).toBe(125);
    expect(r.stderr).toMatch(/The container name "\/taken" is already in use/);
    // The first container's record is untouched; box rm removes it.
    expect(readdirSync(join(env.root, 'containers'))).toHaveLength(1);
    expect(box(env.root, ['rm', 'taken']).code).toBe(0);
  });
});

describe('refused operations on a container: one line, exit 125, nothing changed', () => {
  it('exec into a stopped container', () => {
    expect(box(env.root, ['run', '--name', 'stopped', 'busybox', 'true']).code).toBe(0);
    const r = box(env.root, ['exec', 'stopped', 'touch', '/made']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/is not running/);
    // Nothing was made in it.
    const out = join(env.root, 'made-copy');
    expect(box(env.root, ['cp', 'stopped:/made', out]).stderr).toMatch(/Could not find the file \/made/);
    expect(box(env.root, ['rm', 'stopped']).code).toBe(0);
  });

  it('cp to a container directory that does not exist', () => {
    expect(box(env.root, ['run', '--name', 'target', 'busybox', 'true']).code).toBe(0);
    const r = box(env.root, ['cp', '/etc/hostname', 'target:/no/such/dir/file']);
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(box(env.root, ['rm', 'target']).code).toBe(0);
  });
});
