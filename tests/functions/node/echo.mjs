// Node.js handlers for the emulator's tests and the layer benchmark, run by AWS's aws-lambda-ric
// (the Node.js counterparts of tests/functions/echo.py and side_effect.py).
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { appendFileSync } from "node:fs";

/** Return the event unchanged (the client re-serialises it with JSON.stringify). */
export const handler = async (event) => event;

/** The length and SHA-256 of event.body: a large event checked without echoing it. */
export const digest = async (event) => ({
  length: Buffer.byteLength(event.body, "utf8"),
  sha256: createHash("sha256").update(event.body, "utf8").digest("hex"),
});

/** A string of exactly event.size ASCII characters (a large response from a small event). */
export const sized = async (event) => pattern(event.size);

export function pattern(size) {
  const block = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return block.repeat(Math.ceil(size / block.length)).slice(0, size);
}

class DependencyDown extends Error {
  constructor(message) {
    super(message);
    this.name = "DependencyDown";
  }
}

/** Throw, so the client reports the error's name and message. */
export const fail = async (event) => {
  throw new DependencyDown(event.message ?? "handler failed on purpose");
};

/** What the client built from the /next headers, and the process's environment. */
export const context_info = async (event, context) => ({
  aws_request_id: context.awsRequestId,
  invoked_function_arn: context.invokedFunctionArn,
  remaining_ms: context.getRemainingTimeInMillis(),
  function_name: context.functionName,
  function_version: context.functionVersion,
  memory_limit_in_mb: context.memoryLimitInMB,
  log_group_name: context.logGroupName,
  log_stream_name: context.logStreamName,
  trace_id: process.env._X_AMZN_TRACE_ID ?? null,
  environ: { ...process.env },
  exec_argv: process.execArgv,
  node_version: process.version,
});

/** Where `sh -c 'command -v NAME'` finds each of event.names on PATH (null: nowhere), and the
 * Runtime API address this client talks to. */
export const which = async (event) => {
  const found = {};
  for (const name of event.names) {
    try {
      found[name] = execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
    } catch {
      found[name] = null;
    }
  }
  return { PATH: process.env.PATH, found, runtime_api: process.env.AWS_LAMBDA_RUNTIME_API };
};

/** The Runtime API address this client talks to (direct, or a proxy's). */
export const runtime_api = async () => process.env.AWS_LAMBDA_RUNTIME_API;

/** Append a line to event.marker (if any), so a test sees whether the handler ran. */
export const side_effect = async (event) => {
  if (event.marker) appendFileSync(event.marker, "ran\n");
  return { ran: true };
};

/** A streamed response: each of event.chunks written in turn, then the end. */
export const stream = awslambda.streamifyResponse(async (event, responseStream) => {
  for (const chunk of event.chunks) {
    responseStream.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  if (event.fail) throw new DependencyDown(event.fail);
  responseStream.end();
});
