/**
 * Talking to the box service, starting it first when it is not running. The engine does not know
 * how its embedder starts a service (the `box` CLI runs `box system service`): it is given the
 * command.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { EngineError, RuntimeError } from '../errors.js';
import type { Supervision } from './context.js';
import type { Layout } from './layout.js';
import type { ServiceRequest, ServiceResponse } from './service-protocol.js';

export interface ServiceCommand {
  /** argv of a process that serves the engine (calls `engine.serve()`), e.g. [node, box.js, 'system', 'service']. */
  command: readonly string[];
  /** Its environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Called before the service is spawned (e.g. to mark inherited fds close-on-exec). */
  beforeSpawn?: () => void;
}

export class ServiceClient implements Supervision {
  constructor(
    private readonly layout: Layout,
    private readonly service: ServiceCommand,
  ) {}

  async start(id: string): Promise<number> {
    const response = await this.request({ op: 'start', id });
    if (!response.ok) {
      const { error, code } = response;
      throw code?.startsWith('E') ? new RuntimeError(code, error) : new EngineError('ESERVICE', error);
    }
    return response.pid ?? 0;
  }

  async adoptOrphans(): Promise<void> {
    await this.request({ op: 'ping' });
  }

  async request(message: ServiceRequest): Promise<ServiceResponse> {
    try {
      return await this.send(message);
    } catch (error) {
      if (!noServiceListens(error)) throw error;
    }
    // The service we start may lose its lock to one that is on its way out (it lets go of the lock
    // just after removing its socket) and exit at once: so we start one again every second until
    // one answers. Starting one while another runs costs a process that exits on the lock.
    const deadline = Date.now() + 30_000;
    let respawnAt = 0;
    for (;;) {
      if (Date.now() >= respawnAt) {
        this.spawnService();
        respawnAt = Date.now() + 1000;
      }
      await sleep(20);
      try {
        return await this.send(message);
      } catch (error) {
        if (!noServiceListens(error) || Date.now() > deadline) {
          throw new EngineError(
            'ESERVICE',
            `cannot reach the box service at ${this.layout.serviceSocket}: ${(error as Error).message}`,
          );
        }
      }
    }
  }

  private send(request: ServiceRequest): Promise<ServiceResponse> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.layout.serviceSocket);
      let data = '';
      socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
      socket.on('data', (chunk) => {
        data += chunk.toString();
      });
      socket.on('error', reject);
      socket.on('close', () => {
        try {
          resolve(JSON.parse(data) as ServiceResponse);
        } catch {
          reject(new EngineError('ESERVICE', 'the box service closed the connection without an answer'));
        }
      });
    });
  }

  /** Starts the service in the background, detached from this terminal and this process's cwd. */
  private spawnService(): void {
    this.service.beforeSpawn?.();
    // What containers' start-up errors say stays with root, as their logs do.
    const log = openSync(this.layout.serviceLog, 'a', 0o600);
    try {
      const [file, ...args] = this.service.command;
      const child = spawn(file!, args, {
        detached: true,
        stdio: ['ignore', log, log],
        env: this.service.env ?? process.env,
        cwd: '/',
      });
      child.unref();
    } finally {
      closeSync(log);
    }
  }
}

/**
 * The connection failed because no service takes it: no socket, nobody listening, or one that
 * closed its socket (leaving once idle) with this connection still queued (ECONNRESET at
 * connect, before a byte of the request was sent). Each is answered by starting a service.
 */
export function noServiceListens(error: unknown): boolean {
  const { code, syscall } = error as NodeJS.ErrnoException;
  return code === 'ENOENT' || code === 'ECONNREFUSED' || (code === 'ECONNRESET' && syscall === 'connect');
}
