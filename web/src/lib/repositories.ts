// Repositories (git hook integration, docs/GIT.md): the register form ↔ request body, what a
// hook delivery came to, and the workflows it started. Pure, tested.
import type { CreateRepository, Delivery, UpdateRepositorySecrets } from './api/types';
import { rowsToObject, type Row } from './forms';

export const PROVIDERS = ['github', 'gitlab'] as const;

/** Everything the register form edits. Secrets are write-only: sent once, never shown. */
export interface RepositoryForm {
	provider: string;
	full_name: string;
	clone_url: string;
	webhook_secret: string;
	ci_dir: string;
	fork_secrets: boolean;
	secrets: Row[];
	/** Commit statuses reported back to the host when set. */
	status_api_url: string;
	status_token: string;
}

export function emptyRepositoryForm(): RepositoryForm {
	return {
		provider: 'github',
		full_name: '',
		clone_url: '',
		webhook_secret: '',
		ci_dir: '',
		fork_secrets: false,
		secrets: [],
		status_api_url: '',
		status_token: ''
	};
}

/** The `POST /api/v1/repositories` body: empty optional fields are left to the server. */
export function toCreateRepository(f: RepositoryForm): CreateRepository {
	const body: CreateRepository = {
		provider: f.provider,
		full_name: f.full_name.trim(),
		clone_url: f.clone_url.trim(),
		webhook_secret: f.webhook_secret
	};
	if (f.ci_dir.trim()) body.ci_dir = f.ci_dir.trim();
	if (f.fork_secrets) body.fork_secrets = true;
	const secrets = rowsToObject(f.secrets);
	if (Object.keys(secrets).length > 0) body.secrets = secrets;
	if (f.status_api_url.trim()) body.status_reporting = { api_url: f.status_api_url.trim(), token: f.status_token };
	return body;
}

/** The `PATCH …/secrets` body: a new webhook secret when typed, secrets set and removed. */
export function toSecretsChange(webhook: string, set: Row[], remove: string[]): UpdateRepositorySecrets {
	const secrets: Record<string, string | null> = { ...rowsToObject(set) };
	for (const name of remove) secrets[name] = null;
	const body: UpdateRepositorySecrets = { secrets };
	if (webhook) body.webhook_secret = webhook;
	return body;
}

export type DeliveryOutcome = 'started' | 'duplicate' | 'ignored' | 'invalid' | 'no match';

type Summary = Record<string, unknown>;

function summaryOf(d: Pick<Delivery, 'summary'>): Summary {
	const s = d.summary as unknown;
	return s && typeof s === 'object' && !Array.isArray(s) ? (s as Summary) : {};
}

function list(v: unknown): Summary[] {
	return Array.isArray(v) ? v.filter((x): x is Summary => !!x && typeof x === 'object') : [];
}

/** What a delivery came to (the same reading as `voidrunner repo deliveries`). */
export function deliveryOutcome(d: Pick<Delivery, 'summary' | 'workflow_ids'>): DeliveryOutcome {
	const s = summaryOf(d);
	if ('duplicate_of' in s) return 'duplicate';
	if (d.workflow_ids.length > 0) return 'started';
	if ('ignored' in s) return 'ignored';
	if (list(s.invalid).length > 0) return 'invalid';
	return 'no match';
}

/** Why nothing (or not everything) started: skipped and invalid workflow files, in words. */
export function deliveryNotes(d: Pick<Delivery, 'summary'>): string[] {
	const s = summaryOf(d);
	const out: string[] = [];
	if (typeof s.ignored === 'string') out.push(s.ignored);
	for (const k of list(s.skipped)) out.push(`${k.name ?? k.file}: skipped, ${k.reason}`);
	for (const k of list(s.invalid)) {
		const problems = Array.isArray(k.problems) ? k.problems.map(String).join('; ') : '';
		out.push(`${k.file}: invalid${problems ? `, ${problems}` : ''}`);
	}
	return out;
}

/** The git ref a delivery was about (`refs/heads/main`), or null. */
export function deliveryRef(d: Pick<Delivery, 'summary'>): string | null {
	const r = summaryOf(d).ref;
	return typeof r === 'string' ? r : null;
}

/** The workflows a delivery started, named by the summary when it can. */
export function startedWorkflows(d: Pick<Delivery, 'summary' | 'workflow_ids'>): { id: string; name: string }[] {
	const matched = list(summaryOf(d).matched);
	return d.workflow_ids.map((id) => {
		const m = matched.find((x) => x.workflow_id === id);
		return { id, name: typeof m?.name === 'string' ? m.name : id.slice(0, 8) };
	});
}

/** `refs/heads/main` → `main`, `refs/tags/v1` → `v1`; other refs as they are. */
export function shortRef(ref: string): string {
	return ref.replace(/^refs\/(heads|tags)\//, '');
}
