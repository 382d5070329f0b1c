// A real git repository for the repository pages' tests (cloned by the server through
// `file://`, which the test server allows), and GitLab-style push events (plain token
// header, see docs/GIT.md) sent to the server's hook.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Server environment that lets hooks and jobs clone `file://` repositories. */
export const FILE_GIT_ENV = {
	VOIDRUNNER_HOOKS__GIT_PROTOCOLS: '["file"]',
	VOIDRUNNER_JOBS__GIT_PROTOCOLS: '["file"]'
};

function git(dir, ...args) {
	return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'init.defaultBranch=main', ...args], {
		cwd: dir,
		env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null' },
		encoding: 'utf8'
	}).trim();
}

/**
 * A repository whose `.voidrunner/workflows/ci.yaml` runs on pushes to main; two commits.
 * Answers its `file://` URL, both shas and a cleanup.
 */
export function makeRepository() {
	const dir = mkdtempSync(join(tmpdir(), 'voidrunner-e2e-repo-'));
	git(dir, 'init', '-q');
	const write = (path, text) => {
		mkdirSync(dirname(join(dir, path)), { recursive: true });
		writeFileSync(join(dir, path), text);
	};
	write(
		'.voidrunner/workflows/ci.yaml',
		'name: ci\non: {events: [push], branches: [main]}\njobs:\n  check:\n    job: {name: check, steps: [{name: s, command: "echo hello-from-ci"}]}\n'
	);
	git(dir, 'add', '-A');
	git(dir, 'commit', '-q', '-m', 'one');
	const before = git(dir, 'rev-parse', 'HEAD');
	write('app.txt', 'v2\n');
	git(dir, 'add', '-A');
	git(dir, 'commit', '-q', '-m', 'two');
	const after = git(dir, 'rev-parse', 'HEAD');
	return { url: `file://${dir}`, before, after, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Sends a GitLab push event for `fullName`; answers `{status, body}`. */
export async function gitlabPush(serverUrl, { token, delivery, fullName, ref, before, after }) {
	const res = await fetch(`${serverUrl}/api/v1/hooks/gitlab`, {
		method: 'POST',
		headers: {
			'content-type': 'application/json',
			'x-gitlab-event': 'Push Hook',
			'x-gitlab-event-uuid': delivery,
			'x-gitlab-token': token
		},
		body: JSON.stringify({ object_kind: 'push', ref, before, after, project: { path_with_namespace: fullName } })
	});
	return { status: res.status, body: await res.json() };
}
