// Maps API errors onto form fields: the envelope's `field` (`name`, `limits.memory_mb`,
// `env.MY_VAR`, `tags[2]`, `secrets.TOKEN`) decides where the message is shown.
import { ApiError } from './api/client';
import type { Problem } from './api/types';

export interface FormErrors {
	/** Message per form field key (the API's `field`, or its section: `env`, `tags`, `secrets`). */
	fields: Record<string, string>;
	/** A message not tied to one field. */
	form: string | null;
}

/** The form key an API `field` is shown next to. */
export function fieldKey(field: string): string {
	const m = /^(env|secrets)\./.exec(field) ?? /^(tags)\[/.exec(field);
	if (m?.[1]) return m[1];
	return field;
}

/** Splits an error into field messages and a form message. */
export function toFormErrors(err: unknown, known: readonly string[]): FormErrors {
	if (err instanceof ApiError) {
		if (err.field) {
			const key = fieldKey(err.field);
			if (known.includes(key)) {
				const prefix = key === err.field ? '' : `${err.field}: `;
				return { fields: { [key]: prefix + err.message }, form: null };
			}
			return { fields: {}, form: `${err.field}: ${err.message}` };
		}
		if (err.status === 429) return { fields: {}, form: 'Too many requests; try again shortly.' };
		return { fields: {}, form: err.message };
	}
	if (err instanceof TypeError) return { fields: {}, form: 'Cannot reach the server.' };
	return { fields: {}, form: err instanceof Error ? err.message : String(err) };
}

export const noErrors = (): FormErrors => ({ fields: {}, form: null });

/**
 * Like `toFormErrors`, for a definition's submit form: a `422` that lists every problem of the
 * definition (each with its path) keeps them all, its message above the form.
 */
export function toSubmitErrors(err: unknown, known: readonly string[]): { errors: FormErrors; problems: Problem[] } {
	if (err instanceof ApiError && err.problems.length > 0) return { errors: { fields: {}, form: err.message }, problems: err.problems };
	return { errors: toFormErrors(err, known), problems: [] };
}
