// End-to-end: CI jobs in the web UI against a real `voidrunner serve` (its job worker runs
// because the server has workers). Submit a two-step job from the form, watch the first
// step's log line arrive live, see both steps succeed on the timeline and the artifact listed
// and downloadable; a definition with a duplicate step name shows every problem with its path.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSession, setEditorText } from './server.mjs';

const EMAIL = `jobs-${Date.now()}@example.com`;
const PASSWORD = 'correct horse battery';

let server;
let page;
let pageErrors;
let close;

before(async () => {
	({ server, page, pageErrors, close } = await openSession({ email: EMAIL, password: PASSWORD, contextOptions: { acceptDownloads: true } }));
});

after(() => close?.());

const TWO_STEPS = `name: e2e-two-steps
steps:
  - name: a
    command: "echo hello-from-a && mkdir -p /job/artifacts && echo art > /job/artifacts/x.txt && sleep 3"
  - name: b
    command: "echo done"
    depends_on: [a]
artifacts: ["artifacts/**"]
`;

describe('job pages', { concurrency: false }, () => {
	it('signs in and reaches Jobs from the navigation', async () => {
		await page.goto('/login');
		await page.getByLabel('Email').fill(EMAIL);
		await page.getByLabel('Password').fill(PASSWORD);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.waitForURL(/\/tasks$/);
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
		await page.waitForURL(/\/jobs$/);
		await page.getByText('No jobs yet').waitFor();
	});

	it('shows every problem of an invalid definition with its path', async () => {
		await page.getByRole('button', { name: 'New job' }).click();
		await setEditorText(page, 'name: dup\nsteps:\n  - {name: a, command: "true"}\n  - {name: a, command: "true"}\n  - {name: c, command: "true", depends_on: [ghost]}\n');
		await page.getByRole('button', { name: 'Submit job' }).click();
		const alert = page.getByTestId('submit-error');
		await alert.waitFor();
		const problems = alert.getByRole('list', { name: 'Problems' }).getByRole('listitem');
		assert.equal(await problems.count(), 2, await alert.innerText());
		const text = await alert.innerText();
		assert.match(text, /definition\.steps\[1\]\.name/);
		assert.match(text, /definition\.steps\[2\]\.depends_on\[0\]/);
		assert.match(text, /ghost/);
	});

	it('submits a two-step job, streams the log live, shows both steps succeeded and the artifact', async () => {
		await setEditorText(page, TWO_STEPS);
		await page.getByRole('button', { name: 'Submit job' }).click();
		await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
		await page.getByTestId('job-log').getByText('hello-from-a').waitFor();
		// The line arrived live: step a is still running (it sleeps after printing).
		assert.equal(await page.locator('[data-step="a"]').getByTestId('step-state').innerText(), '● running');
		await page.getByTestId('job-status').getByText('succeeded').waitFor();
		for (const name of ['a', 'b']) {
			await page.locator(`[data-step="${name}"]`).getByTestId('step-state').getByText('succeeded').waitFor();
		}
		// Selecting step b shows only its output.
		await page.getByRole('button', { name: 'b', exact: true }).click();
		await page.getByTestId('job-log').getByText('done').waitFor();
		assert.doesNotMatch(await page.getByTestId('job-log').innerText(), /hello-from-a/);
		// The artifact is listed and downloads with the session's token.
		const artifacts = page.getByRole('table', { name: 'Artifacts' });
		await artifacts.getByText('artifacts/x.txt').waitFor();
		const [download] = await Promise.all([
			page.waitForEvent('download'),
			artifacts.getByRole('button', { name: 'Download artifacts/x.txt' }).click()
		]);
		assert.equal(download.suggestedFilename(), 'x.txt');
		const stream = await download.createReadStream();
		let body = '';
		for await (const chunk of stream) body += chunk;
		assert.equal(body, 'art\n');
	});

	it('cancels a running job from its page', async () => {
		await page.goto('/jobs?new');
		await setEditorText(page, 'name: e2e-cancel\nsteps:\n  - {name: long, command: "echo started && sleep 60"}\n');
		await page.getByRole('button', { name: 'Submit job' }).click();
		await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
		await page.getByTestId('job-log').getByText('started').waitFor();
		await page.getByRole('button', { name: 'Cancel' }).click();
		await page.getByTestId('job-status').getByText('cancelled').waitFor();
		await page.locator('[data-step="long"]').getByTestId('step-state').getByText('cancelled').waitFor();
		assert.equal(await page.getByRole('button', { name: 'Cancel' }).count(), 0);
	});

	it('lists the job, and the status filter narrows the list', async () => {
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Jobs' }).click();
		const table = page.getByRole('table', { name: 'Jobs' });
		await table.getByRole('link', { name: 'e2e-two-steps' }).waitFor();
		await page.getByLabel('Status').selectOption('failed');
		await page.getByText('No job has this status').waitFor();
		await page.getByLabel('Status').selectOption('succeeded');
		await table.getByRole('link', { name: 'e2e-two-steps' }).waitFor();
	});

	it('ran without page errors', () => {
		assert.deepEqual(pageErrors, []);
	});
});
