// An external extension in Node.js for the emulator's tests: registers, prints where
// `command -v python3` finds a python3 (PROBE-PYTHON3 <path or none>), then follows /next
// until SHUTDOWN. Started by tests' sh shims, as the chaos layer's extension is.
import { execFileSync } from "node:child_process";

const api = `http://${process.env.AWS_LAMBDA_RUNTIME_API}/2020-01-01/extension`;
let python3;
try {
  python3 = execFileSync("sh", ["-c", "command -v python3"], { encoding: "utf8" }).trim();
} catch {
  python3 = "none";
}
console.log(`PROBE-PYTHON3 ${python3}`);
const registered = await fetch(`${api}/register`, {
  method: "POST",
  headers: { "Lambda-Extension-Name": "probe-extension" },
  body: JSON.stringify({ events: ["INVOKE", "SHUTDOWN"] }),
});
const id = registered.headers.get("lambda-extension-identifier");
for (;;) {
  const next = await fetch(`${api}/event/next`, { headers: { "Lambda-Extension-Identifier": id } });
  const event = await next.json();
  if (event.eventType === "SHUTDOWN") break;
}
