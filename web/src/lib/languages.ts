// The server's enabled languages (GET /api/v1/languages), fetched once per page load.
import type { Language, LanguageList } from './api/types';
import { api } from './session.svelte';

let cached: Promise<LanguageList> | null = null;

/** Languages and the server's limit defaults and maxima. */
export function serverInfo(): Promise<LanguageList> {
	if (!cached) {
		cached = api.get<LanguageList>('/api/v1/languages').catch((e: unknown) => {
			cached = null;
			throw e;
		});
	}
	return cached;
}

export function languages(): Promise<Language[]> {
	return serverInfo().then((r) => r.items);
}

/** Starter code for a new task in each language. */
export const STARTERS: Record<string, string> = {
	python: 'import sys\n\nname = sys.stdin.read().strip() or "world"\nprint(f"Hello, {name}!")\n',
	javascript:
		"const input = require('fs').readFileSync(0, 'utf8').trim() || 'world';\nconsole.log(`Hello, ${input}!`);\n",
	bash: '#!/bin/bash\nread -r name\necho "Hello, ${name:-world}!"\n',
	c: '#include <stdio.h>\n\nint main(void) {\n    printf("Hello, world!\\n");\n    return 0;\n}\n',
	cpp: '#include <iostream>\n\nint main() {\n    std::cout << "Hello, world!" << std::endl;\n    return 0;\n}\n'
};
