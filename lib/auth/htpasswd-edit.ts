// Editing an htpasswd file's text (what `pypi-lite passwd` does): set or delete a user while
// keeping comments, other users, line order and line endings.

import { classifyHash, isValidUsername, splitLine } from './htpasswd.js';

function lineUser(raw: string): string | null {
  const f = splitLine(raw);
  return f === null || f === 'malformed' ? null : f.user;
}

/**
 * Set `user`'s hash: replaces the user's first line (dropping any duplicate
 * lines for that user) or appends a new line. Comments, other users, line
 * order and line endings are preserved.
 */
export function setUser(text: string, user: string, hash: string): string {
  if (!isValidUsername(user)) throw new Error(`invalid user name ${JSON.stringify(user)}`);
  if ('problem' in classifyHash(hash)) {
    throw new Error(`refusing to store an unsupported or malformed password hash for user ${JSON.stringify(user)}`);
  }
  const entry = `${user}:${hash}`;
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text.split('\n');
  let replaced = false;
  const out: string[] = [];
  for (const raw of lines) {
    if (lineUser(raw) === user) {
      if (replaced) continue;
      replaced = true;
      out.push(raw.endsWith('\r') ? entry + '\r' : entry);
    } else {
      out.push(raw);
    }
  }
  if (replaced) return out.join('\n');
  if (text === '') return entry + '\n';
  if (text.endsWith('\n')) return text + entry + eol;
  return text + eol + entry + eol;
}

/** Remove every line for `user`. */
export function deleteUser(text: string, user: string): { text: string; found: boolean } {
  const lines = text.split('\n');
  const kept = lines.filter((raw) => lineUser(raw) !== user);
  const found = kept.length !== lines.length;
  return { text: found ? kept.join('\n') : text, found };
}
