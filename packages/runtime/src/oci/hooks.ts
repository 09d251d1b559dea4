/**
 * OCI hooks (config.md, "POSIX-platform Hooks"): programs the runtime runs at points of a
 * container's life with its state as JSON on stdin. `createRuntime`/`prestart`, `poststart` and
 * `poststop` run in the runtime's namespaces; `createContainer` and `startContainer` in the
 * container's (joined through a pidfd of its process, so never a process that took its pid).
 * A hook gets only the environment the config gives it (never this process's), and is killed
 * when its `timeout` runs out.
 */
import { writeSync } from 'node:fs';
import type { NamespaceType } from '@box/ns';
import { close, pipe } from '@box/sys';
import { RuntimeError } from '../errors.js';
import { openProcess } from '../process/handle.js';
import type { Hook, HookKind, Hooks } from '../spec.js';
import type { OciState } from './state.js';

export type { Hook, HookKind, Hooks };

/** Where a hook runs: the runtime's namespaces, or those of the container's process. */
export interface HookPlace {
  container?: { pid: number; startTime?: number; namespaces: readonly NamespaceType[] };
}

function failure(kind: HookKind, hook: Hook, detail: string): RuntimeError {
  return new RuntimeError('EHOOK', `${kind} hook ${hook.path} ${detail}`);
}

/** Runs the hooks of `kind` in order; the first that fails (or times out) rejects. */
export async function runHooks(
  kind: HookKind,
  hooks: Hook[] | undefined,
  state: OciState,
  place: HookPlace = {},
): Promise<void> {
  for (const hook of hooks ?? []) {
    if (typeof hook?.path !== 'string' || !hook.path.startsWith('/'))
      throw failure(kind, hook, 'must have an absolute path');
    const input = `${JSON.stringify(state)}\n`;
    const status = place.container
      ? await runInContainer(hook, input, place.container)
      : await runHere(hook, input);
    if (status === 'timeout') throw failure(kind, hook, `timed out after ${hook.timeout} s`);
    if (status.error) throw failure(kind, hook, `failed: ${status.error}`);
  }
}

type HookEnd = 'timeout' | { error?: string };

function timeoutMs(hook: Hook): number | undefined {
  if (hook.timeout === undefined) return undefined;
  if (!Number.isInteger(hook.timeout) || hook.timeout <= 0)
    throw new RuntimeError('ESPEC', `hook ${hook.path}: timeout must be a positive integer`);
  return hook.timeout * 1000;
}

async function runHere(hook: Hook, input: string): Promise<HookEnd> {
  const ms = timeoutMs(hook);
  // Loaded by the first hook: most containers have none.
  const { spawn: spawnProcess } = await import('node:child_process');
  return new Promise((resolve) => {
    const [argv0, ...args] = hook.args?.length ? hook.args : [hook.path];
    const child = spawnProcess(hook.path, args, {
      argv0,
      env: Object.fromEntries(
        (hook.env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
      ),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.stdin.on('error', () => undefined); // a hook that does not read its stdin
    child.stdin.end(input);
    const timer = ms === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ error: error.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && ms !== undefined) resolve('timeout');
      else if (code === 0) resolve({});
      else
        resolve({
          error: `${code === null ? `signal ${signal}` : `exit status ${code}`}${output.trim() ? `: ${output.trim()}` : ''}`,
        });
    });
  });
}

async function runInContainer(
  hook: Hook,
  input: string,
  container: NonNullable<HookPlace['container']>,
): Promise<HookEnd> {
  const target = openProcess(container.pid, container.startTime);
  if (!target?.pidfd) {
    target?.close();
    return { error: 'the container process is gone' };
  }
  const [r, w] = pipe();
  try {
    // The state is small: it fits the pipe's buffer, so it is written before the hook runs.
    try {
      writeSync(w, input);
    } finally {
      close(w);
    }
    const { spawn } = await import('@box/ns');
    const child = await spawn({
      path: hook.path,
      args: hook.args?.length ? hook.args : [hook.path],
      env: hook.env ?? [],
      joinProcess: {
        pidfd: target.pidfd,
        types: container.namespaces,
        name: `container process ${container.pid}`,
      },
      stdio: [r, 2, 2],
    });
    const ms = timeoutMs(hook);
    const timer = ms === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), ms);
    const status = await child.exited;
    clearTimeout(timer);
    if (status.signal === 9 && ms !== undefined) return 'timeout';
    if (status.exitCode === 0) return {};
    return { error: status.exitCode === null ? `signal ${status.signal}` : `exit status ${status.exitCode}` };
  } catch (error) {
    return { error: (error as Error).message };
  } finally {
    close(r);
    target.close();
  }
}
