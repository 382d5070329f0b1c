// End-to-end: repositories (git hook integration) in the web UI against a real `voidrunner
// serve` that may clone `file://` repositories, with a real git repository and GitLab-style
// push events. Register from the form (a too-short webhook secret is refused under its field),
// see the settings with secrets only as "set", a push's delivery with its ref, status and the
// workflow it started (followed to its page), a push that matches nothing with the reason,
// rotate and remove secrets (the old webhook secret is then refused), delete after confirming.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FILE_GIT_ENV, gitlabPush, makeRepository } from './git.mjs';
import { openSession } from './server.mjs';

const EMAIL = `repositories-${Date.now()}@example.com`;
const PASSWORD = 'correct horse battery';
const HOOK_SECRET = 'e2e-first-hook-secret-1234';
const NEW_HOOK_SECRET = 'e2e-rotated-hook-secret-5678';
const DEPLOY_TOKEN = 'e2e-deploy-token-value-42';
const OTHER_TOKEN = 'e2e-other-token-value-77';

let server;
let page;
let pageErrors;
let close;
let repo;
let repoPath;

before(async () => {
	repo = makeRepository();
	({ server, page, pageErrors, close } = await openSession({ env: FILE_GIT_ENV, email: EMAIL, password: PASSWORD, timeout: 60_000 }));
});

after(async () => {
	await close?.();
	repo?.cleanup();
});

/** The page never shows a secret value. */
async function assertNoSecrets() {
	const html = await page.content();
	for (const s of [HOOK_SECRET, NEW_HOOK_SECRET, DEPLOY_TOKEN, OTHER_TOKEN]) assert.ok(!html.includes(s), `the page shows ${s}`);
}

const push = (token, delivery, ref) =>
	gitlabPush(server.url, { token, delivery, fullName: 'grp/app', ref, before: repo.before, after: repo.after });

const deliveryRow = (id) => page.getByRole('table', { name: 'Deliveries' }).getByRole('row').filter({ hasText: id });

