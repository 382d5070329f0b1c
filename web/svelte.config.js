import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

// The UI is a single-page app: every route renders in the browser, and the binary serves
// `index.html` for any path it does not know (SPA fallback). VOIDRUNNER_WEB_OUT lets the
// Rust build script build into its own OUT_DIR instead of `web/build`.
const out = process.env.VOIDRUNNER_WEB_OUT || 'build';
// Each cargo target dir builds in its own SvelteKit work dir, so parallel builds never collide.
const kitDir = process.env.VOIDRUNNER_KIT_OUT_DIR || '.svelte-kit';

/** @type {import('@sveltejs/kit').Config} */
const config = {
	preprocess: vitePreprocess(),
	kit: {
		adapter: adapter({ pages: out, assets: out, fallback: 'index.html', strict: true }),
		outDir: kitDir,
		paths: { relative: false },
		output: { bundleStrategy: 'split' }
	}
};

export default config;
