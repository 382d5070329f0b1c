// The one HTTP client of the UI: JSON in and out, the API's error envelope as `ApiError`, and
// sessions (access + refresh token) refreshed transparently: shortly before the access token
// expires, and once more when a request still answers 401.
import type { ErrorBody, Problem, TokenResponse, User } from './types';

/** An answer from the API that is not a success, carrying the error envelope. */
export class ApiError extends Error {
	readonly status: number;
	readonly code: string;
	readonly field: string | null;
	/** Every problem at once, each with its path (a job definition's `422 validation_failed`). */
	readonly problems: Problem[];

	constructor(
		status: number,
		code: string,
		message: string,
		field: string | null = null,
		problems: Problem[] = []
	) {
		super(message);
		this.name = 'ApiError';
		this.status = status;
		this.code = code;
		this.field = field;
		this.problems = problems;
	}
}

/** What the client remembers between page loads. */
export interface StoredSession {
	accessToken: string;
	/** Epoch milliseconds after which the access token must not be used. */
	accessExpiresAt: number;
	refreshToken: string;
	user: User;
}

/** Where the session is kept (localStorage in the browser, a map in tests). */
export interface SessionStorage {
	load(): StoredSession | null;
	save(session: StoredSession | null): void;
}

const STORAGE_KEY = 'voidrunner.session';

/** localStorage-backed session storage. */
export const browserStorage: SessionStorage = {
	load() {
		try {
			const raw = localStorage.getItem(STORAGE_KEY);
			return raw ? (JSON.parse(raw) as StoredSession) : null;
		} catch {
			return null;
		}
	},
	save(session) {
		if (session) localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
		else localStorage.removeItem(STORAGE_KEY);
	}
};

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
	query?: Query;
	body?: unknown;
	/** Send the access token (default true). */
	auth?: boolean;
	signal?: AbortSignal;
}

/** Refresh this long before the access token's stated expiry. */
const REFRESH_MARGIN_MS = 30_000;

/** Builds `path?query`, leaving out empty values. */
export function withQuery(path: string, query?: Query): string {
	if (!query) return path;
	const params = new URLSearchParams();
	for (const [k, v] of Object.entries(query)) {
		if (v === undefined || v === null || v === '') continue;
		params.set(k, String(v));
	}
	const qs = params.toString();
	return qs ? `${path}?${qs}` : path;
}

async function toApiError(res: Response): Promise<ApiError> {
	let body: ErrorBody | null = null;
	try {
		body = (await res.json()) as ErrorBody;
	} catch {
		body = null;
	}
	const e = body?.error;
	if (e && typeof e.code === 'string') {
		return new ApiError(res.status, e.code, e.message, e.field ?? null, e.problems ?? []);
	}
	return new ApiError(res.status, 'http_' + res.status, res.statusText || 'request failed');
}

export class ApiClient {
	private session: StoredSession | null;
	private refreshing: Promise<boolean> | null = null;
	private listeners = new Set<(s: StoredSession | null) => void>();

	constructor(
		private readonly storage: SessionStorage,
		private readonly fetchImpl: typeof fetch = (...args) => fetch(...args),
		private readonly now: () => number = () => Date.now()
	) {
		this.session = storage.load();
	}

	/** The signed-in user, or null. */
	get user(): User | null {
		return this.session?.user ?? null;
	}

	/** Called whenever the session changes (sign in, refresh, sign out, expiry). */
	onChange(listener: (s: StoredSession | null) => void): () => void {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}

	private setSession(session: StoredSession | null) {
		this.session = session;
		this.storage.save(session);
		for (const l of this.listeners) l(session);
	}

	/** Stores the tokens of a register/login/refresh answer. */
	adopt(tokens: TokenResponse) {
		this.setSession({
			accessToken: tokens.access_token,
			accessExpiresAt: this.now() + tokens.expires_in_secs * 1000,
			refreshToken: tokens.refresh_token,
			user: tokens.user
		});
	}

	/** Forgets the session locally (the server side is revoked by `logout`). */
	clear() {
		this.setSession(null);
	}

	/** Rotates the refresh token; concurrent callers share one request. */
	refresh(): Promise<boolean> {
		if (!this.refreshing) {
			this.refreshing = this.doRefresh().finally(() => {
				this.refreshing = null;
			});
		}
		return this.refreshing;
	}

	private async doRefresh(): Promise<boolean> {
		const refreshToken = this.session?.refreshToken;
		if (!refreshToken) return false;
		let res: Response;
		try {
			res = await this.fetchImpl('/api/v1/auth/refresh', {
				method: 'POST',
				headers: { 'content-type': 'application/json' },
				body: JSON.stringify({ refresh_token: refreshToken })
			});
		} catch {
			return false; // offline: keep the session, the next request retries
		}
		if (res.ok) {
			this.adopt((await res.json()) as TokenResponse);
			return true;
		}
		if (res.status === 401) this.clear();
		return false;
	}

	/** A valid access token (refreshed first when about to expire), or null when signed out. */
	async accessToken(): Promise<string | null> {
		if (!this.session) return null;
		if (this.now() >= this.session.accessExpiresAt - REFRESH_MARGIN_MS) {
			await this.refresh();
		}
		return this.session?.accessToken ?? null;
	}

	/** Sends a request and returns the raw response after auth handling (streams use it). */
	async raw(method: string, path: string, init: RequestInit = {}, auth = true): Promise<Response> {
		const send = async () => {
			const headers = new Headers(init.headers);
			if (auth) {
				const token = await this.accessToken();
				if (token) headers.set('authorization', `Bearer ${token}`);
			}
			return this.fetchImpl(path, { ...init, method, headers });
		};
		let res = await send();
		if (res.status === 401 && auth && this.session) {
			if (await this.refresh()) res = await send();
		}
		return res;
	}

	/** A JSON request; throws `ApiError` for any non-2xx answer. */
	async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
		const init: RequestInit = { signal: opts.signal };
		if (opts.body !== undefined) {
			init.body = JSON.stringify(opts.body);
			init.headers = { 'content-type': 'application/json' };
		}
		const res = await this.raw(method, withQuery(path, opts.query), init, opts.auth ?? true);
		if (!res.ok) throw await toApiError(res);
		if (res.status === 204) return undefined as T;
		const text = await res.text();
		return (text ? JSON.parse(text) : undefined) as T;
	}

	get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
		return this.request<T>('GET', path, { query, signal });
	}

	post<T>(path: string, body?: unknown, query?: Query): Promise<T> {
		return this.request<T>('POST', path, { body, query });
	}

	put<T>(path: string, body: unknown): Promise<T> {
		return this.request<T>('PUT', path, { body });
	}

	patch<T>(path: string, body: unknown): Promise<T> {
		return this.request<T>('PATCH', path, { body });
	}

	delete<T = void>(path: string): Promise<T> {
		return this.request<T>('DELETE', path);
	}

	/** Signs in (or up) and keeps the session. */
	async signIn(kind: 'login' | 'register', email: string, password: string): Promise<User> {
		const tokens = await this.request<TokenResponse>('POST', `/api/v1/auth/${kind}`, {
			body: { email, password },
			auth: false
		});
		this.adopt(tokens);
		return tokens.user;
	}

	/** Revokes the session on the server (best effort) and forgets it here. */
	async signOut(): Promise<void> {
		const refreshToken = this.session?.refreshToken;
		this.clear();
		if (!refreshToken) return;
		try {
			await this.request('POST', '/api/v1/auth/logout', {
				body: { refresh_token: refreshToken },
				auth: false
			});
		} catch {
			// The local session is gone either way; the refresh token expires on its own.
		}
	}
}
