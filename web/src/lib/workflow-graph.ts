// The workflow pages' pure parts: a layered (Sugiyama-style) layout of the workflow's DAG for
// SVG, left to right, node states in words and icons, reading order, and where a workflow came
// from. Unit-tested; the pages only draw what this returns.
//
// - layer = longest path from a root (dependencies and, for triggered nodes, the parent job);
// - an edge spanning several layers gets a waypoint in every layer between, so it runs
//   around the boxes instead of through them;
// - order within a layer: barycenter sweeps (down, up) to reduce crossings;
// - fan-out instances (`build[0]`, `build[1]`, …) stay together, stacked in index order in a
//   framed block of their group.

/** What the layout needs of a workflow node (a subset of the API's node). */
export interface GraphNodeInput {
	name: string;
	/** The definition's node name of a fan-out instance (`build` for `build[1]`). */
	group?: string | null;
	/** Node names, or group names meaning every instance of that group. */
	depends_on?: readonly string[] | null;
	job_id?: string | null;
	previous_job_ids?: readonly string[] | null;
	/** The job that triggered this node from inside itself (a follow-up job). */
	parent_job_id?: string | null;
}

/** A node's box, in SVG user units. */
export interface NodeBox {
	name: string;
	group: string | null;
	layer: number;
	x: number;
	y: number;
	width: number;
	height: number;
}

/** The frame around a fan-out group's instances in one layer. */
export interface GroupBox {
	group: string;
	layer: number;
	x: number;
	y: number;
	width: number;
	height: number;
}

/** An edge as an SVG path (`d`), from a dependency (or parent job) to a dependant. */
export interface EdgePath {
	from: string;
	to: string;
	kind: 'dependency' | 'trigger';
	d: string;
}

/** Everything the SVG draws, and its size. */
export interface GraphLayout {
	nodes: NodeBox[];
	groups: GroupBox[];
	edges: EdgePath[];
	width: number;
	height: number;
	layers: number;
}

/** Box sizes and gaps. */
export interface LayoutOptions {
	/** Box width; a layer is as wide as its widest box (see `widthOf`). */
	nodeWidth: number;
	/** A node's own width (e.g. from its name's length); at least `nodeWidth` is used. */
	widthOf?: (node: GraphNodeInput) => number;
	nodeHeight: number;
	/** Horizontal space between layers (where the edges run). */
	layerGap: number;
	/** Vertical space between units in a layer. */
	rowGap: number;
	/** Vertical space between the instances of a group. */
	groupGap: number;
	/** Padding of a group frame. */
	groupPad: number;
	/** Height of an edge's waypoint slot in a layer it crosses. */
	dummyHeight: number;
	/** Margin around the drawing. */
	margin: number;
}

export const DEFAULT_LAYOUT: LayoutOptions = {
	nodeWidth: 176,
	nodeHeight: 48,
	layerGap: 72,
	rowGap: 20,
	groupGap: 6,
	groupPad: 6,
	dummyHeight: 8,
	margin: 8
};

interface Item {
	/** Node name, or `~from~to~layer` for a waypoint. */
	key: string;
	node: number | null;
	group: string | null;
}

/** A unit of a layer: a single node, a group's instances, or an edge waypoint. */
interface Unit {
	items: Item[];
	group: string | null;
	dummy: boolean;
}

/** Resolves the predecessors of every node: dependencies, and the parent job for triggered nodes. */
export function predecessors(nodes: readonly GraphNodeInput[]): { from: number; to: number; kind: EdgePath['kind'] }[] {
	const byName = new Map<string, number>();
	const byGroup = new Map<string, number[]>();
	const byJob = new Map<string, number>();
	nodes.forEach((n, i) => {
		byName.set(n.name, i);
		if (n.group) byGroup.set(n.group, [...(byGroup.get(n.group) ?? []), i]);
		if (n.job_id) byJob.set(n.job_id, i);
		for (const j of n.previous_job_ids ?? []) if (!byJob.has(j)) byJob.set(j, i);
	});
	const out: { from: number; to: number; kind: EdgePath['kind'] }[] = [];
	nodes.forEach((n, to) => {
		const seen = new Set<number>();
		for (const dep of n.depends_on ?? []) {
			const direct = byName.get(dep);
			const froms = direct !== undefined ? [direct] : (byGroup.get(dep) ?? []);
			for (const from of froms) {
				if (from === to || seen.has(from)) continue;
				seen.add(from);
				out.push({ from, to, kind: 'dependency' });
			}
		}
		const parent = n.parent_job_id ? byJob.get(n.parent_job_id) : undefined;
		if (parent !== undefined && parent !== to && !seen.has(parent)) out.push({ from: parent, to, kind: 'trigger' });
	});
	return out;
}

