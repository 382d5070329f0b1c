import { describe, expect, it } from 'vitest';
import { LogModel } from './logs';

const chunk = (seq: number, stream: string, data: string, encoding = 'utf8') =>
	JSON.stringify({ seq, attempt: 1, stream, data, encoding, created_at: '2026-01-01T00:00:00Z' });

describe('LogModel', () => {
	it('merges adjacent chunks of a stream and keeps streams apart', () => {
		const m = new LogModel();
		m.apply('stdout', chunk(2, 'stdout', 'a'));
		m.apply('stdout', chunk(3, 'stdout', 'b\n'));
		m.apply('stderr', chunk(4, 'stderr', 'oops\n'));
		m.apply('stdout', chunk(5, 'stdout', 'c\n'));
		expect(m.segments).toEqual([
			{ stream: 'stdout', text: 'ab\n' },
			{ stream: 'stderr', text: 'oops\n' },
			{ stream: 'stdout', text: 'c\n' }
		]);
		expect(m.text('stdout')).toBe('ab\nc\n');
	});

	it('ignores replayed events (seq not above the last one)', () => {
		const m = new LogModel();
		expect(m.apply('stdout', chunk(2, 'stdout', 'x'))).toBe(true);
		expect(m.apply('stdout', chunk(2, 'stdout', 'x'))).toBe(false);
		expect(m.apply('stdout', chunk(1, 'stdout', 'x'))).toBe(false);
		expect(m.text('stdout')).toBe('x');
	});

	it('decodes base64 chunks, joining a character split across chunks', () => {
		const m = new LogModel();
		// "é" is 0xC3 0xA9: one byte per chunk.
		m.apply('stdout', chunk(1, 'stdout', btoa(String.fromCharCode(0xc3)), 'base64'));
		m.apply('stdout', chunk(2, 'stdout', btoa(String.fromCharCode(0xa9)) , 'base64'));
		expect(m.text('stdout')).toBe('é');
	});

	it('tracks the status summary and marks a retry', () => {
		const m = new LogModel();
		m.apply('status', JSON.stringify({ status: 'running', attempt: 1, seq: 1 }));
		m.apply('stdout', chunk(2, 'stdout', 'first\n'));
		m.apply('status', JSON.stringify({ status: 'queued', attempt: 1, seq: 3 }));
		m.apply('status', JSON.stringify({ status: 'running', attempt: 2, seq: 4 }));
		m.apply('status', JSON.stringify({ status: 'completed', attempt: 2, seq: 5, verdict: { kind: 'exited', code: 0 }, exit_code: 0 }));
		expect(m.status).toMatchObject({ status: 'completed', exit_code: 0 });
		expect(m.text('system')).toContain('attempt 2');
	});
});
