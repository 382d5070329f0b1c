// Light / dark / system theme, remembered in localStorage and applied as html[data-theme].
export type ThemeChoice = 'system' | 'light' | 'dark';

const KEY = 'voidrunner.theme';

class Theme {
	choice = $state<ThemeChoice>('system');

	load() {
		const saved = localStorage.getItem(KEY);
		this.choice = saved === 'light' || saved === 'dark' ? saved : 'system';
		this.apply();
	}

	set(choice: ThemeChoice) {
		this.choice = choice;
		if (choice === 'system') localStorage.removeItem(KEY);
		else localStorage.setItem(KEY, choice);
		this.apply();
	}

	/** The theme actually shown. */
	get effective(): 'light' | 'dark' {
		if (this.choice !== 'system') return this.choice;
		return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
	}

	private apply() {
		const root = document.documentElement;
		if (this.choice === 'system') delete root.dataset.theme;
		else root.dataset.theme = this.choice;
	}
}

export const theme = new Theme();