describe('repository pages', { concurrency: false }, () => {
	it('signs in and reaches Repositories from the navigation', async () => {
		await page.goto('/login');
		await page.getByLabel('Email').fill(EMAIL);
		await page.getByLabel('Password').fill(PASSWORD);
		await page.getByRole('button', { name: 'Sign in' }).click();
		await page.waitForURL(/\/tasks$/);
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Repositories' }).click();
		await page.waitForURL(/\/repositories$/);
		await page.getByText('No repositories yet').waitFor();
	});

	it('refuses a too-short webhook secret under its field, then registers with write-only secrets', async () => {
		await page.getByRole('button', { name: 'Register repository' }).click();
		const form = page.getByRole('form', { name: 'Register a repository' });
		await form.getByLabel('Provider').selectOption('gitlab');
		await form.getByLabel('Full name').fill('grp/app');
		await form.getByLabel('Clone URL').fill(repo.url);
		const secret = form.getByLabel('Webhook secret');
		assert.equal(await secret.getAttribute('type'), 'password');
		await secret.fill('short');
		await form.getByRole('button', { name: '+ Add secret' }).click();
		await form.getByLabel('secret 1 name').fill('DEPLOY_TOKEN');
		const value = form.getByLabel('secret 1 value');
		assert.equal(await value.getAttribute('type'), 'password');
		await value.fill(DEPLOY_TOKEN);
		await form.getByRole('button', { name: 'Register repository' }).click();
		await form.locator('#repo-webhook-secret-error').waitFor();
		assert.equal(await secret.getAttribute('aria-invalid'), 'true');
		assert.equal(await page.evaluate(() => document.activeElement?.id), 'repo-webhook-secret', 'focus moves to the invalid field');
		assert.match(page.url(), /\/repositories$/, 'nothing was registered');

		await secret.fill(HOOK_SECRET);
		await form.getByRole('button', { name: 'Register repository' }).click();
		await page.waitForURL(/\/repositories\/[0-9a-f-]{36}\?registered$/);
		repoPath = new URL(page.url()).pathname;
		await page.getByRole('heading', { name: 'grp/app', level: 1 }).waitFor();
		const note = page.getByRole('status').filter({ hasText: 'Registered.' });
		assert.match(await note.innerText(), new RegExp(`${server.url}/api/v1/hooks/gitlab`));
		const settings = page.getByTestId('repository-settings');
		assert.match(await settings.innerText(), /Webhook secret\s+set/);
		assert.match(await settings.innerText(), /CI directory\s+\.voidrunner/);
		const secrets = page.getByRole('table', { name: 'Job secrets' });
		assert.deepEqual(await secrets.locator('tbody tr').allInnerTexts(), ['DEPLOY_TOKEN\tset\t']);
		await page.getByText('No deliveries yet').waitFor();
		await assertNoSecrets();
	});

	it('lists the repository', async () => {
		await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Repositories' }).click();
		const row = page.getByRole('table', { name: 'Repositories' }).getByRole('row').filter({ hasText: 'grp/app' });
		assert.match(await row.innerText(), /GitLab\s+file:\/\/\S+\s+DEPLOY_TOKEN\s+off/);
		await row.getByRole('link', { name: 'grp/app' }).click();
		await page.waitForURL((u) => u.pathname === repoPath);
	});

	it('shows a push delivery with its ref, status and started workflow, and one that matched nothing', async () => {
		const started = await push(HOOK_SECRET, 'e2e-push-1', 'refs/heads/main');
		assert.equal(started.status, 202, JSON.stringify(started.body));
		const other = await push(HOOK_SECRET, 'e2e-push-2', 'refs/heads/other');
		assert.equal(other.body.workflow_ids.length, 0, JSON.stringify(other.body));
		await page.getByRole('button', { name: 'Refresh' }).click();
		const row = deliveryRow('e2e-push-1');
		await row.waitFor();
		assert.equal(await row.getByRole('cell').nth(1).innerText(), 'push');
		assert.equal(await row.getByRole('cell').nth(2).innerText(), 'main');
		assert.equal(await row.locator('[data-outcome]').innerText(), 'started');
		const skipped = deliveryRow('e2e-push-2');
		assert.equal(await skipped.locator('[data-outcome]').innerText(), 'no match');
		assert.match(await skipped.innerText(), /ci: skipped, .*other/);
		// The workflow it started, with its live status, links to its page.
		const wfId = started.body.workflow_ids[0];
		const link = row.getByRole('link', { name: 'ci' });
		assert.equal(await link.getAttribute('href'), `/workflows/${wfId}`);
		await row.locator('.badge').waitFor();
		await link.click();
		await page.waitForURL((u) => u.pathname === `/workflows/${wfId}`);
		await page.getByTestId('workflow-status').getByText('succeeded').waitFor();
		assert.match(await page.getByTestId('workflow-origin').innerText(), /gitlab push · grp\/app/);
		await page.goBack();
		await page.waitForURL((u) => u.pathname === repoPath);
		await deliveryRow('e2e-push-1').locator('.badge').getByText('succeeded').waitFor();
	});

	it('rotates the webhook secret and changes job secrets; the old webhook secret is refused', async () => {
		const form = page.getByRole('form', { name: 'Change secrets' });
		const save = form.getByRole('button', { name: 'Save secrets' });
		assert.ok(await save.isDisabled(), 'nothing to save yet');
		await form.getByLabel('Remove DEPLOY_TOKEN').check();
		await form.getByRole('button', { name: '+ Add secret' }).click();
		await form.getByLabel('secret 1 name').fill('OTHER_TOKEN');
		await form.getByLabel('secret 1 value').fill(OTHER_TOKEN);
		await form.getByLabel('New webhook secret').fill(NEW_HOOK_SECRET);
		await save.click();
		await form.getByRole('status').getByText('The webhook secret was replaced').waitFor();
		const secrets = page.getByRole('table', { name: 'Job secrets' });
		assert.deepEqual(await secrets.locator('tbody tr').allInnerTexts(), ['OTHER_TOKEN\tset\t']);
		assert.equal(await form.getByLabel('New webhook secret').inputValue(), '', 'the typed secret is cleared');
		await assertNoSecrets();
		assert.equal((await push(HOOK_SECRET, 'e2e-push-3', 'refs/heads/main')).status, 401);
		const again = await push(NEW_HOOK_SECRET, 'e2e-push-1', 'refs/heads/main');
		assert.equal(again.body.duplicate, true, JSON.stringify(again.body));
	});

	it('deletes the repository only after confirming', async () => {
		const del = page.getByRole('button', { name: 'Delete repository' });
		await del.click();
		const dialog = page.getByRole('alertdialog', { name: 'Delete grp/app?' });
		await dialog.waitFor();
		assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Keep it', 'focus on the safe choice');
		await dialog.getByRole('button', { name: 'Keep it' }).click();
		assert.equal(await dialog.count(), 0);
		assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Delete repository');
		await del.click();
		await dialog.getByRole('button', { name: 'Delete', exact: true }).click();
		await page.waitForURL(/\/repositories$/);
		await page.getByText('No repositories yet').waitFor();
		await page.goto(repoPath);
		await page.getByRole('alert').waitFor();
		assert.match(await page.getByRole('alert').innerText(), /not found/i);
	});

	it('ran without page errors', () => {
		assert.deepEqual(pageErrors, []);
	});
});
