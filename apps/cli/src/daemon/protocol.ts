/** Requests to the box service: one JSON line each way over its unix socket. */
export type Request = { op: 'ping' } | { op: 'start'; id: string };

export type Response = { ok: true; pid?: number } | { ok: false; error: string; exitCode: number };
