/**
 * runc's error reporting: every failure is one line on stderr and, with `--log FILE`, a record
 * in that file, in logrus's text form or, with `--log-format json`, as
 * `{"level":"error","msg":"…","time":"…"}` — the shape podman and containerd's shim read back
 * from the log file to tell the user why a container did not start.
 */
import { appendFileSync } from 'node:fs';
import { writeAll } from './output.js';

export interface LogOptions {
  path?: string;
  format: 'text' | 'json';
}

export function logLine(options: LogOptions, level: 'error' | 'warning' | 'debug', msg: string): void {
  const time = new Date().toISOString();
  const line =
    options.format === 'json'
      ? JSON.stringify({ level, msg, time })
      : `time="${time}" level=${level} msg=${JSON.stringify(msg)}`;
  if (options.path) {
    try {
      appendFileSync(options.path, `${line}\n`, { mode: 0o600 });
    } catch {
      // the log is a convenience; stderr still gets the message
    }
  }
  if (level === 'error' || !options.path)
    writeAll(2, options.format === 'json' && !options.path ? `${line}\n` : `${msg}\n`);
}
