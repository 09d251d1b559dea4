// pull, push and login against a real docker-registry (Debian's distribution 2.8) on 127.0.0.1,
// fed by skopeo from OCI layouts built here. Everything lives in a temporary directory.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { importRootfsTar } from '../archive.js';
import { sha256 } from '../digest.js';
import { type ImageError, isImageError } from '../errors.js';
import { hostArchitecture } from '../manifest.js';
import { type ImageStore, openImageStore } from '../store.js';
import { type FixtureEntry, makeTar, streamOf, tempDir } from '../tar-fixtures.js';
import {
  listTags,
  type ProgressEvent,
  parseChallenges,
  pullImage,
  pushImage,
  registryHostOf,
  registryLogin,
  registryLogout,
} from './index.js';
import {
  ensureTools,
  makeRegistry,
  makeTokenServer,
  skopeoCopy,
  skopeoInspect,
  skopeoRaw,
  type TestRegistry,
  type TokenServer,
  writeHtpasswd,
  writeLayout,
} from './registry-fixtures.js';

let tmp: ReturnType<typeof tempDir>;
let policy: string;
let registry: TestRegistry;
let storeCount = 0;

async function newStore(): Promise<ImageStore> {
  return openImageStore({ root: join(tmp.path, `store-${storeCount++}`) });
}

async function layer(entries: FixtureEntry[], level = 6): Promise<{ gz: Buffer; diffId: string }> {
  const tar = await makeTar(entries);
  return { gz: gzipSync(tar, { level }), diffId: sha256(tar) };
}

/** Builds an OCI layout of one image (or an index of several) and copies it to `target` with skopeo. */
async function publish(
  target: string,
  images: { layers: { gz: Buffer; diffId: string }[]; architecture?: string; variant?: string }[],
  extra: string[] = [],
): Promise<void> {
  const dir = join(tmp.path, `layout-${Math.random().toString(36).slice(2)}`);
  writeLayout(
    dir,
    'v1',
    images.map((i) => ({
      image: { layers: i.layers.map((l) => l.gz), architecture: i.architecture, variant: i.variant },
      diffIds: i.layers.map((l) => l.diffId),
    })),
  );
  await skopeoCopy(policy, dir, 'v1', target, extra);
}

async function rejection(promise: Promise<unknown>): Promise<ImageError> {
  try {
    await promise;
  } catch (error) {
    if (isImageError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

function storeFiles(store: ImageStore): string[] {
  const list = (dir: string): string[] =>
    existsSync(dir) ? readdirSync(dir).map((n) => `${dir.slice(store.root.length)}/${n}`) : [];
  return [
    ...list(join(store.root, 'blobs', 'sha256')),
    ...list(join(store.root, 'layers')),
    ...list(store.tmpDir),
  ].sort();
}

beforeAll(async () => {
  ensureTools();
  tmp = tempDir('box-registry-test-');
  policy = join(tmp.path, 'policy.json');
  writeFileSync(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
  registry = await makeRegistry(join(tmp.path, 'registry'));
}, 120_000);

afterAll(async () => {
  await registry?.stop();
  tmp?.remove();
});

describe('references and challenges', () => {
  it('maps docker.io to its API host and keeps other registries', () => {
    expect(registryHostOf('busybox')).toBe('registry-1.docker.io');
    expect(registryHostOf('index.docker.io/library/busybox:1')).toBe('registry-1.docker.io');
    expect(registryHostOf('127.0.0.1:5000/a/b:c')).toBe('127.0.0.1:5000');
    expect(registryHostOf('localhost/x')).toBe('localhost');
  });

  it('parses WWW-Authenticate challenges with quoted and several parameters', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.example/token",service="reg, istry",scope="repository:a/b:pull,push"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example/token',
          service: 'reg, istry',
          scope: 'repository:a/b:pull,push',
        },
      },
    ]);
    expect(parseChallenges('Basic realm="x", Bearer realm="y"')).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'y' } },
    ]);
  });
});

