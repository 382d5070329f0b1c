// Turns resource samples into SVG polyline points. Pure, tested.
import type { ResourceSample } from './api/types';

export interface Series {
	/** `x,y x,y …` in a viewBox of the given size (y grows downwards). */
	points: string;
	max: number;
}

export interface ChartData {
	memory: Series;
	/** CPU use in cores, from the cpu_ms deltas between samples. */
	cpu: Series;
	durationMs: number;
}

function scale(values: [number, number][], width: number, height: number, xMax: number): Series {
	const max = values.reduce((m, [, v]) => Math.max(m, v), 0);
	const yMax = max > 0 ? max : 1;
	const points = values
		.map(([t, v]) => {
			const x = xMax > 0 ? (t / xMax) * width : 0;
			const y = height - (v / yMax) * height;
			return `${x.toFixed(1)},${y.toFixed(1)}`;
		})
		.join(' ');
	return { points, max };
}

export function chartData(samples: ResourceSample[], width: number, height: number): ChartData {
	const sorted = [...samples].sort((a, b) => a.t_ms - b.t_ms);
	const durationMs = sorted.length ? (sorted[sorted.length - 1]?.t_ms ?? 0) : 0;
	const memory = sorted.map((s): [number, number] => [s.t_ms, s.memory_bytes]);
	const cpu: [number, number][] = [];
	for (let i = 1; i < sorted.length; i++) {
		const a = sorted[i - 1]!;
		const b = sorted[i]!;
		const dt = b.t_ms - a.t_ms;
		if (dt > 0) cpu.push([b.t_ms, Math.max(0, b.cpu_ms - a.cpu_ms) / dt]);
	}
	return {
		memory: scale(memory, width, height, durationMs),
		cpu: scale(cpu, width, height, durationMs),
		durationMs
	};
}
