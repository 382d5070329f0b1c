import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import JobStatusBadge from './JobStatusBadge.svelte';
import KeyValueRows from './KeyValueRows.svelte';
import Pager from './Pager.svelte';
import ListHeadHost from './test/ListHeadHost.svelte';
import StatusFilter from './StatusFilter.svelte';
import SubmitError from './SubmitError.svelte';
import StatusBadge from './StatusBadge.svelte';

describe('StatusBadge', () => {
	it('shows the status, or that it never ran', () => {
		const { container, rerender } = render(StatusBadge, { status: 'running' });
		expect(container.textContent).toContain('running');
		expect(container.querySelector('.badge.running')).not.toBeNull();
		rerender({ status: null });
		expect(container.textContent).toContain('never run');
	});
});

describe('JobStatusBadge', () => {
	it('shows a job status as its word in its tone, and … while unknown', () => {
		const { container, rerender } = render(JobStatusBadge, { status: 'failed', testid: 'job-status' });
		expect(screen.getByTestId('job-status')).toHaveTextContent('failed');
		expect(container.querySelector('.job-badge.failed')).not.toBeNull();
		rerender({ status: null, testid: 'job-status' });
		expect(screen.getByTestId('job-status')).toHaveTextContent('…');
		expect(container.querySelector('.job-badge.none')).not.toBeNull();
	});
});

describe('KeyValueRows', () => {
	it('adds and removes labelled rows; secret values are password fields', async () => {
		render(KeyValueRows, { idPrefix: 'secret', label: 'secret', valueType: 'password', rows: [] });
		await fireEvent.click(screen.getByRole('button', { name: '+ Add secret' }));
		const name = screen.getByLabelText('secret 1 name');
		const value = screen.getByLabelText('secret 1 value');
		expect(value.getAttribute('type')).toBe('password');
		await fireEvent.input(name, { target: { value: 'TOKEN' } });
		await fireEvent.click(screen.getByRole('button', { name: 'Remove secret TOKEN' }));
		expect(screen.queryByLabelText('secret 1 name')).toBeNull();
	});
});

describe('Pager', () => {
	it('shows the page number and offers only the moves there are', async () => {
		const list = { page: 1, hasPrevious: false, hasNext: true, loading: false, next: vi.fn(), prev: vi.fn() };
		const { rerender } = render(Pager, { list });
		expect(screen.getByRole('navigation', { name: 'Pagination' }).textContent).toContain('Page 1');
		expect(screen.getByRole('button', { name: '← Previous' })).toBeDisabled();
		await fireEvent.click(screen.getByRole('button', { name: 'Next →' }));
		expect(list.next).toHaveBeenCalledOnce();
		await rerender({ list: { ...list, page: 2, hasPrevious: true, hasNext: false } });
		expect(screen.getByRole('button', { name: 'Next →' })).toBeDisabled();
		await fireEvent.click(screen.getByRole('button', { name: '← Previous' }));
		expect(list.prev).toHaveBeenCalledOnce();
		await rerender({ list: { ...list, hasPrevious: true, loading: true } });
		expect(screen.getByRole('button', { name: '← Previous' })).toBeDisabled();
		expect(screen.getByRole('button', { name: 'Next →' })).toBeDisabled();
	});
});

describe('StatusFilter', () => {
	it('is a named search landmark with a labelled select of "Any" and the statuses', async () => {
		let changedTo: string | undefined;
		const onchange = vi.fn(() => (changedTo = (screen.getByLabelText('Status') as HTMLSelectElement).value));
		render(StatusFilter, { id: 'job-status', label: 'Filter jobs', statuses: ['queued', 'failed'], value: '', onchange });
		const search = screen.getByRole('search', { name: 'Filter jobs' });
		const select = screen.getByLabelText('Status') as HTMLSelectElement;
		expect(search.contains(select)).toBe(true);
		expect(select.id).toBe('job-status');
		expect([...select.options].map((o) => [o.value, o.text])).toEqual([['', 'Any'], ['queued', 'queued'], ['failed', 'failed']]);
		await fireEvent.change(select, { target: { value: 'failed' } });
		expect(onchange).toHaveBeenCalledOnce();
		expect(changedTo).toBe('failed');
	});
});

describe('ListHead', () => {
	it('opens and closes its form with a button that says whether it is expanded', async () => {
		const seen: boolean[] = [];
		render(ListHeadHost, { onopen: (o: boolean) => seen.push(o) });
		expect(screen.getByRole('heading', { level: 1, name: 'Things' })).toBeInTheDocument();
		expect(screen.getByText('About things.')).toBeInTheDocument();
		const button = screen.getByRole('button', { name: 'New thing' });
		expect(button).toHaveAttribute('aria-expanded', 'false');
		expect(button).toHaveAttribute('aria-controls', 'new-thing');
		expect(screen.queryByRole('form', { name: 'Thing form' })).toBeNull();
		await fireEvent.click(button);
		expect(button).toHaveAttribute('aria-expanded', 'true');
		expect(button).toHaveTextContent('Close form');
		const section = screen.getByRole('region', { name: 'Make a thing' });
		expect(section.id).toBe('new-thing');
		expect(section).toContainElement(screen.getByRole('form', { name: 'Thing form' }));
		await fireEvent.click(button);
		expect(screen.queryByRole('region', { name: 'Make a thing' })).toBeNull();
		expect(seen).toEqual([false, true, false]);
	});

	it('starts open when the page asks for it (`?new`)', () => {
		render(ListHeadHost, { open: true });
		expect(screen.getByRole('button', { name: 'Close form' })).toHaveAttribute('aria-expanded', 'true');
		expect(screen.getByRole('form', { name: 'Thing form' })).toBeInTheDocument();
	});
});

describe('SubmitError', () => {
	it('is an alert with the message and, when listed, every problem with its path', async () => {
		const { rerender, container } = render(SubmitError, { message: null, problems: [] });
		expect(container.querySelector('[role="alert"]')).toBeNull();
		await rerender({ message: 'invalid definition', problems: [] });
		expect(screen.getByRole('alert')).toHaveTextContent('invalid definition');
		expect(screen.queryByRole('list', { name: 'Problems' })).toBeNull();
		await rerender({ message: 'invalid definition', problems: [{ path: 'definition.jobs.d.depends_on[0]', message: 'unknown dependency ghost' }, { path: 'definition.jobs', message: 'cycle a → c → a' }] });
		const items = screen.getByRole('list', { name: 'Problems' }).querySelectorAll('li');
		expect([...items].map((li) => li.textContent)).toEqual(['definition.jobs.d.depends_on[0]: unknown dependency ghost', 'definition.jobs: cycle a → c → a']);
	});
});