describe('pull', () => {
  let bin: Awaited<ReturnType<typeof layer>>;
  let etc: Awaited<ReturnType<typeof layer>>;
  let app: Awaited<ReturnType<typeof layer>>;

  beforeAll(async () => {
    bin = await layer([
      { name: 'bin/', type: 'directory', mode: 0o755 },
      { name: 'bin/tool', body: '#!/bin/sh\necho tool\n', mode: 0o755 },
    ]);
    etc = await layer([
      { name: 'etc/', type: 'directory', mode: 0o755 },
      { name: 'etc/motd', body: 'hello from the registry\n' },
    ]);
    app = await layer([{ name: 'app/data.txt', body: 'app data\n' }]);
    await publish(`${registry.host}/box/multi:v1`, [{ layers: [bin, etc, app] }]);
  }, 60_000);

  it('pulls a multi-layer OCI image: files unpacked, RepoTags and RepoDigests set, progress reported', async () => {
    const store = await newStore();
    const events: ProgressEvent[] = [];
    const result = await pullImage(store, `${registry.host}/box/multi:v1`, {
      onProgress: (e) => events.push(e),
    });
    expect(result.upToDate).toBe(false);
    expect(result.reference).toBe(`${registry.host}/box/multi:v1`);
    const inspected = (await skopeoInspect(`${registry.host}/box/multi:v1`)) as {
      Digest: string;
      Layers: string[];
    };
    expect(result.digest).toBe(inspected.Digest);
    const image = store.resolve(`${registry.host}/box/multi:v1`);
    expect(image.id).toBe(result.id);
    expect(image.layers.map((l) => l.diffID)).toEqual([bin.diffId, etc.diffId, app.diffId]);
    expect(image.manifest.layers.map((l) => l.digest)).toEqual(inspected.Layers);
    expect(readFileSync(join(image.layers[0]!.path, 'bin/tool'), 'utf8')).toBe('#!/bin/sh\necho tool\n');
    expect(statSync(join(image.layers[0]!.path, 'bin/tool')).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(image.layers[1]!.path, 'etc/motd'), 'utf8')).toBe('hello from the registry\n');
    expect(readFileSync(join(image.layers[2]!.path, 'app/data.txt'), 'utf8')).toBe('app data\n');
    const inspect = store.inspectImage(result.id);
    expect(inspect.RepoTags).toEqual([`${registry.host}/box/multi:v1`]);
    expect(inspect.RepoDigests).toEqual([`${registry.host}/box/multi@${result.digest}`]);
    expect(events[0]).toMatchObject({ type: 'resolved', digest: result.digest });
    expect(events.filter((e) => e.type === 'layer' && e.status === 'complete')).toHaveLength(3);
    expect(events.at(-1)).toEqual({
      type: 'done',
      reference: result.reference,
      digest: result.digest,
      status: 'downloaded',
    });
    expect(readdirSync(store.tmpDir)).toEqual([]); // partial files moved in

    // A second pull fetches the manifest only and changes nothing.
    const before = storeFiles(store);
    const fetchSpy = vi.spyOn(globalThis, 'fetch');
    try {
      const again = await pullImage(store, `${registry.host}/box/multi:v1`);
      expect(again).toEqual({ ...result, upToDate: true });
      const urls = fetchSpy.mock.calls.map((c) => String(c[0]));
      expect(urls.length).toBeGreaterThan(0);
      expect(urls.every((u) => u.includes('/manifests/'))).toBe(true);
    } finally {
      fetchSpy.mockRestore();
    }
    expect(storeFiles(store)).toEqual(before);
  }, 60_000);

  it('lists the tags of a repository of the registry', async () => {
    const one = await layer([{ name: 'tagged', body: 'x' }]);
    for (const tag of ['a', 'b', 'c']) await publish(`${registry.host}/box/tags:${tag}`, [{ layers: [one] }]);
    expect(await listTags(`${registry.host}/box/tags`)).toEqual(['a', 'b', 'c']);
    expect(await listTags(`${registry.host}/box/tags:b`)).toEqual(['a', 'b', 'c']);
  });

  it('pulls by digest, skipping the blobs the store has', async () => {
    const store = await newStore();
    const digest = ((await skopeoInspect(`${registry.host}/box/multi:v1`)) as { Digest: string }).Digest;
    await publish(`${registry.host}/box/partial:v1`, [{ layers: [bin] }]);
    await pullImage(store, `${registry.host}/box/partial:v1`);
    const events: ProgressEvent[] = [];
    const result = await pullImage(store, `${registry.host}/box/multi@${digest}`, {
      onProgress: (e) => events.push(e),
    });
    expect(result.digest).toBe(digest);
    expect(result.reference).toBe(`${registry.host}/box/multi@${digest}`);
    expect(store.inspectImage(result.id).RepoDigests).toEqual([`${registry.host}/box/multi@${digest}`]);
    expect(store.inspectImage(result.id).RepoTags).toEqual([]);
    const statuses = (d: string) =>
      events.filter((e) => e.type === 'layer' && e.digest === d).map((e) => (e as { status: string }).status);
    expect(statuses(sha256(bin.gz))).toEqual(['exists']);
    expect(statuses(sha256(etc.gz))).toContain('downloading');
    expect(statuses(sha256(etc.gz)).at(-1)).toBe('complete');
  }, 60_000);

  it('picks the wanted platform from a multi-arch index and names the available ones otherwise', async () => {
    const amd = await layer([{ name: 'arch', body: 'amd64\n' }]);
    const arm = await layer([{ name: 'arch', body: 'arm64\n' }]);
    const armv7 = await layer([{ name: 'arch', body: 'arm/v7\n' }]);
    await publish(`${registry.host}/box/multiarch:v1`, [
      { layers: [amd], architecture: 'amd64' },
      { layers: [arm], architecture: 'arm64', variant: 'v8' },
      { layers: [armv7], architecture: 'arm', variant: 'v7' },
    ]);
    const index = JSON.parse((await skopeoRaw(`${registry.host}/box/multiarch:v1`)).toString()) as {
      mediaType: string;
    };
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const store = await newStore();
    const host = await pullImage(store, `${registry.host}/box/multiarch:v1`); // this machine: linux/amd64
    expect(readFileSync(join(store.resolve(host.id).layers[0]!.path, 'arch'), 'utf8')).toBe(
      process.arch === 'arm64' ? 'arm64\n' : 'amd64\n',
    );
    const armImage = await pullImage(store, `${registry.host}/box/multiarch:v1`, {
      platform: 'linux/arm/v7',
    });
    expect(readFileSync(join(store.resolve(armImage.id).layers[0]!.path, 'arch'), 'utf8')).toBe('arm/v7\n');
    expect(store.inspectImage(armImage.id).Architecture).toBe('arm');
    expect(armImage.digest).toBe(host.digest); // RepoDigests name the index, as docker's do
    const arm64 = await pullImage(store, `${registry.host}/box/multiarch:v1`, { platform: 'linux/arm64' });
    expect(readFileSync(join(store.resolve(arm64.id).layers[0]!.path, 'arch'), 'utf8')).toBe('arm64\n');

    const before = storeFiles(store);
    const error = await rejection(
      pullImage(store, `${registry.host}/box/multiarch:v1`, { platform: 'linux/s390x' }),
    );
    expect(error.code).toBe('EIMAGE_PLATFORM');
    expect(error.message).toContain('linux/s390x');
    expect(error.message).toContain('available: linux/amd64, linux/arm64/v8, linux/arm/v7');
    expect(storeFiles(store)).toEqual(before);
  }, 60_000);

  it('pulls a docker schema2 image (skopeo --format v2s2) with the registry digest in RepoDigests', async () => {
    const only = await layer([{ name: 'docker/schema2', body: 'v2s2\n' }]);
    await publish(`${registry.host}/box/docker:v1`, [{ layers: [bin, only] }], ['--format', 'v2s2']);
    const raw = await skopeoRaw(`${registry.host}/box/docker:v1`);
    expect(JSON.parse(raw.toString()).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    const store = await newStore();
    const result = await pullImage(store, `${registry.host}/box/docker:v1`);
    expect(result.digest).toBe(sha256(raw));
    expect(store.inspectImage(result.id).RepoDigests).toEqual([`${registry.host}/box/docker@${sha256(raw)}`]);
    expect(result.id).toBe(JSON.parse(raw.toString()).config.digest);
    const image = store.resolve(`${registry.host}/box/docker:v1`);
    expect(readFileSync(join(image.layers[1]!.path, 'docker/schema2'), 'utf8')).toBe('v2s2\n');
    expect((await pullImage(store, `${registry.host}/box/docker:v1`)).upToDate).toBe(true);
  }, 60_000);

  it('refuses a corrupted blob and stores nothing', async () => {
    const victim = await layer([
      { name: 'victim', body: 'the bytes the registry will corrupt\n'.repeat(50) },
    ]);
    await publish(`${registry.host}/box/corrupt:v1`, [{ layers: [victim] }]);
    const hex = sha256(victim.gz).slice(7);
    const data = join(registry.storage, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    const bytes = readFileSync(data);
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(data, bytes);
    const store = await newStore();
    const before = storeFiles(store);
    const error = await rejection(pullImage(store, `${registry.host}/box/corrupt:v1`));
    expect(error.code).toBe('EIMAGE_DIGEST');
    expect(error.message).toContain(sha256(victim.gz));
    expect(error.expected).toBe(sha256(victim.gz));
    expect(storeFiles(store)).toEqual(before);
    expect(store.listImages()).toEqual([]);
  }, 60_000);

  it('answers a missing tag with EIMAGE_NOT_FOUND naming it', async () => {
    const store = await newStore();
    const error = await rejection(pullImage(store, `${registry.host}/box/multi:nope`));
    expect(error.code).toBe('EIMAGE_NOT_FOUND');
    expect(error.message).toContain(`${registry.host}/box/multi:nope`);
    expect(error.message).toMatch(/not found/);
    expect(error.status).toBe(404);
    const missingRepo = await rejection(pullImage(store, `${registry.host}/box/none:v1`));
    expect(missingRepo.code).toBe('EIMAGE_NOT_FOUND');
  });

  it('fails fast and clearly when nothing listens (closed port on 127.0.0.1)', async () => {
    const dead = await import('./registry-fixtures.js').then((m) => m.freePort());
    const store = await newStore();
    const started = Date.now();
    const error = await rejection(pullImage(store, `127.0.0.1:${dead}/box/none:v1`));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.code).toBe('EIMAGE_REGISTRY');
    expect(error.message).toMatch(/no network/);
    expect(error.message).toMatch(/connection refused/);
    expect(error.message).toContain(`127.0.0.1:${dead}`);
  });
});

