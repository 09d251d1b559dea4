import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { box, boxOk, useBoxRoot } from '../helpers/box.js';

const env = useBoxRoot({ removeContainers: true });
let scratch: string;

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'box-images-'));
});
afterEach(() => {
  // export and cp mount the container's layers on the host for a moment: never left behind.
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toMatch(/box-overlay-/);
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const ok = (args: string[]) => boxOk(env.root, args);
const layersOf = (ref: string) => JSON.parse(ok(['image', 'inspect', ref]))[0].RootFS.Layers as string[];
const storeLayers = () => readdirSync(join(env.root, 'image/layers'));
const tarList = (file: string) => spawnSync('tar', ['-tvf', file], { encoding: 'utf8' }).stdout;

describe('images', () => {
  it('lists, tags, inspects and removes images, sharing layers', () => {
    expect(ok(['images'])).toMatch(
      /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\nbusybox\s+latest\s+[0-9a-f]{12}\s/,
    );
    ok(['tag', 'busybox', 'localhost:5000/tools/bb:1.0']);
    expect(ok(['images', '--format', '{{.Repository}}:{{.Tag}}']).split('\n').sort()).toEqual([
      'busybox:latest',
      'localhost:5000/tools/bb:1.0',
    ]);
    const inspect = JSON.parse(ok(['image', 'inspect', 'busybox']))[0];
    expect(inspect.Config.Cmd).toEqual(['sh']);
    expect(inspect.RepoTags.sort()).toEqual(['busybox:latest', 'localhost:5000/tools/bb:1.0']);
    // Untagging one name keeps the image.
    expect(ok(['rmi', 'localhost:5000/tools/bb:1.0'])).toBe('Untagged: localhost:5000/tools/bb:1.0');
    expect(ok(['images', '-q']).split('\n')).toHaveLength(1);
  });

  it('commit: a changed file is in the new layer and not in the base; whiteouts and opaque dirs round-trip', () => {
    const layersBefore = storeLayers();
    ok([
      'run',
      '--name',
      'changer',
      'busybox',
      'sh',
      '-c',
      'echo changed > /etc/motd; rm /bin/vi; rm -rf /home; mkdir /home; echo new > /home/file',
    ]);
    ok(['commit', '-c', 'ENV STAGE=2', '-c', 'CMD ["cat", "/etc/motd"]', 'changer', 'changed:1']);
    // The base layer is stored once and shared: one new layer only.
    const base = layersOf('busybox');
    const mine = layersOf('changed:1');
    expect(mine.slice(0, base.length)).toEqual(base);
    expect(mine).toHaveLength(base.length + 1);
    expect(storeLayers()).toHaveLength(layersBefore.length + 1);

    expect(ok(['run', '--rm', 'changed:1'])).toBe('changed');
    const r = box(env.root, ['run', '--rm', 'changed:1', 'sh', '-c', 'echo $STAGE; ls /bin/vi; ls /home']);
    expect(r.stdout).toBe('2\nfile\n');
    expect(r.stderr).toContain('/bin/vi: No such file or directory');
    // The base image is untouched.
    expect(box(env.root, ['run', '--rm', 'busybox', 'sh', '-c', 'cat /etc/motd; ls /bin/vi']).stdout).toBe(
      '/bin/vi\n',
    );

    // The committed layer, as saved: the change and the .wh. entries, not the unchanged base files.
    const out = join(scratch, 'changed.tar');
    ok(['save', '-o', out, 'changed:1']);
    // 0600 as docker's: the archive holds every file of the image, 0600 ones included.
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const work = join(scratch, 'changed');
    mkdirSync(work);
    expect(spawnSync('tar', ['-xf', out, '-C', work]).status).toBe(0);
    const manifest = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8'))[0];
    const top = tarList(join(work, manifest.Layers.at(-1)));
    expect(top).toContain('etc/motd');
    expect(top).toContain('bin/.wh.vi');
    expect(top).toContain('home/.wh..wh..opq');
    expect(top).toContain('home/file');
    expect(top).not.toContain('bin/busybox');
    ok(['rm', 'changer']);
    ok(['rmi', 'changed:1']);
    expect(storeLayers()).toEqual(layersBefore);
  });

  it('rmi refuses an image a container uses, unless -f', () => {
    ok(['tag', 'busybox', 'inuse:1']);
    const id = JSON.parse(ok(['image', 'inspect', 'busybox']))[0].Id;
    ok(['create', '--name', 'holder', 'busybox', 'true']);
    const r = box(env.root, ['rmi', id]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/in use|used by/);
    expect(ok(['images', '-q'])).toBe(id.slice(7, 19));
    ok(['rm', 'holder']);
    ok(['rmi', 'inuse:1']);
  });

  it('import: the book busybox.tar flow, with --change', () => {
    const rootfs = join(scratch, 'rootfs');
    mkdirSync(join(rootfs, 'bin'), { recursive: true });
    spawnSync('cp', ['/bin/busybox', join(rootfs, 'bin/busybox')]);
    writeFileSync(join(rootfs, 'hello.txt'), 'imported\n');
    const tarball = join(scratch, 'rootfs.tar.gz');
    expect(spawnSync('tar', ['-czf', tarball, '-C', rootfs, '.']).status).toBe(0);
    const id = ok(['import', '-c', 'CMD ["/bin/busybox", "cat", "/hello.txt"]', tarball, 'fromtar']);
    expect(id).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(ok(['run', '--rm', 'fromtar'])).toBe('imported');
    ok(['rmi', 'fromtar']);
  });

  it('save and load round-trip in docker-archive, oci-archive and oci-dir', () => {
    ok(['tag', 'busybox', 'roundtrip:1']);
    for (const format of ['docker-archive', 'oci-archive', 'oci-dir']) {
      const out = join(scratch, `rt-${format}`);
      ok(['save', '--format', format, '-o', out, 'roundtrip:1']);
      ok(['rmi', 'roundtrip:1']);
      // docker's -q too, which hides only the progress: the names loaded are printed.
      expect(ok(['load', ...(format === 'oci-dir' ? ['-q'] : []), '-i', out])).toContain('roundtrip:1');
      expect(ok(['run', '--rm', 'roundtrip:1', 'echo', 'loaded'])).toBe('loaded');
    }
    ok(['rmi', 'roundtrip:1']);
  });

  it('export writes the container filesystem without its volumes', () => {
    ok([
      'run',
      '--name',
      'exp',
      '-v',
      'expvol:/data',
      'busybox',
      'sh',
      '-c',
      'echo x > /data/in-volume; echo y > /root/in-layer',
    ]);
    const out = join(scratch, 'exp.tar');
    ok(['export', '-o', out, 'exp']);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const list = tarList(out);
    expect(list).toContain('root/in-layer');
    expect(list).toContain('bin/busybox');
    expect(list).not.toContain('in-volume');
    ok(['rm', 'exp']);
    ok(['volume', 'rm', 'expvol']);
  });
});

describe('interop with skopeo and umoci', () => {
  const skopeo = spawnSync('skopeo', ['--version']).status === 0;
  const umoci = spawnSync('umoci', ['--version']).status === 0;

  it('skopeo reads what box saves', () => {
    expect(skopeo, 'skopeo is not installed (scripts/setup.sh installs it)').toBe(true);
    const out = join(scratch, 'bb-oci.tar');
    ok(['save', '--format', 'oci-archive', '-o', out, 'busybox']);
    const r = spawnSync('skopeo', ['inspect', `oci-archive:${out}`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.Layers).toHaveLength(layersOf('busybox').length);
  });

  it('an image written by umoci loads and runs; umoci unpacks what box saves', () => {
    expect(umoci, 'umoci is not installed (scripts/setup.sh installs it)').toBe(true);
    const layout = join(scratch, 'umoci-layout');
    const run = (...args: string[]) => {
      const r = spawnSync('umoci', args, { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    };
    run('init', '--layout', layout);
    run('new', '--image', `${layout}:v1`);
    const bundle = join(scratch, 'umoci-bundle');
    run('unpack', '--image', `${layout}:v1`, bundle);
    mkdirSync(join(bundle, 'rootfs/bin'), { recursive: true });
    spawnSync('cp', ['/bin/busybox', join(bundle, 'rootfs/bin/busybox')]);
    writeFileSync(join(bundle, 'rootfs/from-umoci'), 'umoci made me\n');
    run('repack', '--image', `${layout}:v1`, bundle);
    rmSync(bundle, { recursive: true, force: true });
    ok(['load', '--repository', 'umoci-img', '-i', layout]);
    expect(ok(['run', '--rm', 'umoci-img:v1', '/bin/busybox', 'cat', '/from-umoci'])).toBe('umoci made me');
    ok(['rmi', 'umoci-img:v1']);

    const saved = join(scratch, 'bb-oci-dir');
    ok(['save', '--format', 'oci-dir', '-o', saved, 'busybox']);
    // Closed to others, as a saved tar is 0600.
    expect(statSync(saved).mode & 0o777).toBe(0o700);
    const unpacked = join(scratch, 'bb-unpacked');
    const tag = JSON.parse(readFileSync(join(saved, 'index.json'), 'utf8')).manifests[0].annotations[
      'org.opencontainers.image.ref.name'
    ];
    run('unpack', '--image', `${saved}:${tag}`, unpacked);
    const mine = box(env.root, ['run', '--rm', 'busybox', 'ls', '/bin']).stdout;
    expect(readdirSync(join(unpacked, 'rootfs/bin')).sort().join('\n')).toBe(
      mine.trim().split('\n').sort().join('\n'),
    );
    rmSync(unpacked, { recursive: true, force: true });
  });
});

describe('bad input keeps the store unchanged', () => {
  const storeState = () =>
    spawnSync(
      'sh',
      ['-c', `cd ${env.root}/image && find . -path ./tmp -prune -o -print | sort && cat repositories.json`],
      { encoding: 'utf8' },
    ).stdout;

  it.each([
    [
      'a corrupt tar',
      () => {
        const f = join(scratch, 'corrupt.tar');
        writeFileSync(f, Buffer.concat([Buffer.from('not a tar at all '), Buffer.alloc(2000, 7)]));
        return ['import', f, 'bad:1'];
      },
    ],
    [
      'a truncated gzip',
      () => {
        const full = join(scratch, 'full.tar.gz');
        spawnSync('tar', ['-czf', full, '-C', '/usr/share', 'doc']);
        const f = join(scratch, 'truncated.tar.gz');
        writeFileSync(f, readFileSync(full).subarray(0, 4096));
        return ['import', f, 'bad:2'];
      },
    ],
    ['a missing file', () => ['import', join(scratch, 'nope.tar'), 'bad:3']],
    ['a bad reference', () => ['import', '-', 'Bad//Ref']],
    [
      'a load of nonsense',
      () => {
        const f = join(scratch, 'nonsense.tar');
        writeFileSync(f, 'x'.repeat(10));
        return ['load', '-i', f];
      },
    ],
  ])('%s: one line, exit 125', (_, make) => {
    const before = storeState();
    const r = box(env.root, make() as string[]);
    expect(r.code).toBe(125);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(storeState()).toBe(before);
  });
});
