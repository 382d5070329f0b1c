// A single-page app: nothing is prerendered or rendered on a server.
export const ssr = false;
export const prerender = false;
export const trailingSlash = 'never';
