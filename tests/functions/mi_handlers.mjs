// Handlers for the Managed Instances tests under aws-lambda-ric (Node.js): the same contract as
// mi_handlers.py. `event.started` is written when the handler begins; it then waits (without
// blocking its worker thread) until `event.release` exists, and answers with its request id,
// process and worker thread, so a test sees which invocations ran at once and where.
import { existsSync, writeFileSync } from "node:fs";
import { threadId } from "node:worker_threads";

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const hold = async (event, context) => {
  if (event.started) writeFileSync(event.started, context.awsRequestId);
  while (event.release && !existsSync(event.release)) await pause(5);
  return { request_id: context.awsRequestId, tag: event.tag, pid: process.pid, thread: threadId };
};
