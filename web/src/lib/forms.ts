// Conversions between the task editor's form state and API request bodies. Pure, tested.
import type { CreateTask, Limits, Task, UpdateTask } from './api/types';
import { LIMIT_FIELDS } from './api/types';

export interface Row {
	name: string;
	value: string;
}

export type LimitKey = (typeof LIMIT_FIELDS)[number];

/** Everything the editor edits, as strings where the user types. */
export interface TaskForm {
	name: string;
	description: string;
	language: string;
	code: string;
	stdin: string;
	env: Row[];
	/** New or replaced secret values (write-only: existing values are never shown). */
	secrets: Row[];
	/** Existing secret names to delete on save. */
	removeSecrets: string[];
	limits: Record<LimitKey, string>;
	priority: string;
	tags: string;
}

export function emptyForm(language = 'python', code = ''): TaskForm {
	return {
		name: '',
		description: '',
		language,
		code,
		stdin: '',
		env: [],
		secrets: [],
		removeSecrets: [],
		limits: { timeout_secs: '', memory_mb: '', cpu_cores: '', max_processes: '', max_output_bytes: '' },
		priority: '5',
		tags: ''
	};
}

export function formFromTask(t: Task): TaskForm {
	const limits = {} as Record<LimitKey, string>;
	for (const k of LIMIT_FIELDS) limits[k] = String(t.limits[k]);
	return {
		name: t.name,
		description: t.description ?? '',
		language: t.language,
		code: t.code,
		stdin: t.stdin ?? '',
		env: Object.entries(t.env).map(([name, value]) => ({ name, value })),
		secrets: [],
		removeSecrets: [],
		limits,
		priority: String(t.priority),
		tags: t.tags.join(', ')
	};
}

/** Rows with a name, as an object (later duplicates win, like JSON). */
export function rowsToObject(rows: Row[]): Record<string, string> {
	const out: Record<string, string> = {};
	for (const r of rows) {
		const name = r.name.trim();
		if (name) out[name] = r.value;
	}
	return out;
}

/** "a, b  c" → ["a", "b", "c"]. */
export function parseTags(s: string): string[] {
	return s
		.split(/[\s,]+/)
		.map((t) => t.trim())
		.filter(Boolean);
}

/** The limits the user filled in; empty fields take the server's defaults. */
export function limitsFrom(form: TaskForm): Partial<Limits> {
	const out: Partial<Limits> = {};
	for (const k of LIMIT_FIELDS) {
		// bind:value on a number input stores a number (or null when empty).
		const raw = String(form.limits[k] ?? '').trim();
		if (raw === '') continue;
		out[k] = Number(raw);
	}
	return out;
}

function priorityFrom(form: TaskForm): number | undefined {
	const p = String(form.priority ?? '').trim();
	return p === '' ? undefined : Number(p);
}

export function toCreate(form: TaskForm): CreateTask {
	const body: CreateTask = {
		name: form.name,
		language: form.language,
		code: form.code,
		description: form.description.trim() === '' ? null : form.description,
		stdin: form.stdin === '' ? null : form.stdin,
		env: rowsToObject(form.env),
		limits: limitsFrom(form),
		priority: priorityFrom(form),
		tags: parseTags(form.tags)
	};
	const secrets = rowsToObject(form.secrets);
	if (Object.keys(secrets).length > 0) body.secrets = secrets;
	return body;
}

export function toUpdate(form: TaskForm): UpdateTask {
	const body: UpdateTask = {
		name: form.name,
		language: form.language,
		code: form.code,
		description: form.description.trim() === '' ? null : form.description,
		stdin: form.stdin === '' ? null : form.stdin,
		env: rowsToObject(form.env),
		limits: limitsFrom(form),
		priority: priorityFrom(form),
		tags: parseTags(form.tags)
	};
	const secrets: Record<string, string | null> = {};
	for (const name of form.removeSecrets) secrets[name] = null;
	Object.assign(secrets, rowsToObject(form.secrets));
	if (Object.keys(secrets).length > 0) body.secrets = secrets;
	return body;
}
