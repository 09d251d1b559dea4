/**
 * Running the `nft` command: a change is one `nft -f -` with the whole batch on stdin, which
 * the kernel applies as one transaction (all of it or nothing); a listing is `nft -j list`.
 * With `netns`, nft runs in that named network namespace through `ip netns exec`.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { FirewallError } from './errors.js';

export interface NftRunner {
  /** The nft binary, or `nft` found in /usr/sbin, /sbin, /usr/bin, then PATH. */
  nft?: string;
  /** A named network namespace (/run/netns/NAME) to run in. */
  netns?: string;
  /** How long one nft may take before it is killed (10 s). */
  timeoutMs?: number;
}

interface Output {
  code: number | null;
  stdout: string;
  stderr: string;
}

const located = new Map<string, string>();

/** The path of the nft binary; `ENFTMISSING` naming the Debian package when there is none. */
export function locateNft(given?: string): string {
  const key = given ?? '';
  const known = located.get(key);
  if (known) return known;
  const candidates = given?.includes('/')
    ? [given]
    : // The system's own directories first: box runs as root, and a directory early in the
      // caller's PATH (a project's bin, a writable one) must not choose what edits the firewall.
      ['/usr/sbin', '/sbin', '/usr/bin', ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)].map(
        (dir) => join(dir, given ?? 'nft'),
      );
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      located.set(key, path);
      return path;
    } catch {}
  }
  throw new FirewallError(
    'ENFTMISSING',
    `${given ?? 'nft'} was not found: box's bridge networks need nftables (Debian: apt-get install nftables)`,
  );
}

function run(runner: NftRunner, args: string[], input: string): Promise<Output> {
  const nft = locateNft(runner.nft);
  const [command, argv] = runner.netns ? ['ip', ['netns', 'exec', runner.netns, nft, ...args]] : [nft, args];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), runner.timeoutMs ?? 10_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new FirewallError('ENFT', `${command}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal) stderr += `${command} was killed by ${signal}`;
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // nft may exit before reading everything; its status says why
    child.stdin.end(input);
  });
}

/**
 * Applies `lines` as one batch. On failure the error names the batch line nft points at
 * (`/dev/stdin:LINE:…`) as `command`, with nft's message.
 */
export async function applyBatch(runner: NftRunner, lines: readonly string[]): Promise<void> {
  const { code, stderr } = await run(runner, ['-f', '-'], `${lines.join('\n')}\n`);
  if (code === 0) return;
  const where = /^\/dev\/stdin:(\d+):[^ ]* Error: (.*)$/m.exec(stderr);
  const command = where ? lines[Number(where[1]) - 1] : undefined;
  const reason = where ? where[2]! : stderr.trim().split('\n')[0] || `exit status ${code}`;
  throw new FirewallError('ENFT', `nft: ${reason}${command ? ` (in: ${command})` : ''}`, {
    command,
    stderr: stderr.trim(),
  });
}

/** `nft -j list ARGS…` parsed, or null when the object listed does not exist. */
export async function listJson(runner: NftRunner, args: readonly string[]): Promise<unknown[] | null> {
  const { code, stdout, stderr } = await run(runner, ['-j', 'list', ...args], '');
  if (code !== 0) {
    if (/^Error: No such file or directory/m.test(stderr)) return null;
    throw new FirewallError('ENFT', `nft list ${args.join(' ')}: ${stderr.trim().split('\n')[0]}`, {
      stderr: stderr.trim(),
    });
  }
  try {
    const parsed = JSON.parse(stdout) as { nftables?: unknown };
    if (!Array.isArray(parsed.nftables)) throw new Error('no "nftables" array');
    return parsed.nftables;
  } catch (error) {
    throw new FirewallError('ENFT', `nft list ${args.join(' ')} printed no JSON listing`, {
      stderr: stderr.trim(),
      cause: error,
    });
  }
}
