import { sveltekit } from '@sveltejs/kit/vite';
import { svelteTesting } from '@testing-library/svelte/vite';
import { defineConfig } from 'vitest/config';

// `npm run dev` proxies the API to a running `voidrunner serve` (VOIDRUNNER_URL).
const api = process.env.VOIDRUNNER_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
	plugins: [sveltekit(), svelteTesting()],
	server: {
		proxy: {
			'/api': { target: api, changeOrigin: false },
			'/health': api,
			'/ready': api
		}
	},
	build: { reportCompressedSize: true },
	test: {
		environment: 'jsdom',
		include: ['src/**/*.test.ts'],
		setupFiles: ['src/test-setup.ts']
	}
});
