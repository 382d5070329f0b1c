// Screenshots of the main pages at desktop (1280 px) and phone (375 px) widths, written to
// docs/screenshots/, against a real `voidrunner serve` with a few tasks and runs. Then the
// bundle budget: JS transferred (gzip) for a cold load of the sign-in page and time until it
// is interactive, median of several cold loads. Run with scripts/screenshots.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { launchBrowser, startServer } from './server.mjs';

const out = resolve(new URL('.', import.meta.url).pathname, '../../docs/screenshots');
mkdirSync(out, { recursive: true });

const server = await startServer();
const browser = await launchBrowser();
try {
	// Seed through the API: an admin (first user), tasks, finished runs.
	const api = async (method, path, token, body) => {
		const res = await fetch(server.url + path, {
			method,
			headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
			body: body ? JSON.stringify(body) : undefined
		});
		if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
		return res.status === 204 ? null : res.json();
	};
	const email = 'ada@example.com';
	const password = 'correct horse battery';
	const { access_token: token } = await api('POST', '/api/v1/auth/register', null, { email, password });
	const tasks = [
		{ name: 'fizzbuzz', language: 'python', tags: ['demo', 'kata'], description: 'The classic, to 30.', code: 'for i in range(1, 31):\n    print("Fizz" * (i % 3 == 0) + "Buzz" * (i % 5 == 0) or i)\n' },
		{ name: 'memory-hog', language: 'python', tags: ['limits'], description: 'Grows a list until the memory limit stops it.', code: 'import time\nxs = []\nfor i in range(200):\n    xs.append(bytearray(2_000_000))\n    print(f"{2 * (i + 1)} MB", flush=True)\n    time.sleep(0.02)\n', limits: { memory_mb: 128 } },
		{ name: 'node-hello', language: 'javascript', tags: ['demo'], code: "console.log('hello from node');\nconsole.error('a warning on stderr');\n" },
		{ name: 'cpu-burner', language: 'c', tags: ['limits'], description: 'Spins for a second of CPU.', code: '#include <stdio.h>\n#include <time.h>\nint main(void) {\n  volatile unsigned long n = 0;\n  clock_t end = clock() + CLOCKS_PER_SEC;\n  while (clock() < end) n++;\n  printf("%lu iterations\\n", n);\n  return 0;\n}\n' },
		{ name: 'shell-env', language: 'bash', tags: ['ops'], code: 'echo "GREETING=$GREETING"\necho "token: $API_TOKEN"\n', env: { GREETING: 'hi' }, secrets: { API_TOKEN: 'super-secret-value' } }
	];
	const created = [];
	for (const t of tasks) created.push(await api('POST', '/api/v1/tasks', token, t));
	const runs = [];
	for (const t of created) runs.push(await api('POST', `/api/v1/tasks/${t.id}/executions?wait=true&timeout_secs=30`, token));
	await api('POST', '/api/v1/auth/api-keys', token, { name: 'ci-pipeline' });
	// A CI job: a build, parallel tests (one fails), a skipped package step, an `always` report.
	let job = await api('POST', '/api/v1/jobs', token, {
		definition: [
			'name: build-and-test',
			'steps:',
			'  - {name: build, command: "echo compiling; sleep 0.4; mkdir -p /job/artifacts; echo bin > /job/artifacts/app.bin; echo built"}',
			'  - {name: unit, command: "echo 12 tests passed; sleep 0.3", depends_on: [build]}',
			'  - {name: lint, command: "echo style issue in main.c >&2; sleep 0.2; exit 1", depends_on: [build]}',
			'  - {name: package, command: "tar cf /job/artifacts/app.tar /job/artifacts/app.bin", depends_on: [unit, lint]}',
			'  - {name: report, command: "echo report sent", depends_on: [unit, lint], condition: always}',
			'artifacts: ["artifacts/**"]',
			''
		].join('\n')
	});
	for (let i = 0; i < 300 && !['succeeded', 'failed', 'cancelled'].includes(job.status); i++) {
		await new Promise((r) => setTimeout(r, 100));
		job = await api('GET', `/api/v1/jobs/${job.id}`, token);
	}

	// A workflow: prepare → build[0..2] (one fails) → publish (skipped), an any_failed cleanup.
	const step = (name, command) => `{name: ${name}, steps: [{name: run, command: "${command}"}]}`;
	let workflow = await api('POST', '/api/v1/workflows', token, {
		definition: [
			'name: release',
			'jobs:',
			`  prepare: {job: ${step('prepare', 'echo preparing; sleep 0.3')}}`,
			`  build: {job: ${step('build', 'echo building for $ITEM; test $ITEM != windows')}, needs: [prepare], for_each: [linux, windows, mac]}`,
			`  publish: {job: ${step('publish', 'echo publishing')}, depends_on: [build]}`,
			`  cleanup: {job: ${step('cleanup', 'echo cleaning up')}, depends_on: [build], condition: any_failed}`,
			''
		].join('\n')
	});
	for (let i = 0; i < 600 && workflow.status === 'running'; i++) {
		await new Promise((r) => setTimeout(r, 100));
		workflow = await api('GET', `/api/v1/workflows/${workflow.id}`, token);
	}

	const shots = [
		['login', '/login', false],
		['tasks', '/tasks', true],
		['task-editor', `/tasks/${created[0].id}`, true],
		['execution', `/executions/${runs[1].id}`, true],
		['execution-stderr', `/executions/${runs[2].id}`, true],
		['dashboard', '/dashboard', true],
		['api-keys', '/keys', true],
		['job', `/jobs/${job.id}`, true],
		['workflows', '/workflows', true],
		['workflow', `/workflows/${workflow.id}`, true]
	];
	for (const [width, height, suffix] of [
		[1280, 860, 'desktop'],
		[375, 812, 'phone']
	]) {
		for (const theme of ['light', 'dark']) {
			const context = await browser.newContext({ baseURL: server.url, viewport: { width, height }, colorScheme: theme });
			const page = await context.newPage();
			await page.goto('/login');
			for (const [name, path, auth] of shots) {
				if (theme === 'dark' && !['tasks', 'execution', 'job', 'workflow'].includes(name)) continue;
				if (auth && page.url().includes('/login')) {
					await page.goto('/login');
					await page.getByLabel('Email').fill(email);
					await page.getByLabel('Password').fill(password);
					await page.getByRole('button', { name: 'Sign in' }).click();
					await page.waitForURL(/\/tasks/);
				}
				await page.goto(path);
				// Pages hold live streams open, so wait for content rather than network idle.
				const ready = {
					login: () => page.getByLabel('Email').waitFor(),
					tasks: () => page.getByRole('table', { name: 'Tasks' }).waitFor(),
					'task-editor': () => page.getByRole('table', { name: 'Executions of this task' }).waitFor(),
					execution: () => page.getByRole('heading', { name: 'Resources over time' }).waitFor(),
					'execution-stderr': () => page.getByTestId('verdict').getByText(/Exited/).waitFor(),
					dashboard: () => page.getByRole('heading', { name: 'Durations' }).waitFor(),
					'api-keys': () => page.getByRole('table', { name: 'API keys' }).waitFor(),
					job: () => page.getByTestId('job-log').getByText('report sent').waitFor(),
					workflows: () => page.getByRole('table', { name: 'Workflows' }).waitFor(),
					workflow: () => page.getByTestId('workflow-status').getByText('failed').waitFor()
				}[name];
				await ready();
				await page.waitForTimeout(300); // let fonts and the chart settle for the picture
				const file = `${name}-${suffix}${theme === 'dark' ? '-dark' : ''}.png`;
				await page.screenshot({ path: resolve(out, file), fullPage: name !== 'task-editor' || width > 400 });
				console.log('wrote', file);
			}
			await context.close();
		}
	}

	// Budget: cold loads of /login (new context = empty cache), JS over the wire and TTI.
	const samples = [];
	for (let i = 0; i < 7; i++) {
		const context = await browser.newContext({ baseURL: server.url });
		const page = await context.newPage();
		const t0 = Date.now();
		await page.goto('/login', { waitUntil: 'commit' });
		await page.getByRole('button', { name: 'Sign in' }).waitFor();
		const wall = Date.now() - t0;
		const m = await page.evaluate(() => {
			const nav = performance.getEntriesByType('navigation')[0];
			const js = performance
				.getEntriesByType('resource')
				.filter((r) => r.name.endsWith('.js'));
			return {
				dcl: nav.domContentLoadedEventEnd,
				jsFiles: js.length,
				jsTransfer: js.reduce((s, r) => s + r.transferSize, 0),
				jsEncoded: js.reduce((s, r) => s + r.encodedBodySize, 0),
				jsDecoded: js.reduce((s, r) => s + r.decodedBodySize, 0),
				interactive: performance.getEntriesByName('voidrunner:interactive')[0]?.startTime ?? NaN
			};
		});
		samples.push({ wall, ...m });
		await context.close();
	}
	const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
	const budget = {
		runs: samples.length,
		js_files: samples[0].jsFiles,
		js_gzip_bytes: samples[0].jsEncoded,
		js_raw_bytes: samples[0].jsDecoded,
		dom_content_loaded_ms: Math.round(median(samples.map((s) => s.dcl))),
		interactive_ms: Math.round(median(samples.map((s) => s.interactive))),
		wall_to_interactive_ms: median(samples.map((s) => s.wall))
	};
	writeFileSync(resolve(out, 'budget.json'), JSON.stringify(budget, null, 2) + '\n');
	console.log(JSON.stringify(budget, null, 2));
} finally {
	await browser.close();
	await server.stop();
}
