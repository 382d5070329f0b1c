import { describe, expect, it } from 'vitest';
import { chartData } from './chart';

describe('chartData', () => {
	it('scales memory and derives CPU cores from cpu_ms deltas', () => {
		const d = chartData(
			[
				{ t_ms: 100, memory_bytes: 2000, cpu_ms: 50 },
				{ t_ms: 0, memory_bytes: 1000, cpu_ms: 0 },
				{ t_ms: 200, memory_bytes: 4000, cpu_ms: 150 }
			],
			100,
			50
		);
		expect(d.durationMs).toBe(200);
		expect(d.memory.max).toBe(4000);
		expect(d.memory.points).toBe('0.0,37.5 50.0,25.0 100.0,0.0');
		expect(d.cpu.max).toBe(1);
		expect(d.cpu.points).toBe('50.0,25.0 100.0,0.0');
	});
	it('handles no samples', () => {
		expect(chartData([], 10, 10)).toMatchObject({ durationMs: 0, memory: { max: 0, points: '' } });
	});
});
