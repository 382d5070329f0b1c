// @vitest-environment node
import { describe, expect, it } from 'vitest';
import { follow, SseParser, type SseEvent } from './sse';

describe('SseParser', () => {
	it('parses events split anywhere, with ids, comments and multi-line data', () => {
		const p = new SseParser();
		const text = ': keep-alive\n\nid: 1\nevent: status\ndata: {"status":"queued"}\n\nid: 2\r\nevent: stdout\r\ndata: a\r\ndata: b\r\n\r\n';
		const out: SseEvent[] = [];
		for (const ch of text) out.push(...p.push(ch));
		expect(out).toEqual([
			{ id: '1', event: 'status', data: '{"status":"queued"}' },
			{ id: '2', event: 'stdout', data: 'a\nb' }
		]);
	});

	it('defaults the event name to message and keeps the last id', () => {
		const p = new SseParser();
		expect(p.push('id: 7\ndata: x\n\ndata:y\n\n')).toEqual([
			{ id: '7', event: 'message', data: 'x' },
			{ id: '7', event: 'message', data: 'y' }
		]);
	});
});

function streamOf(text: string): Response {
	return new Response(new Blob([text]).stream(), { status: 200, headers: { 'content-type': 'text/event-stream' } });
}

describe('follow', () => {
	it('reconnects after a dropped connection with the last event id, until done', async () => {
		const opened: (string | null)[] = [];
		const events: string[] = [];
		let done = false;
		const ctl = new AbortController();
		await follow({
			signal: ctl.signal,
			backoff: () => 0,
			open: async (last) => {
				opened.push(last);
				return opened.length === 1
					? streamOf('id: 1\nevent: status\ndata: {}\n\nid: 2\nevent: stdout\ndata: {}\n\n')
					: streamOf('id: 3\nevent: status\ndata: {"final":true}\n\n');
			},
			onEvent: (ev) => {
				events.push(`${ev.id}:${ev.event}`);
				if (ev.data.includes('final')) done = true;
			},
			isDone: () => done
		});
		expect(opened).toEqual([null, '2']);
		expect(events).toEqual(['1:status', '2:stdout', '3:status']);
	});

	it('stops on a 4xx answer without retrying', async () => {
		let opens = 0;
		let fatal = 0;
		await follow({
			signal: new AbortController().signal,
			backoff: () => 0,
			open: async () => {
				opens++;
				return new Response('{}', { status: 404 });
			},
			onEvent: () => {},
			onFatal: () => fatal++,
			isDone: () => false
		});
		expect([opens, fatal]).toEqual([1, 1]);
	});
});
