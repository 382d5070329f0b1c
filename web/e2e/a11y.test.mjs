// Accessibility: axe-core (WCAG 2.0/2.1 A and AA rules) on every main page, at desktop and
// phone width, in the light and the dark theme, against a real `voidrunner serve`. Fails on
// any serious or critical violation. Also checks keyboard entry: the first Tab reaches the
// skip link, which moves focus to the main content.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { FILE_GIT_ENV, gitlabPush, makeRepository } from './git.mjs';
import { launchBrowser, startServer } from './server.mjs';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const EMAIL = 'a11y@example.com';
const PASSWORD = 'correct horse battery';

let server;
let browser;
let repo;
const paths = {};

before(async () => {
	repo = makeRepository();
	server = await startServer(FILE_GIT_ENV);
	browser = await launchBrowser();
	const api = async (method, path, token, body) => {
		const res = await fetch(server.url + path, {
			method,
			headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
			body: body ? JSON.stringify(body) : undefined
		});
		assert.ok(res.ok, `${method} ${path}: ${res.status}`);
		return res.json();
	};
	const { access_token: token } = await api('POST', '/api/v1/auth/register', null, { email: EMAIL, password: PASSWORD });
	const task = await api('POST', '/api/v1/tasks', token, { name: 'a11y', language: 'python', code: 'import sys\nprint("out")\nprint("err", file=sys.stderr)\n', tags: ['x'] });
	const run = await api('POST', `/api/v1/tasks/${task.id}/executions?wait=true&timeout_secs=30`, token);
	await api('POST', '/api/v1/auth/api-keys', token, { name: 'k' });
	const job = await api('POST', '/api/v1/jobs', token, {
		definition: 'name: a11y-job\nsteps:\n  - {name: a, command: "echo out; echo err >&2"}\n  - {name: b, command: "exit 3", depends_on: [a]}\n  - {name: c, command: "true", depends_on: [b]}\n'
	});
	const workflow = await api('POST', '/api/v1/workflows', token, {
		definition: 'name: a11y-wf\njobs:\n  a: {job: {name: a, steps: [{name: s, command: "true"}]}}\n  b: {job: {name: b, steps: [{name: s, command: "exit 3"}]}, depends_on: [a], for_each: [x, y]}\n  c: {job: {name: c, steps: [{name: s, command: "true"}]}, depends_on: [b]}\n'
	});
	const hookSecret = 'a11y-hook-secret-0123456';
	const repository = await api('POST', '/api/v1/repositories', token, {
		provider: 'gitlab', full_name: 'a11y/app', clone_url: repo.url, webhook_secret: hookSecret, secrets: { TOKEN: 'a11y-token' }
	});
	for (const [delivery, ref] of [['a11y-1', 'refs/heads/main'], ['a11y-2', 'refs/heads/other']]) {
		const res = await gitlabPush(server.url, { token: hookSecret, delivery, fullName: 'a11y/app', ref, before: repo.before, after: repo.after });
		assert.ok(res.status < 300, JSON.stringify(res.body));
	}
	Object.assign(paths, {
		task: `/tasks/${task.id}`,
		execution: `/executions/${run.id}`,
		job: `/jobs/${job.id}`,
		workflow: `/workflows/${workflow.id}`,
		repository: `/repositories/${repository.id}`
	});
});

after(async () => {
	await browser?.close();
	await server?.stop();
	repo?.cleanup();
});

async function audit(page) {
	await page.addScriptTag({ content: axeSource });
	const result = await page.evaluate(() =>
		// eslint-disable-next-line no-undef
		axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
	);
	return result.violations
		.filter((v) => v.impact === 'serious' || v.impact === 'critical')
		.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
}

describe('accessibility', { concurrency: false }, () => {
	for (const [width, height] of [
		[1280, 900],
		[375, 812]
	]) {
		for (const colorScheme of ['light', 'dark']) {
			it(`has no serious axe violations at ${width} px, ${colorScheme}`, async () => {
				// bypassCSP only lets the test inject axe-core; the app itself runs under its CSP.
				const context = await browser.newContext({ baseURL: server.url, viewport: { width, height }, colorScheme, bypassCSP: true });
				const page = await context.newPage();
				page.setDefaultTimeout(30_000);
				const found = [];
				for (const path of ['/login', '/signup']) {
					await page.goto(path);
					await page.getByLabel('Email').waitFor();
					found.push(...(await audit(page)).map((v) => `${path}: ${v}`));
				}
				await page.getByLabel('Email').fill(EMAIL);
				await page.goto('/login');
				await page.getByLabel('Email').fill(EMAIL);
				await page.getByLabel('Password').fill(PASSWORD);
				await page.getByRole('button', { name: 'Sign in' }).click();
				await page.waitForURL(/\/tasks$/);
				const pages = [
					['/tasks', () => page.getByRole('table', { name: 'Tasks' }).waitFor()],
					['/tasks/new', () => page.locator('.cm-content').waitFor()],
					[paths.task, () => page.getByRole('table', { name: 'Executions of this task' }).waitFor()],
					[paths.execution, () => page.getByTestId('verdict').getByText('Exited').waitFor()],
					['/jobs', () => page.getByRole('table', { name: 'Jobs' }).waitFor()],
					[paths.job, () => page.getByTestId('job-status').getByText('failed').waitFor()],
					['/workflows', () => page.getByRole('table', { name: 'Workflows' }).waitFor()],
					['/workflows?new', () => page.getByRole('form', { name: 'Submit workflow' }).locator('.cm-content').waitFor()],
					[paths.workflow, () => page.getByTestId('workflow-status').getByText('failed').waitFor()],
					['/repositories', () => page.getByRole('table', { name: 'Repositories' }).waitFor()],
					['/repositories?new', () => page.getByRole('form', { name: 'Register a repository' }).waitFor()],
					[paths.repository, () => page.getByRole('table', { name: 'Deliveries' }).locator('.badge').first().waitFor()],
					['/dashboard', () => page.getByRole('heading', { name: 'Durations' }).waitFor()],
					['/keys', () => page.getByRole('table', { name: 'API keys' }).waitFor()],
					['/admin/dead-letter', () => page.getByText('Nothing is dead-lettered').waitFor()]
				];
				for (const [path, ready] of pages) {
					await page.goto(path);
					await ready();
					found.push(...(await audit(page)).map((v) => `${path}: ${v}`));
				}
				await context.close();
				assert.deepEqual(found, []);
			});
		}
	}

	it('starts keyboard navigation at the skip link, which focuses the main content', async () => {
		const context = await browser.newContext({ baseURL: server.url });
		const page = await context.newPage();
		await page.goto('/login');
		await page.getByLabel('Email').waitFor();
		await page.keyboard.press('Tab');
		assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), 'Skip to content');
		await page.keyboard.press('Enter');
		assert.equal(await page.evaluate(() => document.activeElement?.id), 'main');
		await context.close();
	});
});
