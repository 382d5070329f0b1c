import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import KeyValueRows from './KeyValueRows.svelte';
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
