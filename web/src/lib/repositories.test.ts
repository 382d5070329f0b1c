import { describe, expect, it } from 'vitest';
import {
	deliveryNotes,
	deliveryOutcome,
	deliveryRef,
	emptyRepositoryForm,
	shortRef,
	startedWorkflows,
	toCreateRepository,
	toSecretsChange
} from './repositories';

const W1 = '0b7e0f3a-2c1e-4a4e-9a57-3c9f3c1f0a11';
const W2 = '1c8f1a4b-3d2f-4b5f-8b68-4daf4d2a1b22';

describe('register form', () => {
	it('leaves empty optional fields to the server', () => {
		const f = { ...emptyRepositoryForm(), full_name: ' acme/app ', clone_url: 'https://h/acme/app.git', webhook_secret: ' s ' };
		expect(toCreateRepository(f)).toEqual({
			provider: 'github',
			full_name: 'acme/app',
			clone_url: 'https://h/acme/app.git',
			webhook_secret: ' s '
		});
	});

	it('sends the CI directory, fork secrets, job secrets and status reporting when given', () => {
		const f = {
			...emptyRepositoryForm(),
			provider: 'gitlab',
			full_name: 'grp/app',
			clone_url: 'u',
			webhook_secret: 'w',
			ci_dir: 'ci',
			fork_secrets: true,
			secrets: [
				{ name: 'TOKEN', value: 't' },
				{ name: ' ', value: 'ignored' }
			],
			status_api_url: 'https://api.github.com',
			status_token: 'st'
		};
		expect(toCreateRepository(f)).toEqual({
			provider: 'gitlab',
			full_name: 'grp/app',
			clone_url: 'u',
			webhook_secret: 'w',
			ci_dir: 'ci',
			fork_secrets: true,
			secrets: { TOKEN: 't' },
			status_reporting: { api_url: 'https://api.github.com', token: 'st' }
		});
	});

	it('changes secrets: a new webhook secret only when typed, removals as null', () => {
		expect(toSecretsChange('', [{ name: 'A', value: '1' }], ['B'])).toEqual({ secrets: { A: '1', B: null } });
		expect(toSecretsChange('new-secret', [], [])).toEqual({ secrets: {}, webhook_secret: 'new-secret' });
	});
});

describe('deliveries', () => {
	const d = (summary: unknown, workflow_ids: string[] = []) => ({ summary: summary as Record<string, never>, workflow_ids });

	it('reads the outcome from the summary', () => {
		expect(deliveryOutcome(d({ matched: [] }, [W1]))).toBe('started');
		expect(deliveryOutcome(d({ duplicate_of: 'x' }, [W1]))).toBe('duplicate');
		expect(deliveryOutcome(d({ ignored: 'deleted ref' }))).toBe('ignored');
		expect(deliveryOutcome(d({ invalid: [{ file: 'a.yaml', problems: ['x'] }] }))).toBe('invalid');
		expect(deliveryOutcome(d({ invalid: [], skipped: [] }))).toBe('no match');
		expect(deliveryOutcome(d(null))).toBe('no match');
	});

	it('names the started workflows from the summary, else by short id', () => {
		const got = startedWorkflows(d({ matched: [{ name: 'ci', workflow_id: W1, file: 'workflows/ci.yaml' }] }, [W1, W2]));
		expect(got).toEqual([
			{ id: W1, name: 'ci' },
			{ id: W2, name: W2.slice(0, 8) }
		]);
	});

	it('says why workflows did not start', () => {
		const notes = deliveryNotes(
			d({
				skipped: [{ file: 'workflows/rel.yaml', name: 'release', reason: 'event push not in [tag_created]' }],
				invalid: [{ file: 'workflows/bad.yaml', problems: ['jobs: required', 'name: required'] }]
			})
		);
		expect(notes).toEqual(['release: skipped, event push not in [tag_created]', 'workflows/bad.yaml: invalid, jobs: required; name: required']);
	});

	it('shows refs short', () => {
		expect(deliveryRef(d({ ref: 'refs/heads/main' }))).toBe('refs/heads/main');
		expect(deliveryRef(d({}))).toBeNull();
		expect(shortRef('refs/heads/feature/x')).toBe('feature/x');
		expect(shortRef('refs/tags/v1.2')).toBe('v1.2');
		expect(shortRef('refs/merge-requests/7/head')).toBe('refs/merge-requests/7/head');
	});
});
