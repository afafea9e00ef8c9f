import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { CcedgeError } from '../errors';

/** dist/wallboard/, written by scripts/build-agent-page.js. */
export const WALLBOARD_DIR = path.join(__dirname, '..', '..', 'wallboard');

export const WALLBOARD_ASSETS: Readonly<Record<string, { file: string; type: string }>> = {
  '/wallboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/wallboard/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/wallboard/wallboard.js': { file: 'wallboard.js', type: 'text/javascript; charset=utf-8' },
  '/wallboard/wallboard.css': { file: 'wallboard.css', type: 'text/css; charset=utf-8' },
};

/**
 * Serves the wallboard page's static files (GET/HEAD). Returns false when `pathname` is not one
 * of them; throws when the page is not built. The page holds no data: the KPIs come over the
 * authenticated WebSocket, so the files need no auth.
 */
export async function serveWallboardAsset(pathname: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  const asset = WALLBOARD_ASSETS[pathname];
  if (!asset) return false;
  const content = await readFile(path.join(WALLBOARD_DIR, asset.file)).catch(() => undefined);
  if (!content) throw new CcedgeError('HTTP_NOT_FOUND', 'the wallboard page is not built (npm run build)');
  res.writeHead(200, {
    'content-type': asset.type,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-security-policy': "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
  });
  res.end(req.method === 'HEAD' ? undefined : content);
  return true;
}