describe('interrupted pull', () => {
  it('reports the registry gone mid-layer, then resumes with a Range request', async () => {
    const { randomBytes } = await import('node:crypto');
    const big = await layer([{ name: 'big.bin', body: randomBytes(40 << 20) }], 1);
    const small = await layer([{ name: 'small', body: 'small\n' }]);
    await publish(`${registry.host}/box/big:v1`, [{ layers: [small, big] }]);
    const bigDigest = sha256(big.gz);
    const store = await newStore();
    let killed = false;
    let seen = 0;
    const error = await rejection(
      pullImage(store, `${registry.host}/box/big:v1`, {
        onProgress: (e) => {
          if (e.type !== 'layer' || e.digest !== bigDigest || e.status !== 'downloading') return;
          seen = e.current ?? 0;
          if (!killed && seen > 4 << 20) {
            killed = true;
            void registry.kill();
          }
        },
      }),
    );
    expect(killed).toBe(true);
    expect(error.code).toBe('EIMAGE_REGISTRY');
    expect(error.message).toMatch(/connection refused|connection closed|no network/);
    expect(store.listImages()).toEqual([]);
    const partial = join(store.tmpDir, `pull-${bigDigest.slice(7)}.partial`);
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThan(4 << 20);
    expect(kept).toBeLessThan(big.gz.length);

    await registry.start();
    const events: ProgressEvent[] = [];
    const result = await pullImage(store, `${registry.host}/box/big:v1`, {
      onProgress: (e) => events.push(e),
    });
    const first = events.find(
      (e) => e.type === 'layer' && e.digest === bigDigest && e.status === 'downloading',
    );
    expect(first).toMatchObject({ current: kept, total: big.gz.length }); // resumed, not started over
    const image = store.resolve(result.id);
    expect(statSync(join(image.layers[1]!.path, 'big.bin')).size).toBe(40 << 20);
    expect(existsSync(partial)).toBe(false);
    expect(readdirSync(store.tmpDir)).toEqual([]);
  }, 120_000);
});

