// The job page's pure parts: folding the job's event stream into step states and log lines,
// laying the steps out on a timeline, and turning the submit form into a request. Tested.
import type { JobEvent, JobStep } from './api/types';
import type { Row } from './forms';

/** A step's state as the stream last announced it. */
export interface StepStatus {
	state: string;
	exit_code: number | null;
	detail: string | null;
}

/** One piece of output or one lifecycle phase, in stream order. */
export interface JobLine {
	seq: number;
	/** The step it belongs to; null for job-level output (hooks) and phases. */
	step: string | null;
	stream: 'stdout' | 'stderr' | 'phase';
	text: string;
}

function base64Bytes(s: string): Uint8Array {
	const bin = atob(s);
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

/** Applies the job stream's SSE events (`status`, `stdout`, `stderr`, `phase`) in order. */
export class JobEventModel {
	/** The job's status from its last job-level status event. */
	status: string | null = null;
	steps = new Map<string, StepStatus>();
	lines: JobLine[] = [];
	private lastSeq = 0;
	/** One streaming decoder per (step, stream): a UTF-8 character may span two events. */
	private decoders = new Map<string, TextDecoder>();

	/** Applies one SSE event; returns whether it changed anything. */
	apply(event: string, data: string): boolean {
		let ev: JobEvent;
		try {
			ev = JSON.parse(data) as JobEvent;
		} catch {
			return false;
		}
		if (typeof ev.seq !== 'number' || ev.seq <= this.lastSeq) return false;
		this.lastSeq = ev.seq;
		const step = ev.step ?? null;
		const stream = ev.stream || event;
		if (stream === 'status') {
			try {
				const d = JSON.parse(ev.data) as Partial<StepStatus> & { status?: string };
				if (step === null) {
					if (typeof d.status === 'string') this.status = d.status;
				} else if (typeof d.state === 'string') {
					this.steps.set(step, { state: d.state, exit_code: d.exit_code ?? null, detail: d.detail ?? null });
				}
			} catch {
				return false;
			}
			return true;
		}
		if (stream === 'phase') {
			this.lines.push({ seq: ev.seq, step, stream: 'phase', text: ev.data });
			return true;
		}
		if (stream !== 'stdout' && stream !== 'stderr') return false;
		let text = ev.data;
		if (ev.encoding === 'base64') {
			const key = `${step ?? ''}\u0000${stream}`;
			let dec = this.decoders.get(key);
			if (!dec) this.decoders.set(key, (dec = new TextDecoder()));
			text = dec.decode(base64Bytes(ev.data), { stream: true });
		}
		const last = this.lines.at(-1);
		if (last && last.step === step && last.stream === stream) last.text += text;
		else this.lines.push({ seq: ev.seq, step, stream, text });
		return true;
	}
}

/** The lines to show: all, or only one step's output. */
export function linesFor(lines: readonly JobLine[], step: string | null): JobLine[] {
	if (step === null) return [...lines];
	return lines.filter((l) => l.step === step);
}

/** How a step state looks: a tone (colour) for the badge and bar, always shown with text. */
export function stepTone(state: string): 'ok' | 'bad' | 'run' | 'idle' | 'skip' {
	switch (state) {
		case 'succeeded':
			return 'ok';
		case 'failed':
		case 'timed_out':
			return 'bad';
		case 'running':
			return 'run';
		case 'skipped':
		case 'cancelled':
			return 'skip';
		default:
			return 'idle';
	}
}

/** Where a step's bar sits on the timeline, in percent of the job's span. */
export interface Bar {
	name: string;
	/** Percent from the left (the job start). */
	left: number;
	/** Percent width; at least a sliver so a quick step stays visible. */
	width: number;
	/** Milliseconds the step ran (or has been running), null when it never started. */
	ms: number | null;
}

const MIN_WIDTH = 0.75;

/**
 * Lays the steps out on one time axis from the job's start to its end (or `now` while it
 * runs). A step that never started gets no bar (`ms` null, width 0).
 */
export function timeline(
	steps: readonly Pick<JobStep, 'name' | 'started_at' | 'finished_at'>[],
	jobStart: string | null | undefined,
	jobEnd: string | null | undefined,
	now = Date.now()
): { bars: Bar[]; spanMs: number } {
	const t = (s: string | null | undefined) => (s ? Date.parse(s) : NaN);
	const starts = steps.map((s) => t(s.started_at)).filter((v) => !Number.isNaN(v));
	let start = t(jobStart);
	if (Number.isNaN(start)) start = starts.length ? Math.min(...starts) : now;
	const ends = steps.map((s) => t(s.finished_at)).filter((v) => !Number.isNaN(v));
	let end = t(jobEnd);
	if (Number.isNaN(end)) end = Math.max(now, ...ends);
	const spanMs = Math.max(1, end - start);
	const bars = steps.map((s) => {
		const a = t(s.started_at);
		if (Number.isNaN(a)) return { name: s.name, left: 0, width: 0, ms: null };
		let b = t(s.finished_at);
		if (Number.isNaN(b)) b = Math.max(a, Math.min(now, end));
		const left = Math.min(100, Math.max(0, ((a - start) / spanMs) * 100));
		const width = Math.max(MIN_WIDTH, Math.min(100 - left, ((b - a) / spanMs) * 100));
		return { name: s.name, left, width, ms: b - a };
	});
	return { bars, spanMs };
}

/** Secret rows as the request's `secrets` object (blank rows ignored); null when none. */
export function secretsObject(rows: readonly Row[]): Record<string, string> | null {
	const out: Record<string, string> = {};
	for (const r of rows) {
		const name = r.name.trim();
		if (name) out[name] = r.value;
	}
	return Object.keys(out).length ? out : null;
}

/** Standard base64 of bytes (for `tarball_base64`), in chunks so big files do not overflow. */
export function bytesToBase64(bytes: Uint8Array): string {
	let bin = '';
	const CHUNK = 0x8000;
	for (let i = 0; i < bytes.length; i += CHUNK) {
		bin += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
	}
	return btoa(bin);
}

/** The artifact's file name: the last path segment. */
export function artifactFileName(path: string): string {
	return path.split('/').filter(Boolean).at(-1) ?? 'artifact';
}
