// The execution view's model of a live stream: output segments per stream (decoded as UTF-8
// across chunk boundaries) and the latest status summary. Pure; fed by SSE events.
import type { ExecutionStatus, Verdict } from './api/types';

export type Stream = 'stdout' | 'stderr' | 'compile' | 'system' | 'stdin';

export interface Segment {
	stream: Stream;
	text: string;
}

/** The `data` of a `status` event. */
export interface StatusSummary {
	status: ExecutionStatus;
	attempt: number;
	seq?: number;
	verdict?: Verdict | null;
	exit_code?: number | null;
	signal?: number | null;
	wall_time_ms?: number | null;
	cpu_time_ms?: number | null;
	peak_memory_bytes?: number | null;
	output_truncated?: boolean;
	last_error?: string | null;
}

interface ChunkData {
	seq: number;
	attempt: number;
	stream: string;
	data: string;
	encoding: 'utf8' | 'base64';
}

function base64Bytes(s: string): Uint8Array {
	const bin = atob(s);
	const out = new Uint8Array(bin.length);
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

export class LogModel {
	segments: Segment[] = [];
	status: StatusSummary | null = null;
	lastSeq = 0;
	private decoders = new Map<string, TextDecoder>();
	private attempt = 0;

	/** Applies one SSE event; returns false for events it ignores (duplicates, unknown). */
	apply(event: string, data: string): boolean {
		let parsed: unknown;
		try {
			parsed = JSON.parse(data);
		} catch {
			return false;
		}
		const seq = (parsed as { seq?: number }).seq;
		if (typeof seq === 'number') {
			if (seq <= this.lastSeq) return false; // already seen (replay overlap)
			this.lastSeq = seq;
		}
		if (event === 'status') {
			const s = parsed as StatusSummary;
			if (s.status === 'running' && s.attempt > 1 && s.attempt !== this.attempt) {
				this.append('system', `\n— attempt ${s.attempt} —\n`);
			}
			this.attempt = s.attempt;
			this.status = s;
			return true;
		}
		if (event === 'stdout' || event === 'stderr' || event === 'compile') {
			const c = parsed as ChunkData;
			let text: string;
			if (c.encoding === 'base64') {
				let dec = this.decoders.get(event);
				if (!dec) {
					dec = new TextDecoder('utf-8');
					this.decoders.set(event, dec);
				}
				text = dec.decode(base64Bytes(c.data), { stream: true });
			} else {
				text = c.data;
			}
			this.append(event, text);
			return true;
		}
		return false;
	}

	append(stream: Stream, text: string) {
		if (!text) return;
		const last = this.segments[this.segments.length - 1];
		if (last && last.stream === stream) last.text += text;
		else this.segments.push({ stream, text });
	}

	/** All text of one stream. */
	text(stream: Stream): string {
		return this.segments
			.filter((s) => s.stream === stream)
			.map((s) => s.text)
			.join('');
	}
}