describe('push', () => {
  it('pushes a pulled image (blobs mounted from its repository) and a new one; pull and skopeo agree on every digest', async () => {
    const a = await layer([{ name: 'push/a', body: 'layer a\n' }]);
    const b = await layer([{ name: 'push/b', body: 'layer b\n' }]);
    await publish(`${registry.host}/box/source:v1`, [{ layers: [a, b] }]);
    const store = await newStore();
    const pulled = await pullImage(store, `${registry.host}/box/source:v1`);

    const events: ProgressEvent[] = [];
    const pushed = await pushImage(store, `${registry.host}/box/source:v1`, `${registry.host}/box/copy:v2`, {
      onProgress: (e) => events.push(e),
    });
    expect(pushed.digest).toBe(store.resolve(pulled.id).manifestDigest);
    const statuses = events.filter((e) => e.type === 'layer').map((e) => (e as { status: string }).status);
    expect(statuses.filter((s) => s === 'mounted')).toHaveLength(2);
    expect(events.at(-1)).toMatchObject({ type: 'done', status: 'pushed', digest: pushed.digest });

    // A new image (never in the registry): uploaded.
    const tar = await makeTar([{ name: 'etc/fresh', body: 'fresh\n' }]);
    const id = await importRootfsTar(store, streamOf(gzipSync(tar)), 'local/fresh:1', {
      config: { Cmd: ['/x'] },
    });
    const freshEvents: ProgressEvent[] = [];
    const fresh = await pushImage(store, 'local/fresh:1', `${registry.host}/box/fresh:1`, {
      onProgress: (e) => freshEvents.push(e),
    });
    expect(freshEvents.some((e) => e.type === 'layer' && e.status === 'pushed')).toBe(true);
    expect(store.inspectImage(id).RepoDigests).toContain(`${registry.host}/box/fresh@${fresh.digest}`);
    expect(fresh.size).toBe(store.readBlob(fresh.digest).length);

    for (const [target, localId, digest] of [
      [`${registry.host}/box/copy:v2`, pulled.id, pushed.digest],
      [`${registry.host}/box/fresh:1`, id, fresh.digest],
    ] as const) {
      const local = store.resolve(localId);
      const inspected = (await skopeoInspect(target)) as { Digest: string; Layers: string[] };
      const raw = await skopeoRaw(target);
      expect(inspected.Digest).toBe(digest);
      expect(sha256(raw)).toBe(local.manifestDigest);
      expect(JSON.parse(raw.toString()).config.digest).toBe(local.id);
      expect(inspected.Layers).toEqual(local.manifest.layers.map((l) => l.digest));
      const config = (await skopeoInspect(target, ['--config'])) as { rootfs: { diff_ids: string[] } };
      expect(config.rootfs.diff_ids).toEqual(local.layers.map((l) => l.diffID));

      const second = await newStore();
      const back = await pullImage(second, target);
      expect(back.id).toBe(localId);
      expect(back.digest).toBe(digest);
      expect(second.resolve(back.id).manifestDigest).toBe(local.manifestDigest);
    }
    // Pushing again: every blob exists.
    const again: ProgressEvent[] = [];
    await pushImage(store, 'local/fresh:1', `${registry.host}/box/fresh:1`, {
      onProgress: (e) => again.push(e),
    });
    expect(again.filter((e) => e.type === 'layer').map((e) => (e as { status: string }).status)).toEqual([
      'waiting',
      'exists',
    ]);
  }, 60_000);

  it('refuses to push an image ID without a target, and to a digest reference', async () => {
    const store = await newStore();
    const id = await importRootfsTar(store, streamOf(gzipSync(await makeTar([{ name: 'x', body: 'x' }]))));
    expect((await rejection(pushImage(store, id))).code).toBe('EIMAGE_REFERENCE');
    expect((await rejection(pushImage(store, id, `${registry.host}/a@sha256:${'0'.repeat(64)}`))).code).toBe(
      'EIMAGE_REFERENCE',
    );
  });
});

