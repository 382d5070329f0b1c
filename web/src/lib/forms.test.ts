import { describe, expect, it } from 'vitest';
import { ApiError } from './api/client';
import { fieldKey, toFormErrors, toSubmitErrors } from './errors';
import { emptyForm, parseTags, rowsToObject, toCreate, toUpdate } from './forms';

describe('task form', () => {
	it('builds a create body: empty limits take the defaults, secrets only when given', () => {
		const f = emptyForm('python', 'print(1)');
		f.name = 'hello';
		f.limits.memory_mb = '128';
		f.tags = 'a, b  c';
		f.env = [{ name: 'X', value: '1' }, { name: ' ', value: 'ignored' }];
		const body = toCreate(f);
		expect(body).toMatchObject({ name: 'hello', language: 'python', code: 'print(1)', limits: { memory_mb: 128 }, tags: ['a', 'b', 'c'], env: { X: '1' }, priority: 5, stdin: null, description: null });
		expect('secrets' in body).toBe(false);
		f.secrets = [{ name: 'TOKEN', value: 's3cret' }];
		expect(toCreate(f).secrets).toEqual({ TOKEN: 's3cret' });
	});

	it('accepts the numbers a bound number input stores', () => {
		const f = emptyForm();
		(f.limits as Record<string, unknown>).timeout_secs = 5;
		(f.limits as Record<string, unknown>).memory_mb = null;
		(f as unknown as Record<string, unknown>).priority = 7;
		expect(toCreate(f)).toMatchObject({ limits: { timeout_secs: 5 }, priority: 7 });
		expect(toCreate(f).limits).not.toHaveProperty('memory_mb');
	});

	it('builds an update body that removes and sets secrets', () => {
		const f = emptyForm();
		f.removeSecrets = ['OLD'];
		f.secrets = [{ name: 'NEW', value: 'v' }];
		expect(toUpdate(f).secrets).toEqual({ OLD: null, NEW: 'v' });
	});

	it('parses tags and rows', () => {
		expect(parseTags(' ,a,,b c ')).toEqual(['a', 'b', 'c']);
		expect(rowsToObject([{ name: 'A', value: '1' }, { name: 'A', value: '2' }])).toEqual({ A: '2' });
	});
});

describe('form errors', () => {
	it('maps API fields to form keys', () => {
		expect(fieldKey('env.MY_VAR')).toBe('env');
		expect(fieldKey('tags[2]')).toBe('tags');
		expect(fieldKey('secrets.TOKEN')).toBe('secrets');
		expect(fieldKey('limits.memory_mb')).toBe('limits.memory_mb');
	});

	it('puts a field error next to its field, else on the form', () => {
		const known = ['name', 'env', 'limits.memory_mb'];
		expect(toFormErrors(new ApiError(422, 'validation_failed', 'too big', 'limits.memory_mb'), known)).toEqual({ fields: { 'limits.memory_mb': 'too big' }, form: null });
		expect(toFormErrors(new ApiError(422, 'validation_failed', 'bad name', 'env.1X'), known)).toEqual({ fields: { env: 'env.1X: bad name' }, form: null });
		expect(toFormErrors(new ApiError(422, 'validation_failed', 'nope', 'metadata'), known).form).toBe('metadata: nope');
		expect(toFormErrors(new ApiError(409, 'conflict', 'already registered'), known)).toEqual({ fields: {}, form: 'already registered' });
		expect(toFormErrors(new TypeError('fetch failed'), known).form).toBe('Cannot reach the server.');
	});

	it('keeps every problem of a definition above a submit form, else maps like toFormErrors', () => {
		const problems = [
			{ path: 'definition.steps[1].name', message: 'duplicate step name a' },
			{ path: 'definition.steps[2].depends_on[0]', message: 'unknown dependency ghost' }
		];
		expect(toSubmitErrors(new ApiError(422, 'validation_failed', 'invalid definition', 'definition', problems), ['definition'])).toEqual({
			errors: { fields: {}, form: 'invalid definition' },
			problems
		});
		expect(toSubmitErrors(new ApiError(422, 'validation_failed', 'not 0–10', 'priority'), ['priority'])).toEqual({
			errors: { fields: { priority: 'not 0–10' }, form: null },
			problems: []
		});
	});
});
