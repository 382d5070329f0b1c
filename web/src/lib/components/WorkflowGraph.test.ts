import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { WorkflowNode } from '$lib/api/types';
import WorkflowGraph from './WorkflowGraph.svelte';

const node = (name: string, status: WorkflowNode['status'], extra: Partial<WorkflowNode> = {}): WorkflowNode => ({
	name,
	status,
	group: name,
	depends_on: [],
	previous_job_ids: [],
	condition: 'all_success',
	outputs: {},
	...extra
});

describe('WorkflowGraph', () => {
	it('links each started node to its job, with its state in words, and draws every edge', () => {
		const { container } = render(WorkflowGraph, {
			now: Date.parse('2026-01-01T00:00:05Z'),
			nodes: [
				node('prepare', 'succeeded', { job_id: 'j1', started_at: '2026-01-01T00:00:00Z', finished_at: '2026-01-01T00:00:02Z' }),
				node('build[0]', 'running', { group: 'build', job_id: 'j2', depends_on: ['prepare'], started_at: '2026-01-01T00:00:02Z' }),
				node('build[1]', 'failed', { group: 'build', job_id: 'j3', depends_on: ['prepare'] }),
				node('publish', 'pending', { depends_on: ['build'] })
			]
		});
		const prepare = screen.getByRole('link', { name: /^prepare succeeded · 2\.00 s — open job$/ });
		expect(prepare.getAttribute('href')).toBe('/jobs/j1');
		// A running node's duration grows to "now".
		expect(screen.getByRole('link', { name: /^build\[0\] running · 3\.00 s/ }).getAttribute('href')).toBe('/jobs/j2');
		expect(screen.getByRole('link', { name: /^build\[1\] failed/ })).toBeTruthy();
		// Without a job yet, the node is not a link but still says its state.
		expect(screen.queryByRole('link', { name: /publish/ })).toBeNull();
		expect(screen.getByRole('img', { name: 'publish pending' })).toBeTruthy();
		expect(container.querySelectorAll('path.edge')).toHaveLength(4);
		expect(container.querySelectorAll('rect.group')).toHaveLength(1);
		expect(container.querySelector('[data-node="build[1]"]')?.classList.contains('bad')).toBe(true);
		expect(container.querySelector('[data-node="build[1]"] text')?.textContent).toContain('✕');
	});

	it('grows boxes for long names and cuts only very long ones, naming them in full', () => {
		const long = 'a-really-long-node-name-that-goes-on-and-on';
		const { container } = render(WorkflowGraph, { nodes: [node('medium-sized-node-name-x', 'queued', { job_id: 'j' }), node(long, 'pending')] });
		const boxes = [...container.querySelectorAll('rect.box')].map((r) => Number(r.getAttribute('width')));
		expect(boxes[0]).toBeGreaterThan(176);
		const names = [...container.querySelectorAll('tspan.name')].map((t) => t.textContent);
		expect(names).toEqual(['medium-sized-node-name-x', 'a-really-long-node-name-that-goes…']);
		expect(screen.getByRole('img', { name: `a-really-long-node-name-that-goes… pending (${long})` })).toBeTruthy();
		expect(screen.getByRole('link', { name: 'medium-sized-node-name-x queued — open job' })).toBeTruthy();
	});
});
