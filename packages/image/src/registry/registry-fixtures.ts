// Test helpers: a real docker-registry (Debian's distribution 2.8) on 127.0.0.1, OCI layouts built
// in code and copied into it with skopeo. Not part of the public API.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { createSign, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sha256 } from '../digest.js';
import { MediaType } from '../manifest.js';

const execFileAsync = promisify(execFile);

function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs docker-registry, skopeo and htpasswd (apache2-utils) from Debian when missing. */
export function ensureTools(): void {
  const missing = [
    ['docker-registry', 'docker-registry'],
    ['skopeo', 'skopeo'],
    ['htpasswd', 'apache2-utils'],
    ['openssl', 'openssl'],
  ]
    .filter(([tool]) => !has(tool!))
    .map(([, pkg]) => pkg!);
  if (missing.length === 0) return;
  execFileSync('apt-get', ['install', '-y', '-qq', ...missing], {
    stdio: 'ignore',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

/** A port on 127.0.0.1 that nothing listens on (at the time of asking). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export type RegistryAuth =
  | { htpasswd: string }
  | { token: { realm: string; service: string; issuer: string; rootcertbundle: string } };

export interface TestRegistry {
  host: string;
  port: number;
  storage: string;
  /** Starts it (again, on the same port and storage). */
  start(): Promise<void>;
  /** SIGKILL, as a crash or a pulled cable. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** A docker-registry with its config and storage under `dir`, on a free 127.0.0.1 port. */
export async function makeRegistry(dir: string, auth?: RegistryAuth): Promise<TestRegistry> {
  const port = await freePort();
  const storage = join(dir, 'storage');
  mkdirSync(storage, { recursive: true });
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
  ];
  if (auth && 'htpasswd' in auth) {
    lines.push('auth:', '  htpasswd:', '    realm: box-test', `    path: ${auth.htpasswd}`);
  } else if (auth && 'token' in auth) {
    const t = auth.token;
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${t.realm}`,
      `    service: ${t.service}`,
      `    issuer: ${t.issuer}`,
      `    rootcertbundle: ${t.rootcertbundle}`,
    );
  }
  const config = join(dir, 'config.yml');
  writeFileSync(config, `${lines.join('\n')}\n`);
  let child: ChildProcess | undefined;
  let output = '';
  const exited = () =>
    new Promise<void>((resolve) =>
      child?.exitCode !== null || child?.signalCode !== null
        ? resolve()
        : child.once('exit', () => resolve()),
    );
  const registry: TestRegistry = {
    host: `127.0.0.1:${port}`,
    port,
    storage,
    async start() {
      child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (d: Buffer) => {
        output += d.toString();
      });
      child.stderr?.on('data', (d: Buffer) => {
        output += d.toString();
      });
      const deadline = Date.now() + 15_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`docker-registry exited: ${output}`);
        try {
          const res = await fetch(`http://127.0.0.1:${port}/v2/`);
          await res.arrayBuffer();
          if (res.status === 200 || res.status === 401) return;
        } catch {}
        if (Date.now() > deadline) throw new Error(`docker-registry did not start: ${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited();
    },
    async stop() {
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 5000);
      await exited();
      clearTimeout(timer);
    },
  };
  await registry.start();
  return registry;
}

/** An htpasswd file with a bcrypt entry (apache2-utils' htpasswd -nbB). */
export function writeHtpasswd(path: string, user: string, password: string): void {
  writeFileSync(path, execFileSync('htpasswd', ['-nbB', user, password], { encoding: 'utf8' }));
}

export interface LayoutImage {
  /** Layer blobs (gzip tars). */
  layers: Buffer[];
  os?: string;
  architecture?: string;
  variant?: string;
  cmd?: string[];
}

function writeBlob(dir: string, bytes: Buffer): { digest: string; size: number } {
  const digest = sha256(bytes);
  writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/** The config and manifest of one image into `dir`'s blobs; its manifest descriptor. */
function writeImage(dir: string, image: LayoutImage, diffIds: string[]) {
  const config = Buffer.from(
    JSON.stringify({
      created: '2024-01-01T00:00:00Z',
      architecture: image.architecture ?? 'amd64',
      os: image.os ?? 'linux',
      ...(image.variant ? { variant: image.variant } : {}),
      config: { Env: ['PATH=/usr/bin:/bin'], Cmd: image.cmd ?? ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'box test' })),
    }),
  );
  const layers = image.layers.map((l) => ({ mediaType: MediaType.OCI_LAYER_GZIP, ...writeBlob(dir, l) }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: { mediaType: MediaType.OCI_CONFIG, ...writeBlob(dir, config) },
      layers,
    }),
  );
  return { mediaType: MediaType.OCI_MANIFEST, ...writeBlob(dir, manifest) };
}

/**
 * Writes an OCI layout at `dir` with `tag` naming one image, or an index of several (multi-arch).
 * `diffIds` are the sha256 of the uncompressed tars, one list per image.
 */
export function writeLayout(
  dir: string,
  tag: string,
  images: { image: LayoutImage; diffIds: string[] }[],
): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const descriptors = images.map(({ image, diffIds }) => ({
    ...writeImage(dir, image, diffIds),
    platform: {
      os: image.os ?? 'linux',
      architecture: image.architecture ?? 'amd64',
      ...(image.variant ? { variant: image.variant } : {}),
    },
  }));
  let top: { mediaType: string; digest: string; size: number };
  if (descriptors.length === 1) {
    const { platform: _, ...d } = descriptors[0]!;
    top = d;
  } else {
    const index = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: descriptors }),
    );
    top = { mediaType: MediaType.OCI_INDEX, ...writeBlob(dir, index) };
  }
  const index = {
    schemaVersion: 2,
    manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }],
  };
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
}

/**
 * skopeo copy oci:DIR:tag docker://target, over http. Asynchronous: the token server it may talk
 * to runs in this process.
 */
export async function skopeoCopy(
  policy: string,
  layout: string,
  tag: string,
  target: string,
  extra: string[] = [],
): Promise<void> {
  await execFileAsync(
    'skopeo',
    [
      '--policy',
      policy,
      'copy',
      '-q',
      '--all',
      '--dest-tls-verify=false',
      ...extra,
      `oci:${layout}:${tag}`,
      `docker://${target}`,
    ],
    { timeout: 60_000 },
  );
}

export async function skopeoInspect(target: string, extra: string[] = []): Promise<unknown> {
  const { stdout } = await execFileAsync(
    'skopeo',
    ['inspect', '--tls-verify=false', ...extra, `docker://${target}`],
    {
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout);
}

export async function skopeoRaw(target: string, extra: string[] = []): Promise<Buffer> {
  const { stdout } = await execFileAsync(
    'skopeo',
    ['inspect', '--raw', '--tls-verify=false', ...extra, `docker://${target}`],
    {
      timeout: 60_000,
      encoding: 'buffer',
    },
  );
  return stdout;
}

export interface TokenServer {
  realm: string;
  issuer: string;
  service: string;
  rootcertbundle: string;
  /** Token requests received. */
  requests: { scopes: string[]; user: string | undefined }[];
  /** When set, the next token is issued without any access (the registry refuses it: a refresh test). */
  nextTokenEmpty: boolean;
  close(): Promise<void>;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString('base64url');

/**
 * A docker token server (the protocol docker-registry's `auth: token` expects): checks basic
 * credentials, signs RS256 JWTs with a self-made key whose certificate goes in the `x5c` header
 * and in the registry's rootcertbundle.
 */
export async function makeTokenServer(dir: string, user: string, password: string): Promise<TokenServer> {
  const key = join(dir, 'token.key');
  const cert = join(dir, 'token.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=box-test-token',
    ],
    { stdio: 'ignore' },
  );
  const keyPem = readFileSync(key, 'utf8');
  const der = Buffer.from(
    readFileSync(cert, 'utf8')
      .replace(/-----(BEGIN|END) CERTIFICATE-----/g, '')
      .replace(/\s+/g, ''),
    'base64',
  );
  const issuer = 'box-test-issuer';
  const service = 'box-test-registry';
  const state: TokenServer = {
    realm: '',
    issuer,
    service,
    rootcertbundle: cert,
    requests: [],
    nextTokenEmpty: false,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const scopes = url.searchParams.getAll('scope');
    const authz = req.headers.authorization ?? '';
    const decoded = authz.startsWith('Basic ') ? Buffer.from(authz.slice(6), 'base64').toString() : undefined;
    state.requests.push({ scopes, user: decoded?.split(':')[0] });
    if (decoded !== `${user}:${password}`) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end('{"details":"wrong credentials"}');
      return;
    }
    const empty = state.nextTokenEmpty;
    state.nextTokenEmpty = false;
    const access = empty
      ? []
      : scopes.map((s) => {
          const [type, ...rest] = s.split(':');
          const actions = rest.pop() ?? '';
          return { type, name: rest.join(':'), actions: actions.split(',') };
        });
    const now = Math.floor(Date.now() / 1000);
    const header = { alg: 'RS256', typ: 'JWT', x5c: [der.toString('base64')] };
    const claims = {
      iss: issuer,
      sub: user,
      aud: service,
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(input).sign(keyPem);
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: `${input}.${b64url(signature)}`, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.realm = `http://127.0.0.1:${(server.address() as { port: number }).port}/token`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}