describe('basic auth (htpasswd)', () => {
  let secured: TestRegistry;
  let authFile: string;

  beforeAll(async () => {
    const dir = join(tmp.path, 'secured');
    const htpasswd = join(tmp.path, 'htpasswd');
    writeHtpasswd(htpasswd, 'boxuser', 's3cret pass');
    secured = await makeRegistry(dir, { htpasswd });
    const l = await layer([{ name: 'secret', body: 'behind basic auth\n' }]);
    await publish(
      `${secured.host}/box/private:v1`,
      [{ layers: [l] }],
      ['--dest-creds', 'boxuser:s3cret pass'],
    );
    authFile = join(tmp.path, 'docker-config', 'nested', 'config.json');
  }, 60_000);
  afterAll(() => secured?.stop());

  it('refuses anonymous pulls and bad logins, then logs in, pulls and logs out', async () => {
    const store = await newStore();
    const anonymous = await rejection(pullImage(store, `${secured.host}/box/private:v1`, { authFile }));
    expect(anonymous.code).toBe('EIMAGE_AUTH');
    expect(anonymous.status).toBe(401);
    expect(anonymous.message).toMatch(/unauthorized \(401\)/);
    expect(anonymous.message).toMatch(/log in/);

    const wrong = await rejection(
      registryLogin(secured.host, { username: 'boxuser', password: 'nope' }, { authFile }),
    );
    expect(wrong.code).toBe('EIMAGE_AUTH');
    expect(existsSync(authFile)).toBe(false);

    await import('node:fs').then((fs) => {
      fs.mkdirSync(join(tmp.path, 'docker-config', 'nested'), { recursive: true });
      fs.writeFileSync(
        authFile,
        JSON.stringify({ auths: { 'other.example': { auth: 'b3RoZXI6eA==' } }, psFormat: 'x' }),
      );
    });
    await registryLogin(secured.host, { username: 'boxuser', password: 's3cret pass' }, { authFile });
    const saved = JSON.parse(readFileSync(authFile, 'utf8'));
    expect(saved.psFormat).toBe('x');
    expect(saved.auths['other.example']).toEqual({ auth: 'b3RoZXI6eA==' });
    expect(Buffer.from(saved.auths[secured.host].auth, 'base64').toString()).toBe('boxuser:s3cret pass');
    expect(statSync(authFile).mode & 0o777).toBe(0o600);

    const result = await pullImage(store, `${secured.host}/box/private:v1`, { authFile });
    expect(readFileSync(join(store.resolve(result.id).layers[0]!.path, 'secret'), 'utf8')).toBe(
      'behind basic auth\n',
    );

    expect(await registryLogout(secured.host, { authFile })).toBe(true);
    expect(await registryLogout(`http://${secured.host}/`, { authFile })).toBe(false);
    expect(JSON.parse(readFileSync(authFile, 'utf8')).auths).toEqual({
      'other.example': { auth: 'b3RoZXI6eA==' },
    });
    const after = await rejection(
      pullImage(await newStore(), `${secured.host}/box/private:v1`, { authFile }),
    );
    expect(after.code).toBe('EIMAGE_AUTH');
  }, 60_000);

  it('asks a credential helper (credHelpers) with the registry on stdin', async () => {
    const bin = join(tmp.path, 'helper-bin');
    const log = join(tmp.path, 'helper.log');
    await import('node:fs').then((fs) => fs.mkdirSync(bin, { recursive: true }));
    writeFileSync(
      join(bin, 'docker-credential-boxtest'),
      `#!/bin/sh\nread host\necho "$1 $host" >> ${log}\nprintf '{"ServerURL":"%s","Username":"boxuser","Secret":"s3cret pass"}' "$host"\n`,
      { mode: 0o755 },
    );
    const file = join(tmp.path, 'helper-config.json');
    writeFileSync(file, JSON.stringify({ credHelpers: { [secured.host]: 'boxtest' } }));
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const result = await pullImage(await newStore(), `${secured.host}/box/private:v1`, { authFile: file });
      expect(result.upToDate).toBe(false);
    } finally {
      process.env.PATH = path;
    }
    expect(readFileSync(log, 'utf8')).toBe(`get ${secured.host}\n`);
  }, 30_000);

  it('reads username/password entries of config.json too', async () => {
    const file = join(tmp.path, 'plain-config.json');
    writeFileSync(
      file,
      JSON.stringify({
        auths: { [`http://${secured.host}`]: { username: 'boxuser', password: 's3cret pass' } },
      }),
    );
    const result = await pullImage(await newStore(), `${secured.host}/box/private:v1`, { authFile: file });
    expect(result.upToDate).toBe(false);
  }, 30_000);
});

