/** Requests to the box service: one JSON line each way over its unix socket. */
export type ServiceRequest = { op: 'ping' } | { op: 'start'; id: string };

export type ServiceResponse =
  | { ok: true; pid?: number }
  | { ok: false; error: string; code?: string; name?: string; syscall?: string };
