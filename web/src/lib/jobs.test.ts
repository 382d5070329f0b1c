import { describe, expect, it } from 'vitest';
import { JobEventModel, artifactFileName, bytesToBase64, linesFor, secretsObject, stepTone, timeline } from './jobs';

let seq = 0;
function ev(stream: string, step: string | null, data: string, encoding: 'utf8' | 'base64' = 'utf8') {
	return JSON.stringify({ seq: ++seq, attempt: 1, step, stream, data, encoding, created_at: '2026-11-26T00:00:00Z' });
}

describe('JobEventModel', () => {
	it('tracks the job status, step states and per-step output', () => {
		const m = new JobEventModel();
		expect(m.apply('status', ev('status', null, '{"status":"running","attempt":1}'))).toBe(true);
		m.apply('status', ev('status', 'a', '{"state":"running","exit_code":null,"detail":null}'));
		m.apply('stdout', ev('stdout', 'a', 'hello-'));
		m.apply('stdout', ev('stdout', 'a', 'from-a\n'));
		m.apply('stderr', ev('stderr', 'a', 'warn\n'));
		m.apply('phase', ev('phase', null, 'post_execution'));
		m.apply('status', ev('status', 'a', '{"state":"succeeded","exit_code":0,"detail":null}'));
		m.apply('status', ev('status', 'b', '{"state":"skipped","exit_code":null,"detail":"dependency a failed"}'));
		m.apply('status', ev('status', null, '{"status":"succeeded","attempt":1}'));
		expect(m.status).toBe('succeeded');
		expect(m.steps.get('a')).toEqual({ state: 'succeeded', exit_code: 0, detail: null });
		expect(m.steps.get('b')?.detail).toBe('dependency a failed');
		// Consecutive chunks of one step and stream are merged; stderr and phases stay apart.
		expect(m.lines.map((l) => [l.step, l.stream, l.text])).toEqual([
			['a', 'stdout', 'hello-from-a\n'],
			['a', 'stderr', 'warn\n'],
			[null, 'phase', 'post_execution']
		]);
		expect(linesFor(m.lines, 'a')).toHaveLength(2);
		expect(linesFor(m.lines, 'b')).toHaveLength(0);
		expect(linesFor(m.lines, null)).toHaveLength(3);
	});

	it('decodes base64 output with a character split across events, and drops replays', () => {
		const m = new JobEventModel();
		const bytes = new TextEncoder().encode('é!');
		m.apply('stdout', ev('stdout', 'a', bytesToBase64(bytes.subarray(0, 1)), 'base64'));
		const again = ev('stdout', 'a', bytesToBase64(bytes.subarray(1)), 'base64');
		expect(m.apply('stdout', again)).toBe(true);
		expect(m.apply('stdout', again)).toBe(false); // same seq after a reconnect
		expect(m.lines[0]?.text).toBe('é!');
		expect(m.apply('stdout', 'not json')).toBe(false);
	});
});

describe('timeline', () => {
	const at = (s: number) => new Date(Date.UTC(2026, 10, 26, 0, 0, s)).toISOString();

	it('places bars relative to the job start and end', () => {
		const { bars, spanMs } = timeline(
			[
				{ name: 'a', started_at: at(0), finished_at: at(5) },
				{ name: 'b', started_at: at(5), finished_at: at(10) },
				{ name: 'c', started_at: null, finished_at: null }
			],
			at(0),
			at(10)
		);
		expect(spanMs).toBe(10_000);
		expect(bars[0]).toEqual({ name: 'a', left: 0, width: 50, ms: 5000 });
		expect(bars[1]).toEqual({ name: 'b', left: 50, width: 50, ms: 5000 });
		expect(bars[2]).toEqual({ name: 'c', left: 0, width: 0, ms: null });
	});

	it('keeps a quick step visible and runs a running step up to now', () => {
		const now = Date.parse(at(20));
		const { bars } = timeline(
			[
				{ name: 'quick', started_at: at(0), finished_at: at(0) },
				{ name: 'long', started_at: at(10), finished_at: null }
			],
			at(0),
			null,
			now
		);
		expect(bars[0]?.width).toBeGreaterThan(0);
		expect(bars[1]).toEqual({ name: 'long', left: 50, width: 50, ms: 10_000 });
	});
});

describe('form helpers', () => {
	it('maps states to tones', () => {
		expect(stepTone('succeeded')).toBe('ok');
		expect(stepTone('timed_out')).toBe('bad');
		expect(stepTone('running')).toBe('run');
		expect(stepTone('skipped')).toBe('skip');
		expect(stepTone('pending')).toBe('idle');
	});

	it('builds the secrets object and base64', () => {
		expect(secretsObject([{ name: ' TOKEN ', value: 'v' }, { name: '', value: 'x' }])).toEqual({ TOKEN: 'v' });
		expect(secretsObject([])).toBeNull();
		expect(bytesToBase64(new TextEncoder().encode('hello'))).toBe('aGVsbG8=');
		const big = new Uint8Array(100_000).fill(65);
		expect(atob(bytesToBase64(big))).toHaveLength(100_000);
		expect(artifactFileName('artifacts/dir/x.txt')).toBe('x.txt');
	});
});
