// Names for the generated OpenAPI types (schema.d.ts is generated: `npm run gen:api`).
import type { components, operations } from './schema';

type S = components['schemas'];

export type User = S['UserResponse'];
export type TokenResponse = S['TokenResponse'];
export type Task = S['TaskResponse'];
export type TaskSummary = S['TaskSummaryResponse'];
export type TaskList = S['TaskListResponse'];
export type CreateTask = S['CreateTaskRequest'];
export type UpdateTask = S['UpdateTaskRequest'];
export type Execution = S['ExecutionResponse'];
export type ExecutionSummary = S['ExecutionSummaryResponse'];
export type ExecutionList = S['ExecutionListResponse'];
export type ExecutionStatus = S['ExecutionStatusDto'];
export type Verdict = S['VerdictDto'];
export type Limits = S['LimitsResponse'];
export type Language = S['LanguageResponse'];
export type LanguageList = S['LanguageListResponse'];
export type ApiKey = S['ApiKeyResponse'];
export type ApiKeyList = S['ApiKeyListResponse'];
export type CreatedApiKey = S['CreatedApiKeyResponse'];
export type LogChunk = S['LogChunkResponse'];
export type ErrorBody = S['ErrorBody'];

export type TaskQuery = NonNullable<operations['list_tasks']['parameters']['query']>;

/** Every status an execution can be in, in lifecycle order. */
export const STATUSES: ExecutionStatus[] = [
	'queued',
	'running',
	'completed',
	'failed',
	'timeout',
	'cancelled'
];

/** Statuses after which nothing changes any more. */
export function isTerminal(status: ExecutionStatus): boolean {
	return status !== 'queued' && status !== 'running';
}

/** The limit fields, in the order the editor shows them. */
export const LIMIT_FIELDS = [
	'timeout_secs',
	'memory_mb',
	'cpu_cores',
	'max_processes',
	'max_output_bytes'
] as const satisfies readonly (keyof Limits)[];

export type ExecutionMetrics = S['ExecutionMetricsResponse'];
export type ResourceSample = S['ResourceSampleResponse'];
export type Stats = S['StatsResponse'];

export type Problem = S['ProblemDto'];
export type Job = S['JobResponse'];
export type JobSummary = S['JobSummaryResponse'];
export type JobList = S['JobListResponse'];
export type JobStep = S['JobStepResponse'];
export type JobArtifact = S['JobArtifactResponse'];
export type JobEvent = S['JobEventResponse'];
export type CreateJob = S['CreateJobRequest'];

/** Every status a job can be in, in lifecycle order. */
export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Whether a job's status is final. */
export function isJobTerminal(status: string | null | undefined): boolean {
	return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

// Workflows (issue 10). INTERIM hand-written shapes until the API's schemas are generated
// (`npm run gen:api`); then each becomes `S['Workflow…']` like the names above.
/** A node of a workflow: one job (or one fan-out instance). */
export interface WorkflowNode {
	name: string;
	group?: string | null;
	status: WorkflowNodeStatus;
	reason?: string | null;
	job_id?: string | null;
	previous_job_ids?: string[] | null;
	parent_job_id?: string | null;
	depends_on: string[];
	condition?: string | null;
	started_at?: string | null;
	finished_at?: string | null;
	outputs?: Record<string, string> | null;
}
export interface Workflow {
	id: string;
	name: string;
	status: WorkflowStatus;
	run?: number | null;
	trusted?: boolean | null;
	vars?: Record<string, string> | null;
	outputs?: Record<string, string> | null;
	error?: string | null;
	origin?: unknown;
	created_at: string;
	finished_at?: string | null;
	cancel_requested_at?: string | null;
	nodes: WorkflowNode[];
}
export interface WorkflowSummary {
	id: string;
	name: string;
	status: WorkflowStatus;
	run?: number | null;
	created_at: string;
	finished_at?: string | null;
}
export interface WorkflowList {
	items: WorkflowSummary[];
	next_cursor?: string | null;
}
export interface CreateWorkflow {
	definition: unknown;
	files?: Record<string, string> | null;
	vars?: Record<string, string> | null;
	secrets?: Record<string, string> | null;
}
export type WorkflowStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';
export type WorkflowNodeStatus = 'pending' | 'queued' | 'running' | 'succeeded' | 'failed' | 'timed_out' | 'cancelled' | 'skipped';

/** Every status a workflow can be in. */
export const WORKFLOW_STATUSES: WorkflowStatus[] = ['running', 'succeeded', 'failed', 'cancelled', 'skipped'];
