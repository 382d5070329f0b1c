// Display helpers: sizes, durations, verdicts, times. Pure, unit-tested.
import type { Verdict } from './api/types';

/** 1536 → "1.5 KiB". */
export function formatBytes(n: number | null | undefined): string {
	if (n === null || n === undefined) return '–';
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let v = n;
	let u = 0;
	while (v >= 1024 && u < units.length - 1) {
		v /= 1024;
		u++;
	}
	return u === 0 ? `${v} B` : `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** 1234 → "1.23 s", 45 → "45 ms". */
export function formatMs(ms: number | null | undefined): string {
	if (ms === null || ms === undefined) return '–';
	if (ms < 1000) return `${ms} ms`;
	if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
	const m = Math.floor(ms / 60_000);
	const s = Math.round((ms % 60_000) / 1000);
	return s === 0 ? `${m} min` : `${m} min ${s} s`;
}

const SIGNALS: Record<number, string> = {
	1: 'SIGHUP',
	2: 'SIGINT',
	6: 'SIGABRT',
	9: 'SIGKILL',
	11: 'SIGSEGV',
	13: 'SIGPIPE',
	15: 'SIGTERM'
};

/** A verdict in words, e.g. "Exited with code 0", "Memory limit exceeded". */
export function verdictLabel(v: Verdict | null | undefined): string {
	if (!v) return 'No verdict yet';
	switch (v.kind) {
		case 'exited':
			return `Exited with code ${v.code}`;
		case 'signaled':
			return `Killed by signal ${v.signal}${SIGNALS[v.signal] ? ` (${SIGNALS[v.signal]})` : ''}`;
		case 'timeout':
			return 'Time limit exceeded';
		case 'cpu_limit':
			return 'CPU time limit exceeded';
		case 'memory_limit':
			return 'Memory limit exceeded';
		case 'output_limit':
			return 'Output limit exceeded';
		case 'cancelled':
			return 'Cancelled';
		case 'compile_error':
			return `Compilation failed (code ${v.code})`;
		case 'sandbox_error':
			return 'Sandbox error';
		default:
			return 'Unknown verdict';
	}
}

/** Whether a verdict is a success (exit code 0). */
export function verdictOk(v: Verdict | null | undefined): boolean {
	return !!v && v.kind === 'exited' && v.code === 0;
}

/** "3 min ago"-style relative time, falling back to a date. */
export function formatRelative(iso: string | null | undefined, now = Date.now()): string {
	if (!iso) return '–';
	const t = Date.parse(iso);
	if (Number.isNaN(t)) return iso;
	const s = Math.round((now - t) / 1000);
	if (s < 5) return 'just now';
	if (s < 60) return `${s} s ago`;
	if (s < 3600) return `${Math.floor(s / 60)} min ago`;
	if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
	return new Date(t).toISOString().slice(0, 10);
}