/** Longest path from a root for every node; edges closing a cycle are ignored. */
function longestPathLayers(count: number, preds: number[][]): number[] {
	const layer = new Array<number>(count).fill(-1);
	const visiting = new Set<number>();
	const visit = (i: number): number => {
		const known = layer[i] ?? -1;
		if (known >= 0) return known;
		if (visiting.has(i)) return -1;
		visiting.add(i);
		let l = 0;
		for (const p of preds[i] ?? []) {
			const pl = visit(p);
			if (pl >= 0) l = Math.max(l, pl + 1);
		}
		visiting.delete(i);
		layer[i] = l;
		return l;
	};
	for (let i = 0; i < count; i++) visit(i);
	return layer;
}

/** Index inside a fan-out name (`build[12]` → 12), for stacking instances in order. */
function instanceIndex(name: string): number {
	const m = /\[(\d+)\]$/.exec(name);
	return m ? Number(m[1]) : 0;
}

/** Lays out the workflow's nodes; deterministic for the same input. */
export function layoutWorkflow(nodes: readonly GraphNodeInput[], options: Partial<LayoutOptions> = {}): GraphLayout {
	const o = { ...DEFAULT_LAYOUT, ...options };
	const links = predecessors(nodes);
	const preds: number[][] = nodes.map(() => []);
	for (const l of links) preds[l.to]?.push(l.from);
	const layerOf = longestPathLayers(nodes.length, preds);
	// Edges that would point backwards (only possible in a cycle) are not drawn.
	const edges = links.filter((l) => (layerOf[l.from] ?? 0) < (layerOf[l.to] ?? 0));
	const layerCount = nodes.length === 0 ? 0 : Math.max(...layerOf) + 1;

	// Items per layer: nodes, then one waypoint per layer an edge crosses.
	const layers: Item[][] = Array.from({ length: layerCount }, () => []);
	nodes.forEach((n, i) => {
		const grouped = n.group && n.group !== n.name ? n.group : null;
		layers[layerOf[i] ?? 0]?.push({ key: n.name, node: i, group: grouped });
	});
	const chains = edges.map((e) => {
		const keys = [nodes[e.from]?.name ?? ''];
		for (let l = (layerOf[e.from] ?? 0) + 1; l < (layerOf[e.to] ?? 0); l++) {
			const key = `~${nodes[e.from]?.name}~${nodes[e.to]?.name}~${l}`;
			layers[l]?.push({ key, node: null, group: null });
			keys.push(key);
		}
		keys.push(nodes[e.to]?.name ?? '');
		return keys;
	});
	// Neighbours of each item in the previous and the next layer.
	const up = new Map<string, string[]>();
	const down = new Map<string, string[]>();
	for (const c of chains) {
		for (let k = 0; k + 1 < c.length; k++) {
			const a = c[k] ?? '';
			const b = c[k + 1] ?? '';
			down.set(a, [...(down.get(a) ?? []), b]);
			up.set(b, [...(up.get(b) ?? []), a]);
		}
	}

	// Units: a group's instances in one layer move together.
	let order: Unit[][] = layers.map((items) => {
		const units: Unit[] = [];
		const byGroup = new Map<string, Unit>();
		for (const it of items) {
			if (it.group) {
				const u = byGroup.get(it.group);
				if (u) {
					u.items.push(it);
					continue;
				}
				const nu: Unit = { items: [it], group: it.group, dummy: false };
				byGroup.set(it.group, nu);
				units.push(nu);
			} else units.push({ items: [it], group: null, dummy: it.node === null });
		}
		for (const u of units) u.items.sort((a, b) => instanceIndex(a.key) - instanceIndex(b.key));
		return units;
	});

	const positions = (layer: Unit[]) => {
		const pos = new Map<string, number>();
		let p = 0;
		for (const u of layer) for (const it of u.items) pos.set(it.key, p++);
		return pos;
	};
	const sortBy = (layer: Unit[], ref: Map<string, number>, nbrs: Map<string, string[]>): Unit[] => {
		const keyed = layer.map((u, idx) => {
			const ps: number[] = [];
			for (const it of u.items) for (const n of nbrs.get(it.key) ?? []) {
				const p = ref.get(n);
				if (p !== undefined) ps.push(p);
			}
			// Units without neighbours there keep their place.
			const bc = ps.length ? ps.reduce((a, b) => a + b, 0) / ps.length : null;
			return { u, idx, bc };
		});
		// Keep unconnected units at their index; place the others by barycenter around them.
		const fixed = keyed.filter((k) => k.bc === null);
		const moving = keyed.filter((k) => k.bc !== null).sort((a, b) => (a.bc ?? 0) - (b.bc ?? 0) || a.idx - b.idx);
		const out: Unit[] = new Array<Unit>(layer.length);
		for (const f of fixed) out[f.idx] = f.u;
		let m = 0;
		for (let i = 0; i < out.length; i++) if (!out[i]) out[i] = (moving[m++] as (typeof moving)[number]).u;
		return out;
	};
	const crossings = (ord: Unit[][]) => {
		let total = 0;
		for (let l = 0; l + 1 < ord.length; l++) {
			const pa = positions(ord[l] ?? []);
			const pb = positions(ord[l + 1] ?? []);
			const segs: [number, number][] = [];
			for (const [a, bs] of down) {
				const x = pa.get(a);
				if (x === undefined) continue;
				for (const b of bs) {
					const y = pb.get(b);
					if (y !== undefined) segs.push([x, y]);
				}
			}
			for (let i = 0; i < segs.length; i++)
				for (let j = i + 1; j < segs.length; j++) {
					const [a1, b1] = segs[i] as [number, number];
					const [a2, b2] = segs[j] as [number, number];
					if ((a1 - a2) * (b1 - b2) < 0) total++;
				}
		}
		return total;
	};
	let best = order;
	let bestCrossings = crossings(order);
	for (let sweep = 0; sweep < 6 && bestCrossings > 0; sweep++) {
		const next = order.map((l) => [...l]);
		if (sweep % 2 === 0) {
			for (let l = 1; l < next.length; l++) next[l] = sortBy(next[l] ?? [], positions(next[l - 1] ?? []), up);
		} else {
			for (let l = next.length - 2; l >= 0; l--) next[l] = sortBy(next[l] ?? [], positions(next[l + 1] ?? []), down);
		}
		order = next;
		const c = crossings(order);
		if (c < bestCrossings) {
			best = order;
			bestCrossings = c;
		}
	}

	// Coordinates: layers are columns as wide as their widest box; each column's units
	// stacked and centred vertically.
	const colWidth = best.map((layer) =>
		Math.max(o.nodeWidth, ...layer.flatMap((u) => u.items.map((it) => (it.node === null || !o.widthOf ? 0 : o.widthOf(nodes[it.node] as GraphNodeInput)))))
	);
	const colX: number[] = [];
	let cx = o.margin + o.groupPad;
	for (const w of colWidth) {
		colX.push(cx);
		cx += w + 2 * o.groupPad + o.layerGap;
	}
	const unitHeight = (u: Unit) =>
		u.dummy ? o.dummyHeight : u.group ? u.items.length * o.nodeHeight + (u.items.length - 1) * o.groupGap + 2 * o.groupPad : o.nodeHeight;
	const colHeight = (l: Unit[]) => l.reduce((s, u) => s + unitHeight(u), 0) + Math.max(0, l.length - 1) * o.rowGap;
	const inner = Math.max(0, ...best.map(colHeight));
	const boxes: NodeBox[] = [];
	const groups: GroupBox[] = [];
	const points = new Map<string, { x: number; y: number; w: number }>();
	best.forEach((layer, l) => {
		const x = colX[l] ?? 0;
		const w = colWidth[l] ?? o.nodeWidth;
		let y = o.margin + (inner - colHeight(layer)) / 2;
		for (const u of layer) {
			const h = unitHeight(u);
			if (u.dummy) {
				const it = u.items[0] as Item;
				points.set(it.key, { x, y: y + h / 2, w });
			} else if (u.group) {
				groups.push({ group: u.group, layer: l, x: x - o.groupPad, y, width: w + 2 * o.groupPad, height: h });
				u.items.forEach((it, k) => {
					const n = nodes[it.node ?? 0] as GraphNodeInput;
					boxes.push({ name: n.name, group: u.group, layer: l, x, y: y + o.groupPad + k * (o.nodeHeight + o.groupGap), width: w, height: o.nodeHeight });
				});
			} else {
				const n = nodes[u.items[0]?.node ?? 0] as GraphNodeInput;
				boxes.push({ name: n.name, group: n.group ?? null, layer: l, x, y, width: w, height: o.nodeHeight });
			}
			y += h + o.rowGap;
		}
	});
	const boxOf = new Map(boxes.map((b) => [b.name, b]));
	const paths: EdgePath[] = edges.map((e, i) => {
		const chain = chains[i] ?? [];
		const from = boxOf.get(chain[0] ?? '') as NodeBox;
		const to = boxOf.get(chain[chain.length - 1] ?? '') as NodeBox;
		// Out of the source's right side, through each waypoint (straight across its column),
		// into the target's left side; cubic curves between columns.
		const pts: { x: number; y: number }[] = [{ x: from.x + from.width, y: from.y + from.height / 2 }];
		for (const k of chain.slice(1, -1)) {
			const p = points.get(k) as { x: number; y: number; w: number };
			pts.push({ x: p.x, y: p.y }, { x: p.x + p.w, y: p.y });
		}
		pts.push({ x: to.x, y: to.y + to.height / 2 });
		const first = pts[0] as { x: number; y: number };
		let d = `M${first.x},${first.y}`;
		for (let k = 1; k < pts.length; k++) {
			const a = pts[k - 1] as { x: number; y: number };
			const b = pts[k] as { x: number; y: number };
			if (a.y === b.y || k % 2 === 0) d += ` L${b.x},${b.y}`;
			else {
				const mx = (a.x + b.x) / 2;
				d += ` C${mx},${a.y} ${mx},${b.y} ${b.x},${b.y}`;
			}
		}
		return { from: nodes[e.from]?.name ?? '', to: nodes[e.to]?.name ?? '', kind: e.kind, d };
	});
	const width = layerCount === 0 ? 0 : cx - o.layerGap - o.groupPad + o.margin;
	return { nodes: boxes, groups, edges: paths, width, height: layerCount === 0 ? 0 : inner + 2 * o.margin, layers: layerCount };
}

