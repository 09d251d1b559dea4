// Interop with Debian's skopeo and umoci (scripts/setup.sh installs them); a machine without them
// fails here, never skips.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importRootfsTar, loadArchive, saveArchive } from './archive.js';
import { type ImageStore, openImageStore } from './store.js';
import { makeTarGz, streamOf, tempDir } from './tar-fixtures.js';

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function need(tool: string): void {
  if (!has(tool)) throw new Error(`${tool} is not installed (scripts/setup.sh installs it)`);
}

const run = (cmd: string, args: string[]) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const rootless = process.getuid?.() === 0 ? [] : ['--rootless'];

let tmp: ReturnType<typeof tempDir>;
let store: ImageStore;
beforeAll(async () => {
  tmp = tempDir();
  store = await openImageStore({ root: join(tmp.path, 'image') });
});
afterAll(() => tmp.remove());

describe('umoci', () => {
  beforeAll(() => need('umoci'));

  it('loads a layout built by umoci (init, new, unpack, repack) and unpacks its files', async () => {
    const layout = join(tmp.path, 'umoci-layout');
    const bundle = join(tmp.path, 'umoci-bundle');
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:latest`]);
    run('umoci', ['unpack', ...rootless, '--image', `${layout}:latest`, bundle]);
    mkdirSync(join(bundle, 'rootfs', 'etc'), { recursive: true });
    writeFileSync(join(bundle, 'rootfs', 'etc', 'hello'), 'from umoci\n');
    run('umoci', ['repack', '--image', `${layout}:latest`, bundle]);
    const loaded = await loadArchive(store, layout, { repository: 'umoci/test' });
    expect(loaded).toHaveLength(1);
    expect(loaded[0]!.references).toEqual(['docker.io/umoci/test:latest']);
    const image = store.resolve('umoci/test');
    const top = image.layers[image.layers.length - 1]!;
    expect(readFileSync(join(top.path, 'etc', 'hello'), 'utf8')).toBe('from umoci\n');
  });
});

describe('saved archives', () => {
  beforeAll(() => {
    need('skopeo');
    need('umoci');
  });

  it('are read by skopeo inspect and unpacked by umoci with the same files', async () => {
    const id = await importRootfsTar(
      store,
      streamOf(
        await makeTarGz([
          { name: 'bin/', type: 'directory', mode: 0o755 },
          { name: 'bin/tool', body: 'tool', mode: 0o755 },
          { name: 'bin/alias', type: 'symlink', linkname: 'tool' },
          { name: 'etc/motd', body: 'hello from box\n' },
        ]),
      ),
      'box/saved:v1',
      { config: { Cmd: ['/bin/tool'] } },
    );
    const image = store.resolve(id);

    const ociArchive = join(tmp.path, 'saved.oci.tar');
    await saveArchive(store, ['box/saved:v1'], ociArchive, { format: 'oci-archive' });
    const oci = JSON.parse(run('skopeo', ['inspect', `oci-archive:${ociArchive}`]));
    expect(oci.Digest).toBe(image.manifestDigest);
    expect(oci.Layers).toEqual(image.manifest.layers.map((l) => l.digest));
    expect(oci.Os).toBe('linux');

    const dockerArchive = join(tmp.path, 'saved.docker.tar');
    await saveArchive(store, ['box/saved:v1'], dockerArchive, { format: 'docker-archive' });
    const docker = JSON.parse(run('skopeo', ['inspect', `docker-archive:${dockerArchive}`]));
    expect(docker.Layers).toEqual(image.layers.map((l) => l.diffID));
    const dockerConfig = JSON.parse(
      run('skopeo', ['inspect', '--config', `docker-archive:${dockerArchive}`]),
    );
    expect(dockerConfig.config.Cmd).toEqual(['/bin/tool']);

    const ociDir = join(tmp.path, 'saved-oci-dir');
    await saveArchive(store, ['box/saved:v1'], ociDir, { format: 'oci-dir' });
    const bundle = join(tmp.path, 'saved-bundle');
    run('umoci', ['unpack', ...rootless, '--image', `${ociDir}:v1`, bundle]);
    expect(readFileSync(join(bundle, 'rootfs', 'etc', 'motd'), 'utf8')).toBe('hello from box\n');
    expect(readFileSync(join(bundle, 'rootfs', 'bin', 'tool'), 'utf8')).toBe('tool');
    const listing = (dir: string) => run('sh', ['-c', `cd ${dir} && find . | sort`]);
    expect(listing(join(bundle, 'rootfs'))).toBe(listing(image.layers[0]!.path));
  });
});
