// Server-Sent Events over `fetch`, so the request carries the Authorization header (the
// browser's EventSource cannot). Resumes after the last event id on reconnect.

/** One parsed event. */
export interface SseEvent {
	id: string | null;
	event: string;
	data: string;
}

/** Incremental SSE parser (text/event-stream framing): feed it text, get whole events. */
export class SseParser {
	private buffer = '';
	private id: string | null = null;
	private event = '';
	private data: string[] = [];

	/** Adds received text; returns the events it completed. */
	push(chunk: string): SseEvent[] {
		this.buffer += chunk;
		const out: SseEvent[] = [];
		for (;;) {
			const nl = this.buffer.search(/\r\n|\r|\n/);
			if (nl < 0) break;
			// A trailing CR may be the first half of CRLF: wait for the next character.
			if (this.buffer[nl] === '\r' && nl === this.buffer.length - 1) break;
			const line = this.buffer.slice(0, nl);
			const width = this.buffer.startsWith('\r\n', nl) ? 2 : 1;
			this.buffer = this.buffer.slice(nl + width);
			const ev = this.line(line);
			if (ev) out.push(ev);
		}
		return out;
	}

	private line(line: string): SseEvent | null {
		if (line === '') {
			if (this.data.length === 0) {
				this.event = '';
				return null;
			}
			const ev = { id: this.id, event: this.event || 'message', data: this.data.join('\n') };
			this.event = '';
			this.data = [];
			return ev;
		}
		if (line.startsWith(':')) return null; // comment / keep-alive
		const colon = line.indexOf(':');
		const field = colon < 0 ? line : line.slice(0, colon);
		let value = colon < 0 ? '' : line.slice(colon + 1);
		if (value.startsWith(' ')) value = value.slice(1);
		if (field === 'data') this.data.push(value);
		else if (field === 'event') this.event = value;
		else if (field === 'id' && !value.includes('\0')) this.id = value;
		return null;
	}
}

export interface StreamOptions {
	/** Opens the stream; the header carries the last id seen so the server resumes after it. */
	open: (lastEventId: string | null, signal: AbortSignal) => Promise<Response>;
	onEvent: (ev: SseEvent) => void;
	/** Called with true when connected, false while reconnecting. */
	onConnection?: (connected: boolean) => void;
	/** Whether the stream is complete (then a closed connection is not reopened). */
	isDone: () => boolean;
	signal: AbortSignal;
	/** Delays between reconnects, in ms (default 500 ms doubling up to 8 s). */
	backoff?: (attempt: number) => number;
	/** Called when the server refuses the stream (4xx): no retry. */
	onFatal?: (res: Response) => void;
}

const defaultBackoff = (n: number) => Math.min(8000, 500 * 2 ** n);

function sleep(ms: number, signal: AbortSignal): Promise<void> {
	return new Promise((resolve) => {
		const t = setTimeout(resolve, ms);
		signal.addEventListener('abort', () => {
			clearTimeout(t);
			resolve();
		});
	});
}

/** Follows a stream until `isDone()` or abort, reconnecting with the last event id. */
export async function follow(opts: StreamOptions): Promise<void> {
	let lastId: string | null = null;
	let failures = 0;
	const backoff = opts.backoff ?? defaultBackoff;
	while (!opts.signal.aborted && !opts.isDone()) {
		try {
			const res = await opts.open(lastId, opts.signal);
			if (res.status >= 400 && res.status < 500) {
				opts.onFatal?.(res);
				return;
			}
			if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
			opts.onConnection?.(true);
			failures = 0;
			const parser = new SseParser();
			const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
			for (;;) {
				const { value, done } = await reader.read();
				if (done) break;
				for (const ev of parser.push(value)) {
					if (ev.id !== null) lastId = ev.id;
					opts.onEvent(ev);
				}
			}
		} catch {
			if (opts.signal.aborted) return;
		}
		if (opts.signal.aborted || opts.isDone()) return;
		opts.onConnection?.(false);
		await sleep(backoff(failures++), opts.signal);
	}
}
