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

export type Workflow = S['WorkflowResponse'];
export type WorkflowNode = S['WorkflowNodeResponse'];
export type WorkflowSummary = S['WorkflowSummaryResponse'];
export type WorkflowList = S['WorkflowListResponse'];
export type CreateWorkflow = S['CreateWorkflowRequest'];

/** Every status a workflow can be in. */
export const WORKFLOW_STATUSES = ['running', 'succeeded', 'failed', 'cancelled', 'skipped'] as const;

export type Repository = S['RepositoryResponse'];
export type RepositoryList = S['RepositoryListResponse'];
export type CreateRepository = S['CreateRepositoryRequest'];
export type UpdateRepositorySecrets = S['UpdateRepositorySecretsRequest'];
export type Delivery = S['DeliveryResponse'];
export type DeliveryList = S['DeliveryListResponse'];
