// Starts a real `voidrunner serve` (embedded workers, temp data dir, random port) and a
// headless Debian Chromium driven by playwright-core (shared by the e2e tests, the screenshots
// and the budget measurement); `openSession` is the setup every e2e test file shares.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const here = new URL('.', import.meta.url).pathname;

/** The binary under test: $VOIDRUNNER_BIN, else the debug build in $CARGO_TARGET_DIR or target/. */
export function binaryPath() {
	if (process.env.VOIDRUNNER_BIN) return process.env.VOIDRUNNER_BIN;
	const target = process.env.CARGO_TARGET_DIR ?? resolve(here, '../../target');
	return join(target, 'debug', 'voidrunner');
}

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Starts the server; resolves once it logs its address. */
export async function startServer(extraEnv = {}) {
	const bin = binaryPath();
	if (!existsSync(bin)) throw new Error(`voidrunner binary not found at ${bin} (set VOIDRUNNER_BIN)`);
	const dataDir = mkdtempSync(join(tmpdir(), 'voidrunner-e2e-'));
	const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--workers', '2'], {
		env: {
			...process.env,
			VOIDRUNNER_LOG_FORMAT: 'text',
			VOIDRUNNER_API__FIRST_USER_ADMIN: 'true',
			NO_COLOR: '1',
			...extraEnv
		},
		stdio: ['ignore', 'pipe', 'pipe']
	});
	let log = '';
	const url = await new Promise((ok, fail) => {
		const timer = setTimeout(() => fail(new Error(`server did not start in 60 s:\n${log}`)), 60_000);
		const onData = (buf) => {
			log += buf.toString();
			// eslint-disable-next-line no-control-regex
			const m = /listening on (http:\/\/[0-9.:]+)/.exec(log.replace(/\x1b\[[0-9;]*m/g, ''));
			if (m) {
				clearTimeout(timer);
				ok(m[1]);
			}
		};
		child.stdout.on('data', onData);
		child.stderr.on('data', onData);
		child.on('exit', (code) => {
			clearTimeout(timer);
			fail(new Error(`server exited with ${code}:\n${log}`));
		});
	});
	return {
		url,
		log: () => log,
		async stop() {
			if (child.exitCode === null) {
				const exited = new Promise((r) => child.once('exit', r));
				child.kill('SIGTERM');
				await exited;
			}
			rmSync(dataDir, { recursive: true, force: true });
		}
	};
}

/** Launches headless Chromium with the flags this machine needs. */
export function launchBrowser() {
	if (!existsSync(CHROMIUM)) throw new Error(`chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);
	return chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: [
			'--headless',
			'--no-sandbox',
			'--disable-gpu',
			'--disable-quic',
			'--no-first-run',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync'
		]
	});
}

/**
 * A TCP proxy in front of the server whose connections the test can cut, to drop a live
 * stream the way a flaky network would.
 */
export async function startProxy(target) {
	const { createServer, connect } = await import('node:net');
	const { hostname, port } = new URL(target);
	const sockets = new Set();
	const server = createServer((client) => {
		const upstream = connect(Number(port), hostname);
		for (const s of [client, upstream]) {
			sockets.add(s);
			s.on('close', () => sockets.delete(s));
			s.on('error', () => {});
		}
		client.pipe(upstream);
		upstream.pipe(client);
		client.on('close', () => upstream.destroy());
		upstream.on('close', () => client.destroy());
	});
	await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
	return {
		url: `http://127.0.0.1:${server.address().port}`,
		/** Cuts every open connection (the browser sees them reset). */
		dropAll() {
			for (const s of sockets) s.destroy();
		},
		close: () => new Promise((ok) => server.close(ok))
	};
}

/**
 * What every e2e test file starts with: a server (`env` added to its environment), Chromium,
 * one page at 1280×900 with a default timeout and its page errors collected and, given an
 * `email`, that user registered through the API. With `proxy`, the page reaches the server
 * through `startProxy` (its connections can be cut). `contextOptions` are added to the
 * browser context's. `close()` is the file's `after`: closes the browser and the proxy,
 * prints the server log when the run failed, stops the server. When the start fails, what did
 * start is closed before the error is thrown.
 */
export async function openSession({ env = {}, email, password, timeout = 30_000, proxy: viaProxy = false, contextOptions = {} } = {}) {
	const session = { server: undefined, proxy: undefined, browser: undefined, page: undefined, pageErrors: [] };
	session.close = async () => {
		await session.browser?.close();
		await session.proxy?.close();
		if (session.server) {
			if (process.exitCode) console.error(session.server.log());
			await session.server.stop();
		}
	};
	try {
		session.server = await startServer(env);
		if (viaProxy) session.proxy = await startProxy(session.server.url);
		session.browser = await launchBrowser();
		const baseURL = (session.proxy ?? session.server).url;
		const context = await session.browser.newContext({ baseURL, viewport: { width: 1280, height: 900 }, ...contextOptions });
		session.page = await context.newPage();
		session.page.setDefaultTimeout(timeout);
		session.page.on('pageerror', (e) => session.pageErrors.push(String(e)));
		if (email) {
			const res = await fetch(`${session.server.url}/api/v1/auth/register`, {
				method: 'POST',
				headers: { 'content-type': 'application/json' },
				body: JSON.stringify({ email, password })
			});
			assert.equal(res.status, 201);
		}
	} catch (err) {
		// The file's `after` has no session to close: stop what started.
		await session.close();
		throw err;
	}
	return session;
}

/** Replaces the text of the page's CodeMirror editor as a user would: select all, delete, type. */
export async function setEditorText(page, text) {
	await page.locator('.cm-content').click();
	await page.keyboard.press('Control+A');
	await page.keyboard.press('Delete');
	await page.keyboard.insertText(text);
}
