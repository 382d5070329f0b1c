// Sends stdin to an interactive execution over its WebSocket (`/api/v1/executions/{id}/ws`).
// Events are read from the SSE stream; this socket only carries input and its acks.
import type { ApiClient } from './client';

export interface InputSocketOptions {
	api: ApiClient;
	executionId: string;
	/** Called with the server's refusal (`{"type":"error"}`) message. */
	onError: (message: string) => void;
	/** For tests: the WebSocket constructor. */
	WebSocketImpl?: typeof WebSocket;
}

/** Builds the ws:// or wss:// URL of an execution's socket on this origin. */
export function socketUrl(origin: string, executionId: string, token: string | null): string {
	const u = new URL(`/api/v1/executions/${executionId}/ws`, origin);
	u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
	// Browsers cannot set headers on a WebSocket: this route alone accepts the token in the
	// query (the server never logs queries). The socket's events are ignored: the page
	// follows the SSE stream.
	if (token) u.searchParams.set('access_token', token);
	return u.toString();
}

export class InputSocket {
	private socket: WebSocket | null = null;
	private opening: Promise<WebSocket> | null = null;

	constructor(private readonly opts: InputSocketOptions) {}

	private async open(): Promise<WebSocket> {
		if (this.socket && this.socket.readyState === 1) return this.socket;
		if (!this.opening) {
			this.opening = (async () => {
				const token = await this.opts.api.accessToken();
				const Impl = this.opts.WebSocketImpl ?? WebSocket;
				const ws = new Impl(socketUrl(location.origin, this.opts.executionId, token));
				await new Promise<void>((ok, fail) => {
					ws.onopen = () => ok();
					ws.onerror = () => fail(new Error('could not connect to send input'));
				});
				ws.onmessage = (m) => {
					try {
						const msg = JSON.parse(String(m.data)) as { type: string; message?: string };
						if (msg.type === 'error') this.opts.onError(msg.message ?? 'input refused');
					} catch {
						// binary or malformed frames carry nothing for us
					}
				};
				ws.onclose = () => {
					if (this.socket === ws) this.socket = null;
				};
				this.socket = ws;
				return ws;
			})().finally(() => {
				this.opening = null;
			});
		}
		return this.opening;
	}

	/** Appends text to the program's stdin. */
	async send(data: string): Promise<void> {
		(await this.open()).send(JSON.stringify({ type: 'stdin', data }));
	}

	/** Closes the program's stdin. */
	async eof(): Promise<void> {
		(await this.open()).send(JSON.stringify({ type: 'eof' }));
	}

	close() {
		this.socket?.close();
		this.socket = null;
	}
}
