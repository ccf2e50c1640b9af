// `GET /hello` of the sample application: the service API the blog's load generator calls.
//
// A Node.js function (the runtime most Lambda functions use), beside the Python /health, so a
// regional experiment crosses two runtimes. The body names the serving region, so a client (or
// the local experiment) can count which region handled each request (the blog's
// `region_{region}` metric).

/** API Gateway proxy response `Hello from region {AWS_REGION}`. */
export const handler = async () => ({
  statusCode: 200,
  headers: { "Content-Type": "text/plain; charset=utf-8" },
  body: `Hello from region ${process.env.AWS_REGION ?? "unknown"}`,
});
