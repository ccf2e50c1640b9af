// The Node.js twin of mi_sandbox.py for tests/test_sandbox_managed_instances.py, zipped beside
// it: `event.started` is written when the handler begins; it then waits (without blocking its
// worker thread) until `event.release` exists, and answers with where it ran. aws-lambda-ric
// runs worker threads in one process, so `runtime` is that process.
import { existsSync, writeFileSync } from "node:fs";
import { threadId } from "node:worker_threads";

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const hold = async (event, context) => {
  if (event.started) writeFileSync(event.started, context.awsRequestId);
  while (event.release && !existsSync(event.release)) await pause(5);
  return { runtime_api: process.env.AWS_LAMBDA_RUNTIME_API, runtime: process.pid, pid: threadId,
           max_concurrency: process.env.AWS_LAMBDA_MAX_CONCURRENCY ?? null };
};
