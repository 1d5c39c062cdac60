import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const sdk = fileURLToPath(new URL('../typescript/src/index.ts', import.meta.url));

/**
 * `npm run dev` only: serves /config.json from the stack's endpoints file (CHAT_ENDPOINTS_FILE, else the
 * `.local/endpoints.json` that `cargo xtask dev` writes), so the dev server talks to the running stack. Builds
 * never contain a config: whoever serves dist/ puts one next to index.html (`cargo xtask dev` does).
 */
function devConfig(): Plugin {
  const file = process.env.CHAT_ENDPOINTS_FILE ?? fileURLToPath(new URL('../../.local/endpoints.json', import.meta.url));
  return {
    name: 'chat-dev-config',
    apply: 'serve',
    configureServer(server) {
      server.middlewares.use('/config.json', (_req, res) => {
        if (!existsSync(file)) {
          res.statusCode = 404;
          res.end(`no ${file}: start a stack with cargo xtask dev`);
          return;
        }
        const { http, websocket } = JSON.parse(readFileSync(file, 'utf8')) as { http: string; websocket: string };
        res.setHeader('content-type', 'application/json');
        res.setHeader('cache-control', 'no-store');
        res.end(JSON.stringify({ http, websocket }));
      });
    },
  };
}

export default defineConfig({
  // Relative asset URLs: dist/ works under any path prefix.
  base: './',
  // The SDK is compiled from its source: no separate SDK build, and one copy of the code in the bundle.
  resolve: { alias: { '@chat/sdk': sdk } },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  plugins: [devConfig()],
  server: { host: '127.0.0.1', port: 5173, fs: { allow: ['..'] } },
  preview: { host: '127.0.0.1', port: 4173 },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
});