/** The visual tone of a node state: colour class, icon and words (never colour alone). */
export type NodeTone = 'ok' | 'bad' | 'run' | 'wait' | 'skip' | 'idle';

/** Maps a node (or workflow) status to its tone. */
export function nodeTone(status: string | null | undefined): NodeTone {
	switch (status) {
		case 'succeeded':
			return 'ok';
		case 'failed':
		case 'timed_out':
			return 'bad';
		case 'running':
			return 'run';
		case 'queued':
			return 'wait';
		case 'cancelled':
		case 'skipped':
			return 'skip';
		default:
			return 'idle';
	}
}

/** The icon shown next to a status (aria-hidden: the status word is always written too). */
export function nodeIcon(status: string | null | undefined): string {
	switch (status) {
		case 'succeeded':
			return '✓';
		case 'failed':
		case 'timed_out':
			return '✕';
		case 'running':
			return '●';
		case 'queued':
			return '◔';
		case 'cancelled':
			return '⊘';
		case 'skipped':
			return '–';
		default:
			return '○';
	}
}

/** A status in words (`timed_out` → `timed out`). */
export function statusWords(status: string | null | undefined): string {
	return (status ?? 'unknown').replace(/_/g, ' ');
}

/** Whether a workflow status is final (nothing changes any more). */
export function isWorkflowTerminal(status: string | null | undefined): boolean {
	return status === 'succeeded' || status === 'failed' || status === 'cancelled' || status === 'skipped';
}

