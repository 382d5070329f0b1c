// End-to-end: a real `voidrunner serve` and headless Chromium. One user's journey, in order:
// sign up, create a python task, run it and watch the live log and the verdict, cancel a
// long-running run, search the task list, sign out. Plus the serving contract (SPA fallback,
// JSON API 404s, CSP without violations) and transparent token refresh.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSession, setEditorText } from './server.mjs';

const EMAIL = `e2e-${Date.now()}@example.com`;
const PASSWORD = 'correct horse battery';
const T = { timeout: 30_000 };

let server;
let proxy;
let browser;
let page;
let pageErrors;
let close;
const cspViolations = [];
let refreshes = 0;

before(async () => {
	// The browser talks to the server through a proxy that can cut its connections.
	({ server, proxy, browser, page, pageErrors, close } = await openSession({ proxy: true, timeout: T.timeout }));
	page.on('console', (m) => {
		if (/Content Security Policy|Content-Security-Policy/i.test(m.text())) cspViolations.push(m.text());
	});
	page.on('request', (r) => {
		if (r.url().endsWith('/api/v1/auth/refresh')) refreshes++;
	});
});

after(() => close?.());

async function createTask(name, code) {
	await page.goto('/tasks/new');
	await page.getByLabel('Name', { exact: true }).fill(name);
	await page.getByLabel('Language').selectOption('python');
	await setEditorText(page, code);
	await page.getByRole('button', { name: 'Create and run' }).click();
	await page.waitForURL(/\/executions\/[0-9a-f-]{36}$/);
}

