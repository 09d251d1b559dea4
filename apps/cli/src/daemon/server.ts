/**
 * `box system service`: the process that starts and watches detached
 * containers. It is started on demand by the first command that needs it,
 * holds $BOX_ROOT/service.lock so that only one runs, listens on
 * $BOX_ROOT/box.sock, and exits after a while with nothing to watch.
 *
 * If it dies, detached containers keep running; the next box command starts a
 * new service, which adopts them (their logs stop: the output pipes died with
 * the old one) and records their end.
 */
import { closeSync, openSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { tryLock } from '@box/sys';
import { CliError, EXIT_BOX_ERROR, translateStartError } from '../errors.js';
import { boxRoot } from '../paths.js';
import { reconcile } from '../recovery.js';
import { secureStateDir } from '../state-dir.js';
import type { Request, Response } from './protocol.js';
import { Supervisor } from './supervisor.js';

export const socketPath = (): string => join(boxRoot(), 'box.sock');

export async function serve(): Promise<number> {
  // Nothing of the command that started it: no cwd on the caller's file system.
  process.chdir('/');
  secureStateDir();
  const lockPath = join(boxRoot(), 'service.lock');
  const lock = openSync(lockPath, 'w', 0o600);
  if (!tryLock(lock, lockPath)) {
    closeSync(lock);
    return 0; // another service is running
  }
  const supervisor = new Supervisor();
  await reconcile({ skipService: true });
  supervisor.adoptOrphans();

  rmSync(socketPath(), { force: true });
  const server = createServer((socket) => handle(socket, supervisor));
  await new Promise<void>((resolve) => server.listen(socketPath(), resolve));

  const idleMs = Number(process.env.BOX_SERVICE_IDLE_MS ?? 30_000);
  let idleSince = Date.now();
  let clients = 0;
  server.on('connection', (socket) => {
    clients++;
    socket.on('close', () => {
      clients--;
      idleSince = Date.now();
    });
  });
  await new Promise<void>((resolve) => {
    const timer = setInterval(
      () => {
        if (supervisor.size > 0 || clients > 0) idleSince = Date.now();
        else if (Date.now() - idleSince >= idleMs) {
          clearInterval(timer);
          resolve();
        }
      },
      Math.min(1000, idleMs),
    );
  });
  // Stop taking requests before letting go of the lock.
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(socketPath(), { force: true });
  closeSync(lock);
  return 0;
}

function handle(socket: Socket, supervisor: Supervisor): void {
  let buffer = '';
  socket.on('data', async (chunk) => {
    buffer += chunk.toString();
    const newline = buffer.indexOf('\n');
    if (newline === -1) return;
    const line = buffer.slice(0, newline);
    buffer = buffer.slice(newline + 1);
    let response: Response;
    try {
      const request = JSON.parse(line) as Request;
      if (request.op === 'ping') response = { ok: true };
      else if (request.op === 'start') response = { ok: true, pid: await supervisor.start(request.id) };
      else throw new CliError(`unknown request ${JSON.stringify((request as { op: unknown }).op)}`);
    } catch (raw) {
      const error = translateStartError(raw);
      response = {
        ok: false,
        error: error instanceof Error ? error.message : String(error),
        exitCode: error instanceof CliError ? error.exitCode : EXIT_BOX_ERROR,
      };
    }
    socket.end(`${JSON.stringify(response)}\n`);
  });
  socket.on('error', () => undefined);
}
