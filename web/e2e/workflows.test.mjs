// End-to-end: workflows in the web UI against a real `voidrunner serve` (its job worker and
// workflow scheduler run because the server has workers). Submit a fan-out workflow from the
// form and watch its graph go live to succeeded, follow a node to its job, see every problem
// of an invalid definition with its path, cancel a running workflow and re-run a failed one.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openSession, setEditorText } from './server.mjs';

const EMAIL = `workflows-${Date.now()}@example.com`;
const PASSWORD = 'correct horse battery';

let page;
let pageErrors;
let close;

before(async () => {
	({ page, pageErrors, close } = await openSession({ email: EMAIL, password: PASSWORD, timeout: 60_000 }));
});

after(() => close?.());

async function submit(text) {
	await page.goto('/workflows?new');
	await setEditorText(page, text);
	await page.getByRole('button', { name: 'Submit workflow' }).click();
	await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
}

const graphNode = (name) => page.getByTestId('workflow-graph').locator(`[data-node="${name}"]`);

const FAN_OUT = `name: e2e-fan-out
jobs:
  prepare:
    job: {name: prepare, steps: [{name: go, command: "echo preparing && sleep 2"}]}
  build:
    needs: [prepare]
    for_each: [linux, windows, mac]
    job: {name: build, steps: [{name: compile, command: "echo building-for-$ITEM"}]}
  publish:
    depends_on: [build]
    job: {name: publish, steps: [{name: ship, command: "echo publishing"}]}
`;

