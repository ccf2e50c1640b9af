"""The Lambda execution environment, as Lambda runs a function of a zip-packaged runtime.

What it models, and from which AWS documents:
- the **Runtime API** (``2018-06-01``: ``/runtime/invocation/next``, ``/response``, ``/error``,
  ``/init/error``) — "Using the Lambda runtime API for custom runtimes";
- the **Extensions API** (``2020-01-01``: register, ``/event/next`` with INVOKE and SHUTDOWN
  sent only to extensions that registered for them, init and exit errors) — "Lambda
  Extensions API";
- the **lifecycle**: the init phase (extensions first, the runtime only after every extension
  has registered, the 10 s init timeout), invoke phases that end when the runtime and every
  INVOKE subscriber are back in ``next``, shutdown, resets after a timeout or crash — "Lambda
  execution environment lifecycle";
- the **environment variables** Lambda sets and reserves, ``AWS_LAMBDA_EXEC_WRAPPER`` and
  ``/opt`` layers — "Defined runtime environment variables", "Lambda layers";
- **Managed Instances**' multi-concurrent environments (``AWS_LAMBDA_MAX_CONCURRENCY``) —
  "Lambda Managed Instances";
- the **sandbox**: environments per function version, concurrency limits and throttles, the
  function's configuration read from the embedded AWS — "Lambda function scaling".

The functions run under AWS's real runtime interface clients (``awslambdaric`` and
``aws-lambda-ric``, see ``runtimes.py``). This package imports nothing from ``aws/`` or
``experiment/``.
"""
