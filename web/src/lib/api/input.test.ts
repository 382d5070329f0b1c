import { describe, expect, it } from 'vitest';
import { socketUrl } from './input';

describe('socketUrl', () => {
	it('uses ws for http and wss for https, with the token in the query', () => {
		expect(socketUrl('http://127.0.0.1:8080', 'abc', 'tok')).toBe('ws://127.0.0.1:8080/api/v1/executions/abc/ws?access_token=tok');
		expect(socketUrl('https://vr.example.com', 'abc', null)).toBe('wss://vr.example.com/api/v1/executions/abc/ws');
	});
});
