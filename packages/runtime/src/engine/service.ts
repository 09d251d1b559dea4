/**
 * The box service: the process that owns detached containers (a Supervisor) and serves
 * requests on ROOT/box.sock. Started on demand by the first operation that needs it (see
 * service-client.ts), it holds ROOT/service.lock so that only one runs, and exits after
 * `idleMs` with nothing to watch.
 *
 * If it dies, detached containers keep running; the next operation starts a new service, which
 * adopts them (their logs stop: the output pipes died with the old one) and records their end.
 */
import { chmodSync, closeSync, openSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tryLock } from '@box/sys';
import { RuntimeError } from '../errors.js';
import { type AttachRequest, type ContainerAttachRequest, readRequestLine } from './attach-protocol.js';
import { serveAttach, serveContainerAttach } from './attach-server.js';
import type { EngineContext } from './context.js';
import { reconcile } from './recovery.js';
import type { ServiceRequest, ServiceResponse } from './service-protocol.js';
import { secureStateDir } from './state-dir.js';
import { Supervisor } from './supervisor.js';

export interface ServeOptions {
  /** Exit after this long with no container and no client (default 30 s). */
  idleMs?: number;
}

/** Runs the service until it has been idle for `idleMs`; resolves at once if another one runs. */
export async function serve(ctx: EngineContext, options: ServeOptions = {}): Promise<void> {
  const { layout } = ctx;
  secureStateDir(layout);
  const lock = openSync(layout.serviceLock, 'w', 0o600);
  if (!tryLock(lock, layout.serviceLock)) {
    closeSync(lock);
    return; // another service is running
  }
  const supervisor = new Supervisor(ctx, { inProcess: false });
  // This process is the supervisor: recovery's orphans are adopted here, not by starting a service.
  const local: EngineContext = { ...ctx, supervision: supervisor };
  // Listen first, answer once recovery is done: the clients that started this service wait on a
  // connected socket instead of polling for one while recovery (which can take seconds with many
  // containers) runs.
  const ready = reconcile(local, { adopt: false }).then(() => supervisor.adoptOrphans());
  ready.catch(() => undefined);

  rmSync(layout.serviceSocket, { force: true });
  const server = createServer((socket) => {
    ready.then(
      () => handle(local, socket, supervisor),
      (error: Error) => socket.end(`${JSON.stringify(failure(error))}\n`),
    );
  });
  // Whoever connects can run containers as root: root only, whatever the umask (the state root
  // is passable for --userns containers' root gid, see state-dir.ts). The umask makes the socket
  // root's from its first instant; the chmod says so whatever the umask was.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve) => server.listen(layout.serviceSocket, resolve));
  } finally {
    process.umask(umask);
  }
  chmodSync(layout.serviceSocket, 0o600);
  try {
    await ready;
  } catch (error) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(layout.serviceSocket, { force: true });
    closeSync(lock);
    throw error;
  }

  const idleMs = options.idleMs ?? 30_000;
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
  rmSync(layout.serviceSocket, { force: true });
  closeSync(lock);
}

function handle(ctx: EngineContext, socket: Socket, supervisor: Supervisor): void {
  socket.on('error', () => undefined);
  readRequestLine(socket).then(async (opening) => {
    if (!opening) return;
    // The request's reader takes the stream from here, before its next chunk is read (this runs
    // as a microtask right after the chunk that ended the line).
    const { line, rest } = opening;
    let response: ServiceResponse;
    try {
      const request = JSON.parse(line) as ServiceRequest | AttachRequest | ContainerAttachRequest;
      if (request.op === 'attach') {
        // An attacher of a running container (box attach, box run -it): the rest is its stream.
        await serveContainerAttach(ctx, supervisor, socket, request, rest);
        return;
      }
      if (request.op === 'run' || request.op === 'exec') {
        // A piped container or exec: the rest of the connection is its stream.
        await serveAttach(ctx, socket, request, rest);
        return;
      }
      if (request.op === 'ping') response = { ok: true };
      else if (request.op === 'start') response = { ok: true, pid: await supervisor.start(request.id) };
      else throw new Error(`unknown request ${JSON.stringify((request as { op: unknown }).op)}`);
    } catch (error) {
      response = failure(error as Error);
    }
    socket.end(`${JSON.stringify(response)}\n`);
  });
}

/** An error crosses the socket as its message and identity, so the caller can rebuild it. */
function failure(error: Error): ServiceResponse {
  const e = error as Error & { code?: unknown; syscall?: unknown };
  return {
    ok: false,
    error: e.message,
    name: e.name,
    code: typeof e.code === 'string' ? e.code : error instanceof RuntimeError ? error.code : undefined,
    syscall: typeof e.syscall === 'string' ? e.syscall : undefined,
  };
}