describe('voidrunner web UI', { concurrency: false }, () => {
	it('serves the UI with a CSP, falls back to index.html for client routes, keeps API 404s JSON', async () => {
		const ui = await fetch(`${server.url}/tasks/some/deep/route`);
		assert.equal(ui.status, 200);
		assert.match(ui.headers.get('content-type'), /text\/html/);
		assert.match(ui.headers.get('content-security-policy'), /script-src 'self' 'sha256-/);
		const api = await fetch(`${server.url}/api/v1/no-such-route`);
		assert.equal(api.status, 404);
		assert.equal((await api.json()).error.code, 'route_not_found');
		const health = await fetch(`${server.url}/health`);
		assert.equal(health.status, 200);
	});

	it('keeps the first load within the JS budget (60 KB gzip, docs/UI.md)', async () => {
		const context = await browser.newContext({ baseURL: server.url });
		const cold = await context.newPage();
		await cold.goto('/login');
		await cold.getByRole('button', { name: 'Sign in' }).waitFor();
		const js = await cold.evaluate(() =>
			performance
				.getEntriesByType('resource')
				.filter((r) => r.name.endsWith('.js'))
				.reduce((sum, r) => sum + r.encodedBodySize, 0)
		);
		await context.close();
		assert.ok(js > 0 && js <= 60_000, `initial JS is ${js} bytes gzip`);
	});

	it('sends a signed-out visitor to sign in, and signs up', async () => {
		await page.goto('/tasks');
		await page.waitForURL(/\/login\?next=%2Ftasks$/);
		await page.getByRole('link', { name: 'Create one' }).click();
		await page.getByLabel('Email').fill(EMAIL);
		await page.getByLabel('Password').fill('short');
		await page.getByRole('button', { name: 'Create an account' }).click();
		// The API's validation error appears next to the password field.
		await page.locator('#password-error').waitFor();
		assert.equal(await page.getByLabel('Password').getAttribute('aria-invalid'), 'true');
		await page.getByLabel('Password').fill(PASSWORD);
		await page.getByRole('button', { name: 'Create an account' }).click();
		await page.waitForURL(/\/tasks$/);
		await page.getByText('No tasks yet').waitFor();
		await page.getByText(EMAIL).waitFor();
	});

	it('shows an API validation error next to the limit it concerns', async () => {
		await page.goto('/tasks/new');
		await page.getByLabel('Name', { exact: true }).fill('too-much-memory');
		await page.locator('#limit-memory_mb').fill('99999999');
		await page.getByRole('button', { name: 'Create', exact: true }).click();
		const err = page.locator('#limit-memory_mb-error');
		await err.waitFor();
		assert.ok((await err.textContent()).length > 0);
		assert.equal(await page.locator('#limit-memory_mb').getAttribute('aria-invalid'), 'true');
	});

	it('creates a python task, runs it, streams the log line live, then shows the verdict', async () => {
		await createTask('hello-e2e', 'import time\nprint("hello from e2e", flush=True)\ntime.sleep(4)\nprint("bye")\n');
		const log = page.getByTestId('log');
		await log.getByText('hello from e2e').waitFor();
		// The line arrived while the program was still running (it sleeps before exiting).
		assert.equal((await page.getByTestId('verdict').textContent()).trim(), 'Running…');
		await page.getByTestId('verdict').getByText('Exited with code 0').waitFor();
		assert.equal((await page.getByTestId('exit-code').textContent()).trim(), '0');
		assert.match(await log.textContent(), /hello from e2e\nbye\n/);
	});

	it('reconnects a dropped log stream and resumes after the last event, without duplicates', async () => {
		await createTask('resume-e2e', 'import time\nprint("line one", flush=True)\ntime.sleep(3)\nprint("line two", flush=True)\ntime.sleep(1)\n');
		const log = page.getByTestId('log');
		await log.getByText('line one').waitFor();
		proxy.dropAll();
		// The client notices, says so, reconnects with Last-Event-ID and resumes.
		await page.getByText('Reconnecting…').waitFor();
		await page.getByTestId('verdict').getByText('Exited with code 0').waitFor();
		assert.equal(await log.textContent(), 'line one\nline two\n');
	});

	it('runs an interactive program: input typed in the page reaches its stdin', async () => {
		await page.goto('/tasks/new');
		await page.getByLabel('Name', { exact: true }).fill('interactive-e2e');
		await setEditorText(page, 'print("name?", flush=True)\nname = input()\nprint(f"hello {name}", flush=True)\n');
		await page.getByLabel('Interactive (type input while it runs)').check();
		await page.getByRole('button', { name: 'Create and run' }).click();
		await page.waitForURL(/\/executions\//);
		await page.getByTestId('log').getByText('name?').waitFor();
		await page.getByLabel('Input to the program').fill('Ada');
		await page.getByLabel('Input to the program').press('Enter');
		await page.getByTestId('log').getByText('hello Ada').waitFor();
		await page.getByTestId('verdict').getByText('Exited with code 0').waitFor();
	});

	it('passes env and write-only secrets to the run, with the secret masked in the output', async () => {
		await page.goto('/tasks/new');
		await page.getByLabel('Name', { exact: true }).fill('secret-e2e');
		await setEditorText(page, 'import os\nprint("greeting", os.environ["GREETING"])\nprint("token", os.environ["API_TOKEN"])\n');
		await page.getByText('Environment variables (0)').click();
		await page.getByRole('button', { name: '+ Add variable' }).click();
		await page.getByLabel('variable 1 name').fill('GREETING');
		await page.getByLabel('variable 1 value').fill('hello-env');
		await page.getByText('Secrets (0)').click();
		await page.getByRole('button', { name: '+ Add secret' }).click();
		await page.getByLabel('secret 1 name').fill('API_TOKEN');
		await page.getByLabel('secret 1 value').fill('s3cr3t-value-e2e');
		await page.getByRole('button', { name: 'Create and run' }).click();
		await page.waitForURL(/\/executions\//);
		await page.getByTestId('verdict').getByText('Exited with code 0').waitFor();
		const log = await page.getByTestId('log').textContent();
		assert.match(log, /greeting hello-env/);
		assert.match(log, /token \*\*\*/);
		assert.ok(!log.includes('s3cr3t-value-e2e'));
		// The task shows the secret's name, never its value.
		await page.getByRole('link', { name: 'Edit task' }).click();
		await page.getByRole('list', { name: 'Stored secrets' }).getByText('API_TOKEN').waitFor();
		assert.ok(!(await page.content()).includes('s3cr3t-value-e2e'));
	});

	it('cancels a long-running execution', async () => {
		await createTask('sleeper-e2e', 'import time\nprint("started", flush=True)\ntime.sleep(120)\n');
		await page.getByTestId('log').getByText('started').waitFor();
		await page.getByRole('button', { name: 'Cancel' }).click();
		await page.getByTestId('verdict').getByText('Cancelled').waitFor();
		await page.locator('.badge.cancelled').first().waitFor();
	});

	it('lists both tasks, and search narrows the list', async () => {
		await page.goto('/tasks');
		const table = page.getByRole('table', { name: 'Tasks' });
		await table.getByRole('link', { name: 'hello-e2e' }).waitFor();
		await table.getByRole('link', { name: 'sleeper-e2e' }).waitFor();
		await page.getByLabel('Search').fill('sleep');
		await table.getByRole('link', { name: 'hello-e2e' }).waitFor({ state: 'detached' });
		await table.getByRole('link', { name: 'sleeper-e2e' }).waitFor();
		assert.match(page.url(), /[?&]q=sleep/);
		// The task page lists its executions.
		await table.getByRole('link', { name: 'sleeper-e2e' }).click();
		await page.getByRole('table', { name: 'Executions of this task' }).locator('.badge.cancelled').waitFor();
	});

	it('updates the last-run badges of the task list live', async () => {
		await page.goto('/tasks');
		const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: 'hello-e2e', exact: true }) });
		await row.locator('.badge.completed').waitFor();
		// Run the task from outside the page (as another client would).
		const { accessToken } = await page.evaluate(() => JSON.parse(localStorage.getItem('voidrunner.session')));
		const id = (await row.getByRole('link', { name: 'hello-e2e' }).getAttribute('href')).split('/').pop();
		const res = await fetch(`${server.url}/api/v1/tasks/${id}/executions`, { method: 'POST', headers: { authorization: `Bearer ${accessToken}` } });
		assert.equal(res.status, 202);
		await row.locator('.badge.running').waitFor();
		await row.locator('.badge.completed').waitFor();
	});

	it('creates an API key, shows it once, and revokes it', async () => {
		await page.goto('/keys');
		await page.getByLabel('Name').fill('e2e-key');
		await page.getByRole('button', { name: 'Create key' }).click();
		const key = (await page.getByTestId('new-key').textContent()).trim();
		assert.match(key, /^vr_[A-Za-z0-9_-]{43}$/);
		// The key works against the API.
		const me = await fetch(`${server.url}/api/v1/auth/me`, { headers: { authorization: `Bearer ${key}` } });
		assert.equal((await me.json()).email, EMAIL);
		await page.getByRole('button', { name: 'Done' }).click();
		page.once('dialog', (d) => d.accept());
		await page.getByRole('button', { name: 'Revoke e2e-key' }).click();
		await page.getByRole('table', { name: 'API keys' }).getByText('revoked').waitFor();
		const after = await fetch(`${server.url}/api/v1/auth/me`, { headers: { authorization: `Bearer ${key}` } });
		assert.equal(after.status, 401);
	});

	it('refreshes a rejected access token transparently', async () => {
		// Break the stored access token (as if it had expired): the next API call gets a 401,
		// the client rotates the refresh token and retries, and the page never notices.
		await page.evaluate(() => {
			const s = JSON.parse(localStorage.getItem('voidrunner.session'));
			s.accessToken = 'expired.or.forged';
			localStorage.setItem('voidrunner.session', JSON.stringify(s));
		});
		const before = refreshes;
		await page.goto('/tasks');
		await page.getByRole('table', { name: 'Tasks' }).getByRole('link', { name: 'hello-e2e' }).waitFor();
		assert.equal(refreshes, before + 1);
		assert.match(page.url(), /\/tasks$/);
	});

	it('signs out, and the app asks for sign-in again', async () => {
		await page.getByRole('button', { name: 'Sign out' }).click();
		await page.waitForURL(/\/login/);
		assert.equal(await page.evaluate(() => localStorage.getItem('voidrunner.session')), null);
		await page.goto('/tasks');
		await page.waitForURL(/\/login\?next=/);
	});

	it('ran without CSP violations or page errors', () => {
		assert.deepEqual(cspViolations, []);
		assert.deepEqual(pageErrors, []);
	});
});
