import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, withQuery, type SessionStorage, type StoredSession } from './client';

const user = { id: 'u1', email: 'a@example.com', role: 'user' as const, created_at: '2026-01-01T00:00:00Z' };

function memory(initial: StoredSession | null = null): SessionStorage & { value: StoredSession | null } {
	return {
		value: initial,
		load() {
			return this.value;
		},
		save(s) {
			this.value = s;
		}
	};
}

function tokens(n: number) {
	return {
		access_token: `access-${n}`,
		refresh_token: `refresh-${n}`,
		expires_in_secs: 900,
		refresh_expires_at: '2026-12-01T00:00:00Z',
		token_type: 'Bearer',
		user
	};
}

const json = (status: number, body: unknown) =>
	new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

type Call = { url: string; method: string; auth: string | null; body: string | null };

function fakeFetch(handler: (c: Call, n: number) => Response) {
	const calls: Call[] = [];
	const f = (async (input: RequestInfo | URL, init?: RequestInit) => {
		const headers = new Headers(init?.headers);
		const c = {
			url: String(input),
			method: init?.method ?? 'GET',
			auth: headers.get('authorization'),
			body: typeof init?.body === 'string' ? init.body : null
		};
		calls.push(c);
		return handler(c, calls.length);
	}) as typeof fetch;
	return { f, calls };
}

describe('withQuery', () => {
	it('leaves out empty values and encodes the rest', () => {
		expect(withQuery('/x', { a: 'b c', n: 0, e: '', u: undefined, z: null, t: true })).toBe('/x?a=b+c&n=0&t=true');
		expect(withQuery('/x', {})).toBe('/x');
	});
});

describe('ApiClient', () => {
	it('turns the error envelope into an ApiError with the field', async () => {
		const { f } = fakeFetch(() => json(422, { error: { code: 'validation_failed', message: 'must not be blank', field: 'name' } }));
		const c = new ApiClient(memory(), f);
		const err = await c.post('/api/v1/tasks', { name: '' }).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(ApiError);
		expect(err).toMatchObject({ status: 422, code: 'validation_failed', field: 'name', message: 'must not be blank' });
	});

	it('signs in, stores the session and sends the bearer token', async () => {
		const store = memory();
		const { f, calls } = fakeFetch((c) => (c.url.endsWith('/login') ? json(200, tokens(1)) : json(200, { ok: true })));
		const c = new ApiClient(store, f);
		await c.signIn('login', 'a@example.com', 'pw');
		expect(store.value?.refreshToken).toBe('refresh-1');
		await c.get('/api/v1/auth/me');
		expect(calls[0]?.auth).toBeNull();
		expect(calls[1]?.auth).toBe('Bearer access-1');
	});

	it('refreshes once on 401 and retries with the new token', async () => {
		const store = memory({ accessToken: 'old', accessExpiresAt: Date.now() + 600_000, refreshToken: 'r0', user });
		const { f, calls } = fakeFetch((c) => {
			if (c.url.endsWith('/refresh')) return json(200, tokens(2));
			return c.auth === 'Bearer access-2' ? json(200, { items: [] }) : json(401, { error: { code: 'unauthorized', message: 'expired' } });
		});
		const c = new ApiClient(store, f);
		await expect(c.get('/api/v1/tasks')).resolves.toEqual({ items: [] });
		expect(calls.map((x) => x.url)).toEqual(['/api/v1/tasks', '/api/v1/auth/refresh', '/api/v1/tasks']);
		expect(JSON.parse(calls[1]?.body ?? '{}')).toEqual({ refresh_token: 'r0' });
		expect(store.value?.refreshToken).toBe('refresh-2');
	});

	it('refreshes before sending when the access token is about to expire, once for concurrent requests', async () => {
		const store = memory({ accessToken: 'old', accessExpiresAt: Date.now() + 1000, refreshToken: 'r0', user });
		const { f, calls } = fakeFetch((c) => (c.url.endsWith('/refresh') ? json(200, tokens(3)) : json(200, {})));
		const c = new ApiClient(store, f);
		await Promise.all([c.get('/a'), c.get('/b'), c.get('/c')]);
		expect(calls.filter((x) => x.url.endsWith('/refresh'))).toHaveLength(1);
		expect(calls.filter((x) => !x.url.endsWith('/refresh')).every((x) => x.auth === 'Bearer access-3')).toBe(true);
	});

	it('signs out locally when the refresh token is rejected', async () => {
		const store = memory({ accessToken: 'old', accessExpiresAt: Date.now() + 600_000, refreshToken: 'r0', user });
		const { f } = fakeFetch((c) =>
			c.url.endsWith('/refresh')
				? json(401, { error: { code: 'refresh_token_reused', message: 'reused' } })
				: json(401, { error: { code: 'unauthorized', message: 'expired' } })
		);
		const c = new ApiClient(store, f);
		const seen: (StoredSession | null)[] = [];
		c.onChange((s) => seen.push(s));
		await expect(c.get('/api/v1/tasks')).rejects.toMatchObject({ status: 401 });
		expect(store.value).toBeNull();
		expect(c.user).toBeNull();
		expect(seen).toEqual([null]);
	});

	it('sign out revokes the refresh token on the server and forgets it', async () => {
		const store = memory({ accessToken: 'a', accessExpiresAt: Date.now() + 600_000, refreshToken: 'r9', user });
		const { f, calls } = fakeFetch(() => new Response(null, { status: 204 }));
		const c = new ApiClient(store, f);
		await c.signOut();
		expect(calls[0]?.url).toBe('/api/v1/auth/logout');
		expect(JSON.parse(calls[0]?.body ?? '{}')).toEqual({ refresh_token: 'r9' });
		expect(store.value).toBeNull();
	});
});
