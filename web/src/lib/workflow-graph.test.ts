import { describe, expect, it } from 'vitest';
import { dependencyNames, isWorkflowTerminal, layoutWorkflow, originFacts, readingOrder, nodeIcon, nodeTone, predecessors, statusWords, type GraphLayout, type GraphNodeInput, type NodeBox } from './workflow-graph';

const fanOut: GraphNodeInput[] = [
	{ name: 'prepare', group: 'prepare', depends_on: [] },
	{ name: 'build[0]', group: 'build', depends_on: ['prepare'] },
	{ name: 'build[1]', group: 'build', depends_on: ['prepare'] },
	{ name: 'build[2]', group: 'build', depends_on: ['prepare'] },
	{ name: 'publish', group: 'publish', depends_on: ['build'] }
];

const box = (l: GraphLayout, name: string): NodeBox => {
	const b = l.nodes.find((n) => n.name === name);
	if (!b) throw new Error(`no box for ${name}`);
	return b;
};

function overlaps(a: NodeBox, b: NodeBox): boolean {
	return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

function assertNoOverlap(l: GraphLayout) {
	for (let i = 0; i < l.nodes.length; i++)
		for (let j = i + 1; j < l.nodes.length; j++) {
			const a = l.nodes[i] as NodeBox;
			const b = l.nodes[j] as NodeBox;
			expect(overlaps(a, b), `${a.name} overlaps ${b.name}`).toBe(false);
		}
	for (const n of l.nodes) {
		expect(n.x).toBeGreaterThanOrEqual(0);
		expect(n.y).toBeGreaterThanOrEqual(0);
		expect(n.x + n.width).toBeLessThanOrEqual(l.width);
		expect(n.y + n.height).toBeLessThanOrEqual(l.height);
	}
}

describe('layoutWorkflow', () => {
	it('puts prepare → build[0..2] → publish in three layers, the instances stacked in order in one frame', () => {
		const l = layoutWorkflow(fanOut);
		expect(l.layers).toBe(3);
		expect(Object.fromEntries(l.nodes.map((n) => [n.name, n.layer]))).toEqual({ prepare: 0, 'build[0]': 1, 'build[1]': 1, 'build[2]': 1, publish: 2 });
		const builds = ['build[0]', 'build[1]', 'build[2]'].map((n) => box(l, n));
		expect(new Set(builds.map((b) => b.x)).size).toBe(1);
		expect(builds[0]!.y).toBeLessThan(builds[1]!.y);
		expect(builds[1]!.y).toBeLessThan(builds[2]!.y);
		expect(box(l, 'prepare').x).toBeLessThan(builds[0]!.x);
		expect(box(l, 'publish').x).toBeGreaterThan(builds[0]!.x);
		// One frame around the group, enclosing every instance.
		expect(l.groups).toHaveLength(1);
		const g = l.groups[0]!;
		expect(g.group).toBe('build');
		for (const b of builds) {
			expect(b.y).toBeGreaterThanOrEqual(g.y);
			expect(b.y + b.height).toBeLessThanOrEqual(g.y + g.height);
		}
		// Depending on the group means an edge from every instance.
		expect(l.edges.map((e) => `${e.from}->${e.to}`).sort()).toEqual(
			['prepare->build[0]', 'prepare->build[1]', 'prepare->build[2]', 'build[0]->publish', 'build[1]->publish', 'build[2]->publish'].sort()
		);
		// The single nodes are centred on the stack.
		expect(box(l, 'prepare').y + 24).toBeCloseTo(builds[1]!.y + 24);
		assertNoOverlap(l);
	});

	it('lays out a diamond with the two branches in the middle layer and no crossing', () => {
		const l = layoutWorkflow([
			{ name: 'd', depends_on: ['b', 'c'] },
			{ name: 'c', depends_on: ['a'] },
			{ name: 'b', depends_on: ['a'] },
			{ name: 'a' }
		]);
		expect(Object.fromEntries(l.nodes.map((n) => [n.name, n.layer]))).toEqual({ a: 0, b: 1, c: 1, d: 2 });
		expect(box(l, 'b').x).toBe(box(l, 'c').x);
		expect(l.edges).toHaveLength(4);
		for (const e of l.edges) expect(e.d).toMatch(/^M[\d.]+,[\d.]+ C/);
		assertNoOverlap(l);
	});

	it('uses the longest path: a skip edge routes around the middle layer instead of through a box', () => {
		const l = layoutWorkflow([{ name: 'a' }, { name: 'b', depends_on: ['a'] }, { name: 'c', depends_on: ['a', 'b'] }]);
		expect(box(l, 'c').layer).toBe(2);
		const skip = l.edges.find((e) => e.from === 'a' && e.to === 'c');
		// a → waypoint (curve), across layer 1 (line), → c (curve).
		expect(skip?.d.match(/C/g)).toHaveLength(2);
		expect(skip?.d.match(/L/g)).toHaveLength(1);
		const b = box(l, 'b');
		const across = /L([\d.]+),([\d.]+)/.exec(skip?.d ?? '');
		const y = Number(across?.[2]);
		expect(y < b.y || y > b.y + b.height).toBe(true);
		assertNoOverlap(l);
	});

	it('orders layers to remove crossings (barycenter)', () => {
		// x1 → y2 and x2 → y1 cross in input order; the layout uncrosses them.
		const l = layoutWorkflow([{ name: 'x1' }, { name: 'x2' }, { name: 'y1', depends_on: ['x2'] }, { name: 'y2', depends_on: ['x1'] }]);
		const above = (a: string, b: string) => box(l, a).y < box(l, b).y;
		expect(above('x1', 'x2') === above('y2', 'y1')).toBe(true);
	});

	it('adds triggered nodes after their parent without moving the existing layers', () => {
		const before = layoutWorkflow(fanOut.map((n, i) => ({ ...n, job_id: `job-${i}` })));
		const withChildren = [
			...fanOut.map((n, i) => ({ ...n, job_id: `job-${i}` })),
			{ name: 'lint', group: null, depends_on: [], parent_job_id: 'job-1' },
			{ name: 'notify', group: null, depends_on: [], parent_job_id: 'job-4' }
		];
		const after = layoutWorkflow(withChildren);
		for (const n of before.nodes) expect(box(after, n.name).layer).toBe(n.layer);
		expect(box(after, 'lint').layer).toBe(2);
		expect(box(after, 'notify').layer).toBe(3);
		expect(after.layers).toBe(4);
		const trig = after.edges.filter((e) => e.kind === 'trigger').map((e) => `${e.from}->${e.to}`);
		expect(trig.sort()).toEqual(['build[0]->lint', 'publish->notify']);
		assertNoOverlap(after);
	});

	it('finds the parent among re-run jobs (previous_job_ids)', () => {
		const links = predecessors([
			{ name: 'a', job_id: 'new', previous_job_ids: ['old'] },
			{ name: 'b', parent_job_id: 'old' }
		]);
		expect(links).toEqual([{ from: 0, to: 1, kind: 'trigger' }]);
	});

	it('keeps a wide fan-out without overlap and survives unknown dependencies and cycles', () => {
		const many: GraphNodeInput[] = [{ name: 'root' }];
		for (let i = 0; i < 12; i++) many.push({ name: `t[${i}]`, group: 't', depends_on: ['root'] });
		many.push({ name: 'u', depends_on: ['ghost', 't[3]'] });
		many.push({ name: 'p', depends_on: ['q'] }, { name: 'q', depends_on: ['p'] });
		const l = layoutWorkflow(many);
		expect(l.nodes).toHaveLength(many.length);
		assertNoOverlap(l);
		const l2 = layoutWorkflow(many);
		expect(l2).toEqual(l);
	});

	it('returns an empty drawing for no nodes', () => {
		expect(layoutWorkflow([])).toMatchObject({ nodes: [], edges: [], width: 0, height: 0, layers: 0 });
	});
});

describe('node states', () => {
	it('gives every state a tone, an icon and words', () => {
		expect(nodeTone('succeeded')).toBe('ok');
		expect(nodeTone('timed_out')).toBe('bad');
		expect(nodeTone('running')).toBe('run');
		expect(nodeTone('pending')).toBe('idle');
		expect(nodeIcon('failed')).toBe('✕');
		expect(nodeIcon('skipped')).toBe('–');
		expect(statusWords('timed_out')).toBe('timed out');
		expect(isWorkflowTerminal('running')).toBe(false);
		expect(isWorkflowTerminal('skipped')).toBe(true);
	});
});

describe('layer widths', () => {
	it('makes each layer as wide as its widest box, and only that layer', () => {
		const l = layoutWorkflow([{ name: 'a' }, { name: 'b-long', depends_on: ['a'] }, { name: 'c', depends_on: ['b-long'] }, { name: 'd', depends_on: ['a', 'c'] }], {
			widthOf: (n) => (n.name === 'b-long' ? 400 : 10)
		});
		const w = (n: string) => l.nodes.find((b) => b.name === n)?.width;
		expect([w('a'), w('b-long'), w('c'), w('d')]).toEqual([176, 400, 176, 176]);
		for (let i = 0; i < l.nodes.length; i++)
			for (let j = i + 1; j < l.nodes.length; j++) {
				const [p, q] = [l.nodes[i]!, l.nodes[j]!];
				if (p.layer !== q.layer) expect(p.x + p.width <= q.x || q.x + q.width <= p.x).toBe(true);
			}
		expect(Math.max(...l.nodes.map((n) => n.x + n.width))).toBeLessThanOrEqual(l.width);
		// The long edge a → d crosses layers 1 and 2 straight over their full width.
		const skip = l.edges.find((e) => e.from === 'a' && e.to === 'd');
		expect(skip?.d.match(/L/g)?.length).toBeGreaterThanOrEqual(2);
	});
});

describe('reading helpers', () => {
	const nodes = [
		{ name: 'publish', group: 'publish', depends_on: ['build[0]', 'build[1]', 'build[10]'] },
		{ name: 'build[10]', group: 'build', depends_on: ['prepare'] },
		{ name: 'build[1]', group: 'build', depends_on: ['prepare'] },
		{ name: 'build[0]', group: 'build', depends_on: ['prepare'] },
		{ name: 'cleanup', group: 'cleanup', depends_on: ['build[1]'] },
		{ name: 'prepare', group: 'prepare', depends_on: [] }
	];
	it('orders nodes by layer, then name, then fan-out index (numerically)', () => {
		expect(readingOrder(nodes).map((n) => n.name)).toEqual(['prepare', 'build[0]', 'build[1]', 'build[10]', 'cleanup', 'publish']);
	});
	it('names a whole fan-out group once, and partial groups by instance', () => {
		expect(dependencyNames(['build[0]', 'build[1]', 'build[10]'], nodes)).toEqual(['build']);
		expect(dependencyNames(['build[1]', 'prepare'], nodes)).toEqual(['build[1]', 'prepare']);
		expect(dependencyNames([], nodes)).toEqual([]);
	});
});

describe('originFacts', () => {
	it('says API for API submissions and anything unreadable', () => {
		expect(originFacts({ kind: 'api' })).toEqual({ summary: 'API', facts: [] });
		expect(originFacts(null)).toEqual({ summary: 'API', facts: [] });
		expect(originFacts({ kind: 'cron' }).summary).toBe('cron');
	});
	it('summarises a git event and lists its facts', () => {
		const o = originFacts({
			kind: 'hook',
			provider: 'github',
			full_name: 'acme/app',
			event: 'pull_request',
			ref: 'refs/pull/7/head',
			branch: 'main',
			sha: '0123456789abcdef0123',
			ci_sha: 'fedcba9876543210fedc',
			pr_number: 7,
			fork: true,
			delivery_id: 'd-1'
		});
		expect(o.summary).toBe('github pull request #7 · acme/app @ main');
		expect(Object.fromEntries(o.facts)).toEqual({
			Provider: 'github',
			Repository: 'acme/app',
			Event: 'pull request',
			Ref: 'refs/pull/7/head',
			'Pull request': '#7 (from a fork)',
			Commit: '0123456789ab',
			'CI code from': 'fedcba987654',
			Delivery: 'd-1'
		});
		expect(originFacts({ kind: 'hook', provider: 'gitlab', event: 'push', full_name: 'g/p', branch: null, ref: 'refs/heads/dev' }).summary).toBe('gitlab push · g/p @ refs/heads/dev');
	});
});
