/**
 * Registry commands: pull, push, login, logout, and the pull `run`/`create` make for a missing
 * image (`--pull missing|always|never`). The work is @box/image's; this prints docker's lines.
 */
import {
  familiarName,
  familiarString,
  formatPlatform,
  isImageError,
  listTags,
  normalizeReference,
  parsePlatform,
  parseReference,
  platformMatches,
  pullImage,
  pushImage,
  type RegistryOptions,
  registryLogin,
  registryLogout,
} from '@box/image';
import { openEngine } from '../engine.js';
import { CliError } from '../errors.js';
import { imageError, imageStore as openStore } from '../image-store.js';
import { progressPrinter } from '../output/progress.js';

const imageStore = () => openStore(openEngine().root);

/** Registries spoken to over plain http besides loopback ones: BOX_INSECURE_REGISTRIES=host:port,… */
function registryOptions(): RegistryOptions {
  const insecure = (process.env.BOX_INSECURE_REGISTRIES ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return { insecureRegistries: insecure };
}

/** The repository as docker names it in its output: `library/busybox` on docker.io, else in full. */
function repositoryPath(reference: string): string {
  const ref = parseReference(reference);
  return ref.domain === 'docker.io' ? ref.path : ref.name;
}

async function pullWithOutput(
  reference: string,
  flags: { quiet?: boolean; platform?: string },
  out: NodeJS.WriteStream,
): Promise<string> {
  let normalized: string;
  try {
    normalized = normalizeReference(reference);
  } catch (error) {
    throw imageError(error);
  }
  const ref = parseReference(normalized);
  const quiet = flags.quiet ?? false;
  const say = (line: string) => {
    if (!quiet) out.write(`${line}\n`);
  };
  if (!/[:@]/.test(reference.slice(reference.lastIndexOf('/') + 1))) say('Using default tag: latest');
  say(`${ref.tag ?? ref.digest}: Pulling from ${repositoryPath(normalized)}`);
  const printer = progressPrinter((text) => out.write(text), { tty: out.isTTY === true, quiet });
  try {
    const result = await pullImage(await imageStore(), normalized, {
      ...registryOptions(),
      platform: flags.platform,
      onProgress: printer,
    });
    printer.end();
    const shown = familiarString(ref);
    say(`Digest: ${result.digest}`);
    say(
      result.upToDate
        ? `Status: Image is up to date for ${shown}`
        : `Status: Downloaded newer image for ${shown}`,
    );
    return normalized;
  } catch (error) {
    printer.end();
    throw imageError(error);
  }
}

export async function pull(
  reference: string,
  flags: { quiet?: boolean; platform?: string; allTags?: boolean },
): Promise<number> {
  if (flags.allTags) return pullAllTags(reference, flags);
  const normalized = await pullWithOutput(reference, flags, process.stdout);
  process.stdout.write(`${normalized}\n`);
  return 0;
}

/** `pull --all-tags REPOSITORY`: every tag the registry lists, one after the other, as docker. */
async function pullAllTags(
  reference: string,
  flags: { quiet?: boolean; platform?: string },
): Promise<number> {
  if (/[:@]/.test(reference.slice(reference.lastIndexOf('/') + 1)))
    throw new CliError("tag can't be used with --all-tags/-a");
  let ref: ReturnType<typeof parseReference>;
  let tags: string[];
  try {
    ref = parseReference(normalizeReference(reference));
    tags = await listTags(ref.name, registryOptions());
  } catch (error) {
    throw imageError(error);
  }
  const name = ref.name;
  if (tags.length === 0) throw new CliError(`no tags found for ${familiarName(ref)}`);
  for (const tag of tags) await pullWithOutput(`${name}:${tag}`, flags, process.stdout);
  process.stdout.write(`${name}\n`);
  return 0;
}

const PULL_POLICIES = ['missing', 'always', 'never'] as const;

/**
 * What `run` and `create` do before the engine resolves the image: pull it when it is missing
 * (docker's default) or always; never leaves a missing one to the engine's "Unable to find
 * image". With --platform, a local image of another platform counts as missing, as docker's:
 * pulled for that platform, or refused with `--pull never`. Progress goes to stderr, as
 * docker's does for run.
 */
export async function pullForContainer(
  reference: string,
  policy = 'missing',
  platform?: string,
): Promise<void> {
  if (!(PULL_POLICIES as readonly string[]).includes(policy))
    throw new CliError(`invalid pull option: '${policy}': must be one of "always", "missing" or "never"`);
  if (policy === 'always') {
    await pullWithOutput(reference, { platform }, process.stderr);
    return;
  }
  if (policy === 'never' && platform === undefined) return;
  const store = await imageStore();
  try {
    if (platform !== undefined) parsePlatform(platform);
    if (store.hasImage(reference)) {
      const mismatch = platformMismatch(store.inspectImage(reference), reference, platform);
      if (mismatch === undefined) return;
      if (policy === 'never') throw new CliError(mismatch);
    } else if (policy === 'never') return;
  } catch (error) {
    throw imageError(error);
  }
  const shown = /[:@]/.test(reference.slice(reference.lastIndexOf('/') + 1))
    ? reference
    : `${reference}:latest`;
  process.stderr.write(`Unable to find image '${shown}' locally\n`);
  await pullWithOutput(reference, { platform }, process.stderr);
}

/** docker's words for a local image that is not of the --platform asked for; undefined if it is. */
function platformMismatch(
  image: { Os?: string; Architecture?: string; Variant?: string },
  reference: string,
  platform: string | undefined,
): string | undefined {
  if (platform === undefined) return undefined;
  const wanted = parsePlatform(platform);
  const actual = { os: image.Os, architecture: image.Architecture, variant: image.Variant };
  if (platformMatches(actual, wanted)) return undefined;
  return `image with reference ${reference} was found but does not match the specified platform: wanted ${formatPlatform(wanted)}, actual: ${formatPlatform(actual)}`;
}

export async function push(reference: string, flags: { quiet?: boolean }): Promise<number> {
  let normalized: string;
  try {
    normalized = normalizeReference(reference);
  } catch (error) {
    throw imageError(error);
  }
  const quiet = flags.quiet ?? false;
  if (!quiet) process.stdout.write(`The push refers to repository [${parseReference(normalized).name}]\n`);
  const printer = progressPrinter((text) => process.stdout.write(text), {
    tty: process.stdout.isTTY === true,
    quiet,
    push: true,
  });
  try {
    const result = await pushImage(await imageStore(), reference, normalized, {
      ...registryOptions(),
      onProgress: printer,
    });
    printer.end();
    const ref = parseReference(normalized);
    if (quiet) process.stdout.write(`${normalized}\n`);
    else process.stdout.write(`${ref.tag ?? 'latest'}: digest: ${result.digest} size: ${result.size}\n`);
  } catch (error) {
    printer.end();
    throw imageError(error);
  }
  return 0;
}

/** docker login: -u and -p, or --password-stdin, or asked on a terminal. */
export async function login(
  server: string | undefined,
  flags: { username?: string; password?: string; passwordStdin?: boolean },
): Promise<number> {
  const registry = server ?? 'docker.io';
  let { username, password } = flags;
  if (flags.passwordStdin) {
    if (password !== undefined) throw new CliError('--password and --password-stdin are mutually exclusive');
    if (!username) throw new CliError('Must provide --username with --password-stdin');
    password = (await readAll(process.stdin)).replace(/\r?\n$/, '');
  } else if (password !== undefined) {
    process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  }
  if (username === undefined || password === undefined) {
    if (!process.stdin.isTTY) throw new CliError('Cannot perform an interactive login from a non TTY device');
    username ??= await ask('Username: ', false);
    password ??= await ask('Password: ', true);
  }
  if (!username) throw new CliError('Error: Non-null Username Required');
  try {
    await registryLogin(registry, { username, password }, registryOptions());
  } catch (error) {
    if (isImageError(error)) throw new CliError(`Error response from daemon: ${error.message}`, 1);
    throw error;
  }
  process.stdout.write('Login Succeeded\n');
  return 0;
}

export async function logout(server: string | undefined): Promise<number> {
  const registry = server ?? 'docker.io';
  try {
    const removed = await registryLogout(registry, registryOptions());
    process.stdout.write(
      removed ? `Removing login credentials for ${registry}\n` : `Not logged in to ${registry}\n`,
    );
  } catch (error) {
    throw imageError(error);
  }
  return 0;
}

function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      data += chunk;
    });
    stream.on('end', () => resolve(data));
    stream.on('error', reject);
  });
}

/** One line from the terminal; `secret` turns echo off while it is typed. */
async function ask(prompt: string, secret: boolean): Promise<string> {
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  if (secret) {
    // readline echoes what it reads through _writeToOutput: nothing is shown for a password.
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = (s: string) => {
      if (s.startsWith(prompt)) process.stdout.write(prompt);
    };
  }
  return new Promise((resolve) =>
    rl.question(prompt, (answer) => {
      rl.close();
      if (secret) process.stdout.write('\n');
      resolve(answer);
    }),
  );
}
