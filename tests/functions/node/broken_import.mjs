// Fails while the client imports it: an init error, as a module with a bad top level gives.
throw new Error("broken_import fails at import time on purpose");
