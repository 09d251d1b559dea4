/**
 * Nothing box stores is reachable by other local users: an unprivileged host user (nobody,
 * through setpriv) cannot list or traverse BOX_ROOT, read containers' configs, state or logs
 * (which hold their -e secrets), reach image layers, writable layers or volumes, or run a
 * setuid-root file from a container's writable layer. Containers in user namespaces, whose
 * root is an unprivileged host uid, still reach their layers and volumes.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { box, boxOk, useBoxRoot, waitFor } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });
const ok = (args: string[]) => boxOk(env.root, args);

const NOBODY = 65534;
const SECRET = 'hunter2-c0ffee';

/** The host gid of container root in --userns containers: /etc/subgid's "box" entry, else 100000. */
function mappedRootGid(): number {
  try {
    for (const line of readFileSync('/etc/subgid', 'utf8').split('\n')) {
      const [user, start] = line.split(':');
      if (user === 'box' && start) return Number(start);
    }
  } catch {
    // no file
  }
  return 100000;
}

type Probe = ['readdir' | 'stat' | 'read' | 'exec', string];

/**
 * Runs each probe as nobody (no supplementary groups) and returns its outcome: 'ok' or the
 * errno code (EACCES, ...).
 */
function asNobody(probes: Probe[]): string[] {
  const script = `
    const fs = require('node:fs');
    const { spawnSync } = require('node:child_process');
    const out = [];
    for (const [op, path] of JSON.parse(process.argv[1])) {
      try {
        if (op === 'readdir') fs.readdirSync(path);
        else if (op === 'stat') fs.statSync(path);
        else if (op === 'read') fs.readFileSync(path);
        else {
          const r = spawnSync(path, ['true']);
          if (r.error) throw r.error;
        }
        out.push('ok');
      } catch (error) {
        out.push(error.code ?? String(error));
      }
    }
    process.stdout.write(JSON.stringify(out));
  `;
  const r = spawnSync(
    'setpriv',
    [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      '--',
      process.execPath,
      '-e',
      script,
      JSON.stringify(probes),
    ],
    { encoding: 'utf8', cwd: '/' },
  );
  if (r.status !== 0) throw new Error(`probe as nobody failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as string[];
}

const mode = (path: string) => statSync(path).mode & 0o7777;

function containerId(name: string): string {
  return ok(['inspect', '--format', '{{.Id}}', name]);
}

function state(id: string): { overlay: { lowerdirs: string[]; upperdir: string } } {
  return JSON.parse(readFileSync(join(env.root, 'containers', id, 'state.json'), 'utf8'));
}

describe('state directory permissions', () => {
  beforeAll(() => {
    // As a state directory made by an older box, or by the user: open to everyone.
    chmodSync(env.root, 0o755);
    chownSync(env.root, 0, 0);
    for (const dir of ['image', 'image/layers']) chmodSync(join(env.root, dir), 0o755);
    for (const hex of readdirSync(join(env.root, 'image/layers')))
      chmodSync(join(env.root, 'image/layers', hex), 0o711);
  });

  it('tightens an existing BOX_ROOT and its top-level directories on start', () => {
    expect(mode(env.root)).toBe(0o755);
    ok(['images']);
    const gid = mappedRootGid();
    const layers = readdirSync(join(env.root, 'image/layers')).map((hex) => `image/layers/${hex}`);
    expect(layers.length).toBeGreaterThan(0);
    for (const dir of ['', 'image', 'image/layers', ...layers]) {
      const st = statSync(join(env.root, dir));
      expect({ dir, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }).toEqual({
        dir,
        mode: 0o710,
        uid: 0,
        gid,
      });
    }
    expect(asNobody([['readdir', env.root]])).toEqual(['EACCES']);
  });

  it("keeps containers' secrets, layers, logs and volumes from other users", async () => {
    const r = box(env.root, [
      'run',
      '--name',
      'perm-fg',
      '-e',
      `SECRET=${SECRET}`,
      '-v',
      'perm-vol:/data',
      'busybox',
      'sh',
      '-c',
      'cp /bin/busybox /suid && chmod 4755 /suid && echo upper > /upper.txt && echo vol > /data/f',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    ok([
      'run',
      '-d',
      '--name',
      'perm-bg',
      '-e',
      `SECRET=${SECRET}`,
      'busybox',
      'sh',
      '-c',
      'echo "log $SECRET"',
    ]);
    const fg = containerId('perm-fg');
    const bg = containerId('perm-bg');
    await waitFor(() => ok(['inspect', '--format', '{{.State.Status}}', 'perm-bg']) === 'exited', 10_000);

    const dir = join(env.root, 'containers', fg);
    const { overlay } = state(fg);
    const suid = join(overlay.upperdir, 'suid');
    const layerFile = join(overlay.lowerdirs.at(-1)!, 'bin/busybox');
    const volumeFile = join(env.root, 'volumes', 'perm-vol', '_data', 'f');
    const log = join(env.root, 'containers', bg, 'json.log');

    // As root every path is there, so each refusal below is the permission, not a wrong path.
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toContain(SECRET);
    expect(readFileSync(join(env.root, 'containers', bg, 'state.json'), 'utf8')).toBeTruthy();
    expect(readFileSync(log, 'utf8')).toContain(`log ${SECRET}`);
    expect(statSync(suid)).toMatchObject({ uid: 0 });
    expect(mode(suid)).toBe(0o4755);
    expect(readFileSync(join(overlay.upperdir, 'upper.txt'), 'utf8')).toBe('upper\n');
    expect(existsSync(layerFile)).toBe(true);
    expect(readFileSync(volumeFile, 'utf8')).toBe('vol\n');

    const probes: Probe[] = [
      ['readdir', env.root],
      ['readdir', join(env.root, 'containers')],
      ['stat', dir],
      ['read', join(dir, 'config.json')],
      ['read', join(dir, 'state.json')],
      ['read', log],
      ['read', join(overlay.upperdir, 'upper.txt')],
      ['exec', suid],
      ['read', layerFile],
      ['exec', layerFile],
      ['readdir', join(env.root, 'image', 'layers')],
      ['read', volumeFile],
      ['readdir', join(env.root, 'volumes')],
      ['readdir', join(env.root, 'names')],
    ];
    const results = asNobody(probes);
    expect(probes.map(([op, path], i) => `${op} ${path}: ${results[i]}`)).toEqual(
      probes.map(([op, path]) => `${op} ${path}: EACCES`),
    );

    // What holds a container's environment is for root only; directories are closed to others.
    for (const file of [join(dir, 'config.json'), join(dir, 'state.json'), log]) {
      expect({ file, mode: mode(file) }).toEqual({ file, mode: 0o600 });
    }
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(env.root, 'containers'))).toBe(0o710);
    expect(mode(join(env.root, 'volumes'))).toBe(0o710);
    expect(mode(join(env.root, 'names'))).toBe(0o700);
    expect(mode(join(env.root, 'volumes', 'perm-vol', 'volume.json'))).toBe(0o600);
    ok(['rm', 'perm-fg', 'perm-bg']);
    ok(['volume', 'rm', 'perm-vol']);
  });

  it("tightens an older version's container records when the state directory was open", () => {
    ok(['create', '--name', 'perm-old', '-e', `SECRET=${SECRET}`, 'busybox', 'true']);
    const dir = join(env.root, 'containers', containerId('perm-old'));
    // What box wrote before: records readable by everyone.
    chmodSync(env.root, 0o711);
    chmodSync(dir, 0o711);
    for (const file of ['config.json', 'state.json']) chmodSync(join(dir, file), 0o644);
    ok(['ps', '-a']);
    expect(mode(env.root)).toBe(0o710);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'config.json'))).toBe(0o600);
    expect(mode(join(dir, 'state.json'))).toBe(0o600);
    ok(['rm', 'perm-old']);
  });
});

describe('--userns containers in the closed state directory', () => {
  it('write their own layer and a named volume, and read them back', () => {
    const r = box(env.root, [
      'run',
      '--name',
      'perm-userns',
      '--userns',
      '-v',
      'perm-uvol:/data',
      'busybox',
      'sh',
      '-c',
      'echo layer > /f && cat /f && echo kept > /data/v && cat /data/v && id -u',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('layer\nkept\n0\n');
    const id = containerId('perm-userns');
    const dir = join(env.root, 'containers', id);
    // Container root (an unprivileged host uid) traverses to its layers through its group.
    expect(statSync(dir)).toMatchObject({ uid: 0, gid: mappedRootGid() });
    expect(mode(dir)).toBe(0o710);
    expect(mode(join(dir, 'config.json'))).toBe(0o600);
    expect(readFileSync(join(state(id).overlay.upperdir, 'f'), 'utf8')).toBe('layer\n');
    ok(['rm', 'perm-userns']);

    // The volume outlives the container, for --userns and other containers alike.
    expect(ok(['run', '--rm', '--userns', '-v', 'perm-uvol:/data', 'busybox', 'cat', '/data/v'])).toBe(
      'kept',
    );
    expect(ok(['run', '--rm', '-v', 'perm-uvol:/data', 'busybox', 'cat', '/data/v'])).toBe('kept');
    expect(asNobody([['read', join(env.root, 'volumes', 'perm-uvol', '_data', 'v')]])).toEqual(['EACCES']);
    ok(['volume', 'rm', 'perm-uvol']);
  });

  it('use a volume made beforehand by box volume create', () => {
    ok(['volume', 'create', 'perm-made']);
    expect(
      ok([
        'run',
        '--rm',
        '--userns',
        '-v',
        'perm-made:/data',
        'busybox',
        'sh',
        '-c',
        'echo w > /data/w && cat /data/w',
      ]),
    ).toBe('w');
    ok(['volume', 'rm', 'perm-made']);
    expect(readdirSync(join(env.root, 'volumes')).filter((n) => !n.startsWith('.'))).toEqual([]);
  });
});

describe("another user's sub-id range over box's", () => {
  it('closes the state directory to the mapped group and refuses --userns with one line', () => {
    const file = '/etc/subgid';
    const before = existsSync(file) ? readFileSync(file, 'utf8') : undefined;
    const gid = mappedRootGid();
    // As useradd writes it for the first user: a range that holds box's container-root gid.
    writeFileSync(file, `${before ?? ''}box-e2e-alice:${gid}:65536\n`);
    try {
      const r = box(env.root, ['run', '--rm', '--userns', 'busybox', 'true']);
      expect(r.code).toBe(125);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/--userns: .*overlap the \/etc\/subgid range of user "box-e2e-alice"/);
      // Nobody with that gid may traverse now: the directories belong to root's group.
      expect(statSync(env.root).gid).toBe(0);
      expect(statSync(join(env.root, 'image')).gid).toBe(0);
      expect(statSync(env.root).mode & 0o777).toBe(0o710);
      expect(ok(['run', '--rm', 'busybox', 'echo', 'fine'])).toBe('fine');
    } finally {
      if (before === undefined) rmSync(file, { force: true });
      else writeFileSync(file, before);
    }
    // Once the overlap is gone, the next command opens the way for --userns containers again.
    expect(ok(['run', '--rm', '--userns', 'busybox', 'echo', 'back'])).toBe('back');
    expect(statSync(env.root).gid).toBe(gid);
  });
});
