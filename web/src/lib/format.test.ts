import { describe, expect, it } from 'vitest';
import { formatBytes, formatMs, formatRelative, verdictLabel, verdictOk } from './format';

describe('format', () => {
	it('formats sizes', () => {
		expect(formatBytes(null)).toBe('–');
		expect(formatBytes(512)).toBe('512 B');
		expect(formatBytes(1536)).toBe('1.5 KiB');
		expect(formatBytes(256 * 1024 * 1024)).toBe('256 MiB');
	});
	it('formats durations', () => {
		expect(formatMs(45)).toBe('45 ms');
		expect(formatMs(1234)).toBe('1.23 s');
		expect(formatMs(12_300)).toBe('12.3 s');
		expect(formatMs(125_000)).toBe('2 min 5 s');
		expect(formatMs(60_000)).toBe('1 min');
	});
	it('describes verdicts', () => {
		expect(verdictLabel({ kind: 'exited', code: 0 })).toBe('Exited with code 0');
		expect(verdictLabel({ kind: 'signaled', signal: 9 })).toBe('Killed by signal 9 (SIGKILL)');
		expect(verdictLabel({ kind: 'memory_limit' })).toBe('Memory limit exceeded');
		expect(verdictLabel(null)).toBe('No verdict yet');
		expect(verdictOk({ kind: 'exited', code: 0 })).toBe(true);
		expect(verdictOk({ kind: 'exited', code: 1 })).toBe(false);
		expect(verdictOk({ kind: 'timeout' })).toBe(false);
	});
	it('formats relative times', () => {
		const now = Date.parse('2026-11-26T12:00:00Z');
		expect(formatRelative('2026-11-26T11:59:58Z', now)).toBe('just now');
		expect(formatRelative('2026-11-26T11:55:00Z', now)).toBe('5 min ago');
		expect(formatRelative('2026-11-20T11:55:00Z', now)).toBe('2026-11-20');
	});
});