/** The nodes in reading order: by layer (longest path from a root), then fan-out index, then name. */
export function readingOrder<T extends GraphNodeInput>(nodes: readonly T[]): T[] {
	const preds: number[][] = nodes.map(() => []);
	for (const l of predecessors(nodes)) preds[l.to]?.push(l.from);
	const layer = longestPathLayers(nodes.length, preds);
	const base = (n: string) => n.replace(/\[\d+\]$/, '');
	return nodes
		.map((n, i) => ({ n, l: layer[i] ?? 0 }))
		.sort((a, b) => a.l - b.l || base(a.n.name).localeCompare(base(b.n.name)) || instanceIndex(a.n.name) - instanceIndex(b.n.name))
		.map((x) => x.n);
}

/**
 * A node's dependencies for reading: every instance of a fan-out group listed → the group's
 * name once (`build[0], build[1], build[2]` → `build`); anything else as it is.
 */
export function dependencyNames(deps: readonly string[], nodes: readonly GraphNodeInput[]): string[] {
	const members = new Map<string, string[]>();
	for (const n of nodes) if (n.group && n.group !== n.name) members.set(n.group, [...(members.get(n.group) ?? []), n.name]);
	const listed = new Set(deps);
	const out: string[] = [];
	const done = new Set<string>();
	for (const d of deps) {
		const g = nodes.find((n) => n.name === d)?.group;
		const all = g && g !== d ? members.get(g) : undefined;
		if (g && all && all.every((m) => listed.has(m))) {
			if (!done.has(g)) out.push(g);
			done.add(g);
		} else out.push(d);
	}
	return out;
}

