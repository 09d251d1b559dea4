/**
 * box pull, push, login and logout against a real registry on 127.0.0.1 (Debian's
 * docker-registry), and `run` pulling what it is missing. Images reach the registry with
 * `skopeo copy` from `box save --format oci-archive`; `skopeo inspect` checks what box pushed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { box, boxOk, useBoxRoot } from '../helpers/box.js';
import { type E2eRegistry, startRegistry } from '../helpers/registry.js';

const env = useBoxRoot({ removeContainers: true });
let registry: E2eRegistry;
let dir: string;

function skopeo(args: string[]): string {
  const r = spawnSync('skopeo', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  registry = await startRegistry();
  dir = mkdtempSync(join(tmpdir(), 'box-e2e-pull-'));
  const archive = join(dir, 'busybox.tar');
  boxOk(env.root, ['save', '--format', 'oci-archive', '-o', archive, 'busybox']);
  skopeo([
    'copy',
    '--dest-tls-verify=false',
    `oci-archive:${archive}`,
    `docker://${registry.host}/e2e/busybox:1`,
  ]);
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('box pull', () => {
  it("pulls an image with docker's lines, then finds it up to date; the image runs", () => {
    const ref = `${registry.host}/e2e/busybox:1`;
    const r = box(env.root, ['pull', ref]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`1: Pulling from ${registry.host}/e2e/busybox`);
    // Not a terminal: one line per change of a layer's status, no bars.
    expect(lines).toContainEqual(expect.stringMatching(/^[0-9a-f]{12}: Pull complete$/));
    expect(r.stdout).not.toContain('[=');
    expect(lines.at(-3)).toMatch(/^Digest: sha256:[0-9a-f]{64}$/);
    expect(lines.at(-2)).toBe(`Status: Downloaded newer image for ${ref}`);
    expect(lines.at(-1)).toBe(ref);
    const digest = lines.at(-3)!.slice('Digest: '.length);
    expect(digest).toBe(JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`])).Digest);

    const again = box(env.root, ['pull', ref]);
    expect(again.stdout).toContain(`Status: Image is up to date for ${ref}`);
    expect(box(env.root, ['pull', '-q', ref]).stdout).toBe(`${ref}\n`);

    const inspect = JSON.parse(boxOk(env.root, ['image', 'inspect', ref]))[0];
    expect(inspect.RepoDigests).toContain(`${registry.host}/e2e/busybox@${digest}`);
    expect(boxOk(env.root, ['run', '--rm', ref, 'echo', 'pulled and run'])).toBe('pulled and run');
    boxOk(env.root, ['rmi', ref]);
  });

  it('pull --all-tags fetches every tag of a repository; a tag with -a is refused', () => {
    const repo = `${registry.host}/e2e/alltags`;
    for (const tag of ['x', 'y']) {
      boxOk(env.root, ['tag', 'busybox', `${repo}:${tag}`]);
      boxOk(env.root, ['push', '-q', `${repo}:${tag}`]);
      boxOk(env.root, ['rmi', `${repo}:${tag}`]);
    }
    const r = box(env.root, ['pull', '-a', repo]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.filter((l) => l.endsWith(`: Pulling from ${repo}`))).toEqual([
      `x: Pulling from ${repo}`,
      `y: Pulling from ${repo}`,
    ]);
    expect(lines.at(-1)).toBe(repo);
    const tags = boxOk(env.root, ['images', '--format', '{{.Tag}}', repo]).split('\n').sort();
    expect(tags).toEqual(['x', 'y']);
    const tagged = box(env.root, ['pull', '--all-tags', `${repo}:x`]);
    expect([tagged.code, tagged.stderr.trim()]).toEqual([125, "box: tag can't be used with --all-tags/-a"]);
    const none = box(env.root, ['pull', '-a', `${registry.host}/e2e/nothing-here`]);
    expect(none.code).toBe(125);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toContain('e2e/nothing-here');
    boxOk(env.root, ['rmi', `${repo}:x`, `${repo}:y`]);
  });

  it('run pulls a missing image (--pull missing), never with --pull never', () => {
    const ref = `${registry.host}/e2e/busybox:1`;
    const never = box(env.root, ['run', '--rm', '--pull', 'never', ref, 'true']);
    expect([never.code, never.stderr.trim()]).toEqual([125, `box: Unable to find image '${ref}' locally`]);
    const r = box(env.root, ['run', '--rm', ref, 'echo', 'fetched']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('fetched\n');
    expect(r.stderr).toContain(`Unable to find image '${ref}' locally`);
    expect(r.stderr).toContain(`Status: Downloaded newer image for ${ref}`);
    // Present now: no pull, no word.
    const quiet = box(env.root, ['run', '--rm', ref, 'true']);
    expect([quiet.code, quiet.stderr]).toEqual([0, '']);
    boxOk(env.root, ['rmi', ref]);
  });
});

describe('box push', () => {
  it('pushes a local image; skopeo sees the digests box has; pulled back it runs', () => {
    const ref = `${registry.host}/e2e/pushed:2`;
    boxOk(env.root, ['tag', 'busybox', ref]);
    const r = box(env.root, ['push', ref]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`The push refers to repository [${registry.host}/e2e/pushed]`);
    const last = /^2: digest: (sha256:[0-9a-f]{64}) size: (\d+)$/.exec(lines.at(-1)!);
    expect(last, r.stdout).not.toBeNull();
    const remote = JSON.parse(skopeo(['inspect', '--tls-verify=false', `docker://${ref}`]));
    expect(remote.Digest).toBe(last![1]);
    const local = JSON.parse(boxOk(env.root, ['image', 'inspect', ref]))[0];
    // The manifest's digest names its layers' digests; the config's digest is the image ID.
    const config = skopeo(['inspect', '--tls-verify=false', '--config', '--raw', `docker://${ref}`]);
    expect(`sha256:${createHash('sha256').update(config).digest('hex')}`).toBe(local.Id);
    expect(remote.Layers).toHaveLength(local.RootFS.Layers.length);
    expect(local.RepoDigests).toContain(`${registry.host}/e2e/pushed@${last![1]}`);
    // Again: every blob is there already.
    const again = box(env.root, ['push', ref]);
    expect(again.stdout).toMatch(/: Layer already exists$/m);
    boxOk(env.root, ['rmi', ref]);
    expect(boxOk(env.root, ['run', '--rm', ref, 'echo', 'round trip'])).toBe('round trip');
    boxOk(env.root, ['rmi', ref]);
  });
});

describe('login and logout', () => {
  it('a registry with basic auth: refused without, works after login; the credentials file is 0600', async () => {
    const secured = await startRegistry({ user: { name: 'boxer', password: 's3cret' } });
    const config = mkdtempSync(join(tmpdir(), 'box-e2e-auth-'));
    const envs = { DOCKER_CONFIG: config };
    try {
      const archive = join(dir, 'busybox.tar');
      skopeo([
        'copy',
        '--dest-tls-verify=false',
        '--dest-creds',
        'boxer:s3cret',
        `oci-archive:${archive}`,
        `docker://${secured.host}/private/busybox:1`,
      ]);
      const ref = `${secured.host}/private/busybox:1`;
      const anonymous = box(env.root, ['pull', ref], { env: envs });
      expect(anonymous.code).toBe(125);
      expect(anonymous.stderr.trim().split('\n')).toHaveLength(1);
      expect(anonymous.stderr).toMatch(/unauthorized|authentication required/i);
      const wrong = box(env.root, ['login', '-u', 'boxer', '--password-stdin', secured.host], {
        env: envs,
        input: 'nope\n',
      });
      expect(wrong.code).not.toBe(0);
      const login = box(env.root, ['login', '-u', 'boxer', '--password-stdin', secured.host], {
        env: envs,
        input: 's3cret\n',
      });
      expect([login.code, login.stdout]).toEqual([0, 'Login Succeeded\n']);
      const file = join(config, 'config.json');
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(JSON.parse(readFileSync(file, 'utf8')).auths[secured.host].auth).toBe(
        Buffer.from('boxer:s3cret').toString('base64'),
      );
      expect(box(env.root, ['pull', '-q', ref], { env: envs }).code).toBe(0);
      boxOk(env.root, ['rmi', ref]);
      expect(box(env.root, ['logout', secured.host], { env: envs }).stdout).toBe(
        `Removing login credentials for ${secured.host}\n`,
      );
      expect(JSON.parse(readFileSync(file, 'utf8')).auths?.[secured.host]).toBeUndefined();
    } finally {
      await secured.stop();
      rmSync(config, { recursive: true, force: true });
    }
  });
});

describe('bad input: one line, exit 125, nothing stored', () => {
  it.each([
    ['a registry nobody listens on', () => ['pull', '127.0.0.1:1/none/such:1']],
    ['a tag that does not exist', () => ['pull', `${registry.host}/e2e/busybox:nosuchtag`]],
    ['a repository that does not exist', () => ['pull', `${registry.host}/e2e/nothing:1`]],
    ['an invalid reference', () => ['pull', 'UPPER/case']],
    ['an invalid --pull', () => ['run', '--pull', 'sometimes', 'busybox', 'true']],
    ['push of an image box does not have', () => ['push', `${registry.host}/e2e/absent:1`]],
  ])('%s', (_what, args) => {
    const before = boxOk(env.root, ['images', '-q', '--no-trunc']);
    const started = Date.now();
    const r = box(env.root, args());
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(boxOk(env.root, ['images', '-q', '--no-trunc'])).toBe(before);
  });
});
