// The app-wide API client and the reactive view of who is signed in.
import { ApiClient, browserStorage } from './api/client';
import type { User } from './api/types';

export const api = new ApiClient(browserStorage);

class Session {
	user = $state<User | null>(api.user);

	constructor() {
		api.onChange((s) => {
			this.user = s?.user ?? null;
		});
	}

	get isAdmin(): boolean {
		return this.user?.role === 'admin';
	}
}

export const session = new Session();