describe('token auth', () => {
  let tokenRegistry: TestRegistry;
  let tokens: TokenServer;
  let authFile: string;

  beforeAll(async () => {
    const dir = join(tmp.path, 'token');
    await import('node:fs').then((fs) => fs.mkdirSync(dir, { recursive: true }));
    tokens = await makeTokenServer(dir, 'tokenuser', 'tokenpass');
    tokenRegistry = await makeRegistry(join(dir, 'registry'), { token: tokens });
    const layers = [
      await layer([{ name: 't1', body: 'one\n' }]),
      await layer([{ name: 't2', body: 'two\n' }]),
    ];
    await publish(
      `${tokenRegistry.host}/box/tokened:v1`,
      [{ layers }],
      ['--dest-creds', 'tokenuser:tokenpass'],
    );
    authFile = join(dir, 'config.json');
  }, 60_000);
  afterAll(async () => {
    await tokenRegistry?.stop();
    await tokens?.close();
  });

  it('fetches one bearer token for a whole pull, and another when the registry refuses it', async () => {
    const anonymous = await rejection(
      pullImage(await newStore(), `${tokenRegistry.host}/box/tokened:v1`, { authFile }),
    );
    expect(anonymous.code).toBe('EIMAGE_AUTH');
    expect(anonymous.message).toMatch(/log in/);

    tokens.requests.length = 0;
    await registryLogin(tokenRegistry.host, { username: 'tokenuser', password: 'tokenpass' }, { authFile });
    expect(tokens.requests).toEqual([{ scopes: [], user: 'tokenuser' }]);
    expect(
      (
        await rejection(
          registryLogin(tokenRegistry.host, { username: 'tokenuser', password: 'bad' }, { authFile }),
        )
      ).code,
    ).toBe('EIMAGE_AUTH');

    tokens.requests.length = 0;
    const store = await newStore();
    const first = await pullImage(store, `${tokenRegistry.host}/box/tokened:v1`, { authFile });
    expect(store.resolve(first.id).layers).toHaveLength(2);
    // manifest, config and two layers: one token.
    expect(tokens.requests).toEqual([{ scopes: ['repository:box/tokened:pull'], user: 'tokenuser' }]);

    tokens.requests.length = 0;
    tokens.nextTokenEmpty = true; // the registry will refuse it (insufficient scope): refresh
    const second = await pullImage(await newStore(), `${tokenRegistry.host}/box/tokened:v1`, { authFile });
    expect(second.id).toBe(first.id);
    expect(tokens.requests).toHaveLength(2);

    tokens.requests.length = 0;
    const pushed = await pushImage(store, first.id, `${tokenRegistry.host}/box/tokened-copy:v1`, {
      authFile,
    });
    expect(pushed.digest).toBe(first.digest);
    expect(tokens.requests.length).toBeGreaterThan(0);
    expect(tokens.requests.every((r) => r.user === 'tokenuser')).toBe(true);
  }, 60_000);
});

