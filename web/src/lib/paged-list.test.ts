import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from './api/client';
import { PagedList, withSearchParams, type Page } from './paged-list.svelte';

/** A fetch whose answers the test gives, one pending request at a time per call. */
function controlled<T>() {
	const calls: { cursor: string | null; answer: (p: Page<T>) => void; fail: (e: unknown) => void }[] = [];
	const fetch = (cursor: string | null) =>
		new Promise<Page<T>>((answer, fail) => {
			calls.push({ cursor, answer, fail });
		});
	return { calls, fetch };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

afterEach(() => {
	vi.useRealTimers();
	Object.defineProperty(document, 'hidden', { configurable: true, value: false });
});

describe('PagedList', () => {
	it('walks forward and back through the pages by cursor', async () => {
		const pages: Record<string, Page<number>> = {
			first: { items: [1, 2], next_cursor: 'c2' },
			c2: { items: [3, 4], next_cursor: 'c3' },
			c3: { items: [5], next_cursor: null }
		};
		const seen: (string | null)[] = [];
		const list = new PagedList<number>({
			fetch: async (cursor) => {
				seen.push(cursor);
				return pages[cursor ?? 'first'] ?? { items: [] };
			}
		});
		expect(list.loading).toBe(true);
		await list.load();
		expect([list.items, list.page, list.hasPrevious, list.hasNext, list.loading]).toEqual([[1, 2], 1, false, true, false]);
		list.next();
		await flush();
		list.next();
		await flush();
		expect([list.items, list.page, list.hasNext]).toEqual([[5], 3, false]);
		list.next(); // on the last page: nothing to load
		await flush();
		list.prev();
		await flush();
		expect([list.items, list.page]).toEqual([[3, 4], 2]);
		list.prev();
		await flush();
		expect([list.items, list.page, list.hasPrevious]).toEqual([[1, 2], 1, false]);
		expect(seen).toEqual([null, 'c2', 'c3', 'c2', null]);
	});

	it('goes back to the first page on reset', async () => {
		const list = new PagedList<string>({ fetch: async (cursor) => ({ items: [cursor ?? 'first'], next_cursor: 'next' }) });
		await list.load();
		list.next();
		await flush();
		expect([list.items, list.page]).toEqual([['next'], 2]);
		await list.reset();
		expect([list.items, list.page, list.cursor]).toEqual([['first'], 1, null]);
	});

	it('keeps only the newest answer when an earlier one arrives late', async () => {
		const { calls, fetch } = controlled<string>();
		const list = new PagedList<string>({ fetch });
		const slow = list.load();
		const fast = list.reset();
		calls[1]?.answer({ items: ['new filter'] });
		await fast;
		calls[0]?.answer({ items: ['old filter'], next_cursor: 'x' });
		await slow;
		expect([list.items, list.hasNext, list.loading]).toEqual([['new filter'], false, false]);
	});

	it('shows an error under its filter field or above the list, and clears it on success', async () => {
		let fail: unknown = new ApiError(400, 'validation_failed', 'too long', 'q');
		const list = new PagedList<number>({
			fetch: async () => {
				if (fail) throw fail;
				return { items: [1] };
			},
			errorFields: ['q']
		});
		await list.load();
		expect(list.errors).toEqual({ fields: { q: 'too long' }, form: null });
		expect(list.loading).toBe(false);
		fail = new ApiError(500, 'internal', 'boom');
		await list.load();
		expect(list.errors).toEqual({ fields: {}, form: 'boom' });
		fail = null;
		await list.load();
		expect([list.errors, list.items]).toEqual([{ fields: {}, form: null }, [1]]);
	});

	it('looks again quietly while refreshWhile holds, only while the tab is visible, until stopped', async () => {
		vi.useFakeTimers();
		const answers = [['running'], ['running'], ['running'], ['done']];
		let loads = 0;
		const busy: boolean[] = [];
		const list = new PagedList<string>({
			fetch: async () => {
				busy.push(list.loading);
				return { items: answers[loads++] ?? ['done'] };
			},
			refreshWhile: (items) => items.includes('running'),
			refreshMs: 1000
		});
		const stop = list.start();
		await vi.advanceTimersByTimeAsync(0);
		expect(loads).toBe(1);
		await vi.advanceTimersByTimeAsync(999);
		expect(loads).toBe(1);
		await vi.advanceTimersByTimeAsync(1);
		expect(loads).toBe(2);
		// Hidden: the timer fires but nothing loads; becoming visible loads at once.
		Object.defineProperty(document, 'hidden', { configurable: true, value: true });
		await vi.advanceTimersByTimeAsync(5000);
		expect(loads).toBe(2);
		Object.defineProperty(document, 'hidden', { configurable: true, value: false });
		document.dispatchEvent(new Event('visibilitychange'));
		await vi.advanceTimersByTimeAsync(0);
		expect(loads).toBe(3);
		await vi.advanceTimersByTimeAsync(1000);
		expect([loads, list.items]).toEqual([4, ['done']]);
		// Nothing runs any more: no further refresh.
		await vi.advanceTimersByTimeAsync(10_000);
		expect(loads).toBe(4);
		// The first load shows the busy state, the refreshes do not.
		expect(busy).toEqual([true, false, false, false]);
		stop();
		document.dispatchEvent(new Event('visibilitychange'));
		await vi.advanceTimersByTimeAsync(10_000);
		expect(loads).toBe(4);
	});

	it('ignores an answer that arrives after stop, and stops the refresh timer', async () => {
		vi.useFakeTimers();
		const { calls, fetch } = controlled<string>();
		const list = new PagedList<string>({ fetch, refreshWhile: () => true, refreshMs: 1000 });
		const stop = list.start();
		calls[0]?.answer({ items: ['a'] });
		await vi.advanceTimersByTimeAsync(1000);
		expect(calls.length).toBe(2);
		stop();
		calls[1]?.answer({ items: ['late'] });
		await vi.advanceTimersByTimeAsync(10_000);
		expect([calls.length, list.items]).toEqual([2, ['a']]);
	});

	it('does not listen for visibility without refreshWhile', async () => {
		let loads = 0;
		const list = new PagedList<number>({ fetch: async () => (loads++, { items: [] }) });
		const stop = list.start();
		await flush();
		document.dispatchEvent(new Event('visibilitychange'));
		await flush();
		expect(loads).toBe(1);
		stop();
	});
});

describe('withSearchParams', () => {
	it('sets non-empty values, removes empty ones and keeps the rest of the URL', () => {
		const url = new URL('http://x/jobs?new&status=failed&page=2#top');
		const next = withSearchParams(url, { status: '', q: 'hello world' });
		expect(next.href).toBe('http://x/jobs?new=&page=2&q=hello+world#top');
		expect(url.searchParams.get('status')).toBe('failed');
	});
});