/** Where a workflow came from, for display: a one-line summary and labelled facts. */
export interface OriginFacts {
	summary: string;
	facts: [string, string][];
}

/**
 * Reads the API's `origin` (`{"kind":"api"}`, or a git hook's `{"kind":"hook", provider,
 * full_name, event, ref, branch, sha, ci_sha, pr_number, fork, …}`); unknown shapes fall back
 * to their `kind`.
 */
export function originFacts(origin: unknown): OriginFacts {
	const o = origin && typeof origin === 'object' && !Array.isArray(origin) ? (origin as Record<string, unknown>) : {};
	const str = (k: string) => {
		const v = o[k];
		return typeof v === 'string' || typeof v === 'number' ? String(v) : null;
	};
	const kind = str('kind');
	if (kind !== 'hook') return { summary: kind === 'api' || kind === null ? 'API' : kind, facts: [] };
	const event = (str('event') ?? 'event').replace(/_/g, ' ');
	const where = [str('full_name'), str('branch') ?? str('ref')].filter(Boolean).join(' @ ');
	const pr = str('pr_number');
	const summary = [str('provider'), event, pr ? `#${pr}` : null].filter(Boolean).join(' ') + (where ? ` · ${where}` : '');
	const facts: [string, string][] = [];
	const add = (label: string, v: string | null) => v && facts.push([label, v]);
	add('Provider', str('provider'));
	add('Repository', str('full_name'));
	add('Event', event);
	add('Ref', str('ref'));
	add('Pull request', pr ? `#${pr}${o.fork === true ? ' (from a fork)' : ''}` : null);
	add('Commit', str('sha')?.slice(0, 12) ?? null);
	add('CI code from', str('ci_sha')?.slice(0, 12) ?? null);
	add('Delivery', str('delivery_id'));
	return { summary, facts };
}
