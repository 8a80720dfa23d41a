// Structured logging with pino: JSON lines by default, human-readable with --log-format pretty.
// Nothing here ever logs request headers, so credentials cannot reach the logs.

import { pino, type Logger } from 'pino';
import type { LogFormat } from './config.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function createLogger(level: string, format: LogFormat, destination: number = 1): Logger {
  const options = {
    level,
    base: { name: 'pypi-lite' },
    redact: { paths: ['req.headers.authorization', 'headers.authorization', 'password', '*.password'], censor: '[redacted]' },
  };
  if (format === 'pretty') {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination, colorize: false, translateTime: 'SYS:standard' } } });
  }
  return pino(options, pino.destination({ dest: destination, sync: false }));
}

export type { Logger };
