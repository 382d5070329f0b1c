// The state of a cursor-paginated list page (tasks, jobs, workflows): the current page's
// items, the cursors back to the first page, a busy flag and the last error. Only the newest
// load may change the state, so a slow answer to an earlier filter cannot overwrite a later
// one. Optionally looks again while the listed items are still changing (running workflows).
import { noErrors, toFormErrors, type FormErrors } from './errors';

/** One page as the list endpoints answer it. */
export interface Page<T> {
	items: T[];
	next_cursor?: string | null;
}

/** How a `PagedList` fetches, and whether it keeps looking. */
export interface PagedListOptions<T> {
	/** Fetches the page that starts at `cursor` (`null`: the first page). */
	fetch: (cursor: string | null) => Promise<Page<T>>;
	/** Filter fields an error may name (`toFormErrors`); others become a form error. */
	errorFields?: readonly string[];
	/** While this holds for the listed items, the page is loaded again every `refreshMs` (only while the document is visible). */
	refreshWhile?: (items: T[]) => boolean;
	/** The refresh interval, 2 s unless given. */
	refreshMs?: number;
}

/** What the pager needs from a list. */
export interface Paging {
	/** 1-based number of the page shown. */
	readonly page: number;
	readonly hasPrevious: boolean;
	readonly hasNext: boolean;
	readonly loading: boolean;
	next(): void;
	prev(): void;
}

/** A cursor-paginated list whose fields are reactive (Svelte runes). */
export class PagedList<T> implements Paging {
	items = $state<T[]>([]);
	/** Cursor of the next page, `null` on the last one. */
	nextCursor = $state<string | null>(null);
	/** Cursors of the pages before the current one (`null` = the first page). */
	previous = $state<(string | null)[]>([]);
	/** Cursor of the current page (`null` = the first page). */
	cursor: string | null = null;
	loading = $state(true);
	errors = $state<FormErrors>(noErrors());
	#opts: PagedListOptions<T>;
	#seq = 0;
	#timer: ReturnType<typeof setTimeout> | undefined;

	constructor(opts: PagedListOptions<T>) {
		this.#opts = opts;
	}

	get page(): number {
		return this.previous.length + 1;
	}
	get hasPrevious(): boolean {
		return this.previous.length > 0;
	}
	get hasNext(): boolean {
		return this.nextCursor !== null;
	}

	/** Loads the current page; `quiet` for a background refresh (no busy state). */
	async load(quiet = false): Promise<void> {
		const mine = ++this.#seq;
		clearTimeout(this.#timer);
		if (!quiet) this.loading = true;
		try {
			const res = await this.#opts.fetch(this.cursor);
			if (mine !== this.#seq) return;
			this.items = res.items;
			this.nextCursor = res.next_cursor ?? null;
			this.errors = noErrors();
			if (this.#opts.refreshWhile?.(this.items)) {
				this.#timer = setTimeout(() => !document.hidden && this.load(true), this.#opts.refreshMs ?? 2000);
			}
		} catch (err) {
			if (mine !== this.#seq) return;
			this.errors = toFormErrors(err, this.#opts.errorFields ?? []);
		} finally {
			if (mine === this.#seq) this.loading = false;
		}
	}

	/** Back to the first page and load it (after a filter changed). */
	reset(): Promise<void> {
		this.cursor = null;
		this.previous = [];
		return this.load();
	}

	/** Loads the next page, if there is one. */
	next(): void {
		if (!this.nextCursor) return;
		this.previous = [...this.previous, this.cursor];
		this.cursor = this.nextCursor;
		void this.load();
	}

	/** Loads the previous page (the first one when there is none). */
	prev(): void {
		const p = [...this.previous];
		this.cursor = p.pop() ?? null;
		this.previous = p;
		void this.load();
	}

	/**
	 * Loads the first page and, with `refreshWhile`, looks again when the tab becomes visible.
	 * Answers the cleanup for `onMount`: later answers are ignored and the refresh stops.
	 */
	start(): () => void {
		void this.load();
		const visible = () => !document.hidden && this.#opts.refreshWhile?.(this.items) && this.load(true);
		if (this.#opts.refreshWhile) document.addEventListener('visibilitychange', visible);
		return () => {
			this.#seq++;
			clearTimeout(this.#timer);
			document.removeEventListener('visibilitychange', visible);
		};
	}
}

/** `url` with the given search parameters set, or removed where the value is empty. */
export function withSearchParams(url: URL, params: Record<string, string>): URL {
	const next = new URL(url);
	for (const [k, v] of Object.entries(params)) {
		if (v) next.searchParams.set(k, v);
		else next.searchParams.delete(k);
	}
	return next;
}