describe('workflow pages', { concurrency: false }, () => {
	it('signs in and reaches Workflows from the navigation', async () => {
		await page.goto('/login');
		await page.getByLabel('Email').fill(EMAIL);
		await page.getByLabel('Password').fill(PASSWORD);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.waitForURL(/\/tasks$/);
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workflows' }).click();
		await page.waitForURL(/\/workflows$/);
		await page.getByText('No workflows yet').waitFor();
	});

	it('shows every problem of an invalid definition with its path', async () => {
		await page.getByRole('button', { name: 'New workflow' }).click();
		await setEditorText(
			page,
			'name: bad\njobs:\n  a: {job: {name: a, steps: [{name: s, command: "true"}]}, depends_on: [c]}\n  c: {job: {name: c, steps: [{name: s, command: "true"}]}, depends_on: [a]}\n  d: {job: {name: d, steps: [{name: s, command: "true"}]}, depends_on: [ghost]}\n'
		);
		await page.getByRole('button', { name: 'Submit workflow' }).click();
		const alert = page.getByTestId('submit-error');
		await alert.waitFor();
		const problems = alert.getByRole('list', { name: 'Problems' }).getByRole('listitem');
		assert.ok((await problems.count()) >= 2, await alert.innerText());
		const text = await alert.innerText();
		assert.match(text, /definition\.jobs\.d\.depends_on\[0\]/);
		assert.match(text, /ghost/);
		assert.match(text, /a → c → a|c → a → c|cycle/);
		assert.match(page.url(), /\/workflows$/, 'nothing was created');
	});

	it('submits a fan-out workflow and watches its graph go live to succeeded', async () => {
		await submit(FAN_OUT);
		// The graph is there before anything ran: five nodes, the builds stacked in one group.
		for (const name of ['prepare', 'build[0]', 'build[1]', 'build[2]', 'publish']) await graphNode(name).waitFor();
		assert.equal(await page.getByTestId('workflow-graph').locator('rect.group').count(), 1);
		// Live: prepare is seen running (it sleeps), then everything succeeds without a reload.
		await page.getByTestId('workflow-graph').locator('[data-node="prepare"][data-status="running"]').waitFor();
		await page.getByTestId('workflow-status').getByText('succeeded').waitFor();
		for (const name of ['prepare', 'build[0]', 'build[1]', 'build[2]', 'publish']) {
			assert.equal(await graphNode(name).getAttribute('data-status'), 'succeeded', name);
			// State in words, not only colour.
			assert.match(await graphNode(name).getAttribute('aria-label'), /^\S+ succeeded/);
		}
		const table = page.getByRole('table', { name: 'Nodes' });
		assert.equal(await table.locator('tbody tr').count(), 5);
		assert.equal(await page.getByTestId('workflow-origin').innerText(), 'API');
		// The definition as stored, behind a disclosure.
		await page.getByText('Definition', { exact: true }).click();
		await page.getByLabel('Workflow definition').getByText('building-for-$ITEM').waitFor();
		// Terminal: no Cancel and no Re-run for a success.
		assert.equal(await page.getByRole('button', { name: 'Cancel' }).count(), 0);
		assert.equal(await page.getByRole('button', { name: 'Re-run' }).count(), 0);
	});

	it('follows a node of the graph to its job', async () => {
		const link = page.getByTestId('workflow-graph').getByRole('link', { name: /^build\[1\] succeeded/ });
		const href = await link.getAttribute('href');
		assert.match(href, /^\/jobs\/[0-9a-f-]{36}$/);
		await link.focus();
		await page.keyboard.press('Enter');
		await page.waitForURL(new RegExp(`${href}$`));
		await page.getByTestId('job-status').getByText('succeeded').waitFor();
		await page.getByTestId('job-log').getByText('building-for-windows').waitFor();
		// The job page links back to its workflow and names its node.
		const back = page.getByTestId('job-workflow');
		assert.equal(await back.innerText(), 'node build[1]');
		await back.click();
		await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
		await page.getByTestId('workflow-status').getByText('succeeded').waitFor();
	});

	it('sends the job files a definition names, picked in the browser', async () => {
		await page.goto('/workflows?new');
		await setEditorText(page, 'name: e2e-files\njobs:\n  hello: {job_file: jobs/hello.yaml}\n');
		await page.getByText('Job files (0)').click();
		await page.getByLabel('Add files').setInputFiles({
			name: 'hello.yaml',
			mimeType: 'text/yaml',
			buffer: Buffer.from('name: hello\nsteps:\n  - {name: s, command: "echo hello-from-a-file"}\n')
		});
		assert.equal(await page.getByLabel('Path of file 1').inputValue(), 'jobs/hello.yaml');
		await page.getByRole('button', { name: 'Submit workflow' }).click();
		await page.waitForURL(/\/workflows\/[0-9a-f-]{36}$/);
		await page.getByTestId('workflow-status').getByText('succeeded').waitFor();
		await page.getByText('Definition and 1 CI file').click();
		await page.getByRole('listitem').getByText('jobs/hello.yaml').waitFor();
		await graphNode('hello').click();
		await page.getByTestId('job-log').getByText('hello-from-a-file').waitFor();
	});

	it('cancels a running workflow', async () => {
		await submit('name: e2e-cancel\njobs:\n  long: {job: {name: long, steps: [{name: s, command: "echo started && sleep 60"}]}}\n  after: {job: {name: after, steps: [{name: s, command: "true"}]}, depends_on: [long]}\n');
		await page.getByTestId('workflow-graph').locator('[data-node="long"][data-status="running"]').waitFor();
		await page.getByRole('button', { name: 'Cancel' }).click();
		await page.getByTestId('workflow-status').getByText('cancelled').waitFor();
		assert.equal(await graphNode('long').getAttribute('data-status'), 'cancelled');
		assert.match(await graphNode('after').getAttribute('data-status'), /^(skipped|cancelled)$/);
		assert.equal(await page.getByRole('button', { name: 'Cancel' }).count(), 0);
		// A cancelled workflow can be re-run.
		await page.getByRole('button', { name: 'Re-run' }).waitFor();
	});

	it('re-runs a failed workflow: only the failed and skipped nodes run again', async () => {
		await submit('name: e2e-rerun\njobs:\n  ok: {job: {name: ok, steps: [{name: s, command: "echo fine"}]}}\n  bad: {job: {name: bad, steps: [{name: s, command: "exit 3"}]}, depends_on: [ok]}\n  last: {job: {name: last, steps: [{name: s, command: "true"}]}, depends_on: [bad]}\n');
		await page.getByTestId('workflow-status').getByText('failed').waitFor();
		assert.equal(await graphNode('bad').getAttribute('data-status'), 'failed');
		assert.equal(await graphNode('last').getAttribute('data-status'), 'skipped');
		const okJob = await graphNode('ok').getAttribute('href');
		const badJob = await graphNode('bad').getAttribute('href');
		await page.getByRole('button', { name: 'Re-run' }).click();
		// The re-run shows as run 2, and the failed node gets a new job.
		const url = page.url();
		await page.getByTestId('workflow-run').getByText('2', { exact: true }).waitFor();
		await page.getByTestId('workflow-status').getByText('failed').waitFor();
		assert.equal(page.url(), url);
		await page.waitForFunction(
			(old) => {
				const a = document.querySelector('[data-testid="workflow-graph"] [data-node="bad"]');
				return a?.getAttribute('data-status') === 'failed' && a.getAttribute('href') !== old;
			},
			badJob
		);
		assert.equal(await graphNode('ok').getAttribute('href'), okJob, 'a succeeded node is not run again');
	});

	it('draws a node triggered from inside a job when it appears, with a dashed edge from its parent', async () => {
		const payload = {
			type: 'trigger_job',
			operation_id: 'e2e-op-1',
			jobs: [{ job_name: 'followup', job: { name: 'followup', steps: [{ name: 's', command: 'echo followed' }] } }]
		};
		const definition = {
			name: 'e2e-trigger',
			jobs: {
				start: { job: { name: 'start', steps: [{ name: 's', command: `echo '${JSON.stringify(payload)}' > /job/triggers.json` }] } }
			}
		};
		await submit(JSON.stringify(definition, null, 2));
		await graphNode('start').waitFor();
		// The follow-up exists only once start's job has ended; the graph grows without a reload.
		await page.getByTestId('workflow-graph').locator('[data-node="followup"][data-status="succeeded"]').waitFor();
		await page.getByTestId('workflow-status').getByText('succeeded').waitFor();
		assert.equal(await page.getByTestId('workflow-graph').locator('path.edge.trigger').count(), 1);
		const start = await graphNode('start').boundingBox();
		const followup = await graphNode('followup').boundingBox();
		assert.ok(followup.x > start.x + start.width, 'the follow-up is drawn after its parent');
		await page.getByRole('table', { name: 'Nodes' }).locator('tr[data-node="followup"]').getByText('(triggered)').waitFor();
	});

	it('keeps the list current while a listed workflow runs', async () => {
		await submit('name: e2e-list-live\njobs:\n  nap: {job: {name: nap, steps: [{name: s, command: "sleep 3"}]}}\n');
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workflows' }).click();
		const row = page.getByRole('table', { name: 'Workflows' }).getByRole('row').filter({ has: page.getByRole('link', { name: 'e2e-list-live' }) });
		await row.getByText('running').waitFor();
		// No reload: the list looks again while something runs.
		await row.getByText('succeeded').waitFor();
	});

	it('lists the workflows, and the status filter narrows the list', async () => {
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Workflows' }).click();
		const table = page.getByRole('table', { name: 'Workflows' });
		for (const name of ['e2e-fan-out', 'e2e-cancel', 'e2e-rerun']) await table.getByRole('link', { name }).waitFor();
		await page.getByLabel('Status').selectOption('succeeded');
		await table.getByRole('link', { name: 'e2e-rerun' }).waitFor({ state: 'detached' });
		assert.equal(await table.getByRole('link', { name: 'e2e-cancel' }).count(), 0);
		assert.equal(await table.getByRole('link', { name: 'e2e-fan-out' }).count(), 1);
		await page.getByLabel('Status').selectOption('skipped');
		await page.getByText('No workflow has this status').waitFor();
		assert.match(page.url(), /status=skipped/);
	});

	it('says so when a workflow does not exist, and stops asking', async () => {
		// A page of its own with a fake clock, to run the poll timer forward without waiting.
		const p = await page.context().newPage();
		p.setDefaultTimeout(30_000);
		await p.clock.install();
		const requests = [];
		p.on('request', (r) => r.url().includes('/api/v1/workflows/0') && requests.push(r.url()));
		await p.goto('/workflows/00000000-0000-0000-0000-000000000000');
		await p.getByRole('alert').waitFor();
		assert.match(await p.getByRole('alert').innerText(), /not found|no such/i);
		await p.clock.runFor(10_000);
		await p.evaluate(() => new Promise((r) => setTimeout(r, 0)));
		await p.clock.runFor(10_000);
		// Polling stopped at the 404: the first answer was the only request.
		assert.equal(requests.length, 1, requests.join('\n'));
		await p.close();
	});

	it('ran without page errors', () => {
		assert.deepEqual(pageErrors, []);
	});
});