describe('a registry that misbehaves (a server of the test on 127.0.0.1)', () => {
  type Route = (req: IncomingMessage, res: ServerResponse) => void;
  let server: Server;
  let host: string;
  const routes = new Map<string, Route>();
  const sockets = new Set<import('node:net').Socket>();

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end('{}');
      const route = routes.get(`${req.method} ${req.url}`);
      if (route) return route(req, res);
      res.writeHead(404, { 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
    });
    server.on('connection', (socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const manifestOf = (layerDigest: string, layerSize: number, configDigest: string, configSize: number) =>
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: configDigest,
        size: configSize,
      },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layerSize }],
    });
  const serveManifest = (
    name: string,
    body: string | Buffer,
    type = 'application/vnd.oci.image.manifest.v1+json',
  ) =>
    routes.set(`GET /v2/${name}/manifests/v1`, (_req, res) => {
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)) });
      res.end(body);
    });

  it('lists tags page by page (Link: rel="next"), never following a link to another host', async () => {
    const page = (tags: string[], link?: string) => (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'application/json', ...(link ? { Link: link } : {}) });
      res.end(JSON.stringify({ name: 'paged', tags }));
    };
    routes.set(
      'GET /v2/paged/tags/list?n=1000',
      page(['v2', 'v1'], '</v2/paged/tags/list?last=v2&n=1000>; rel="next"'),
    );
    routes.set('GET /v2/paged/tags/list?last=v2&n=1000', page(['v3', 'v1']));
    expect(await listTags(`${host}/paged`)).toEqual(['v1', 'v2', 'v3']);
    routes.set(
      'GET /v2/away/tags/list?n=1000',
      page(['a'], '<http://192.0.2.1/v2/away/tags/list?last=a>; rel="next"'),
    );
    expect(await listTags(`${host}/away`)).toEqual(['a']);
    routes.set('GET /v2/bad/tags/list?n=1000', page([1 as unknown as string]));
    expect((await rejection(listTags(`${host}/bad`))).code).toBe('EIMAGE_CORRUPT');
    expect((await rejection(listTags(`${host}/missing`))).code).toBe('EIMAGE_NOT_FOUND');
  });

  it('refuses a manifest larger than the limit without reading it all', async () => {
    const huge = Buffer.alloc(5 << 20, 0x20);
    serveManifest('huge', huge);
    const store = await newStore();
    const error = await rejection(pullImage(store, `${host}/huge:v1`));
    expect(error.code).toBe('EIMAGE_TOO_LARGE');
    expect(error.message).toMatch(/more than|limit/);
    expect(storeFiles(store)).toEqual([]);
  });

  it('refuses a malformed manifest and an unsupported media type, naming them', async () => {
    serveManifest('malformed', '{"schemaVersion": 2, "layers": "not a list"');
    serveManifest(
      'foreign',
      '{"schemaVersion":2,"mediaType":"application/vnd.example.unknown+json"}',
      'application/vnd.example.unknown+json',
    );
    serveManifest(
      'schema1',
      '{"schemaVersion":1,"name":"schema1","tag":"v1","fsLayers":[]}',
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
    );
    const store = await newStore();
    const malformed = await rejection(pullImage(store, `${host}/malformed:v1`));
    expect(malformed.code).toBe('EIMAGE_CORRUPT');
    expect(malformed.message).toMatch(/manifest/);
    const foreign = await rejection(pullImage(store, `${host}/foreign:v1`));
    expect(foreign.code).toBe('EIMAGE_MEDIATYPE');
    expect(foreign.message).toContain('application/vnd.example.unknown+json');
    const schema1 = await rejection(pullImage(store, `${host}/schema1:v1`));
    expect(schema1.code).toBe('EIMAGE_MEDIATYPE');
    expect(schema1.message).toMatch(/docker schema 1 manifest .*not supported/);
    expect(storeFiles(store)).toEqual([]);
  });

  it('refuses a blob that is longer than its descriptor says, storing nothing', async () => {
    const tar = await makeTar([{ name: 'x', body: 'layer' }]);
    const config = Buffer.from(
      JSON.stringify({
        architecture: hostArchitecture(),
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
      }),
    );
    // The descriptor says 10 bytes: whatever the server sends past them is refused.
    serveManifest('long', manifestOf(sha256(tar), 10, sha256(config), config.length));
    routes.set(`GET /v2/long/blobs/${sha256(config)}`, (_req, res) => res.writeHead(200).end(config));
    routes.set(`GET /v2/long/blobs/${sha256(tar)}`, (_req, res) => res.writeHead(200).end(tar));
    const store = await newStore();
    const error = await rejection(pullImage(store, `${host}/long:v1`));
    expect(['EIMAGE_TOO_LARGE', 'EIMAGE_DIGEST']).toContain(error.code);
    expect(storeFiles(store)).toEqual([]);
  });

  it('gives up on a registry that stops answering, with a clear error, not a hang', async () => {
    // Headers that never come, then a body that stops half-way.
    routes.set('GET /v2/silent/manifests/v1', () => {});
    routes.set('GET /v2/stalled/manifests/v1', (_req, res) => {
      res.writeHead(200, {
        'Content-Type': 'application/vnd.oci.image.manifest.v1+json',
        'Content-Length': '1000',
      });
      res.write('{"schemaVersion":');
    });
    const store = await newStore();
    const timeouts = { headersMs: 300, stallMs: 300 };
    for (const name of ['silent', 'stalled']) {
      const started = Date.now();
      const error = await rejection(pullImage(store, `${host}/${name}:v1`, { timeouts }));
      // Retried (a stall is transient), then reported; never the default 30 s.
      expect(Date.now() - started).toBeLessThan(15_000);
      expect(error.code).toBe('EIMAGE_REGISTRY');
      expect(error.message).toMatch(
        /no response within 0\.3 s|the body stalled \(nothing received for 0\.3 s\)/,
      );
      expect(error.message).toContain(host);
    }
    expect(storeFiles(store)).toEqual([]);
  }, 30_000);
});
