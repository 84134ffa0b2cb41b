#!/usr/bin/env node
// One HTTP(S) call for `cargo xtask drill`'s app checks, made with Node's
// own fetch (Node is already required by wrangler, and this keeps a TLS
// stack out of the xtask's build):
//
//   QBTIME_DEVOPS_TOKEN=... node scripts/app-check.mjs METHOD URL
//
// The token is read from the environment, never from the command line, so it
// does not show in process lists. Prints one JSON object on stdout:
// {"status": 200, "body": "..."} (the body cut at 1 MiB), or
// {"error": "..."} when no response came (exit 0 either way: the xtask
// decides what passes).
const [method, url] = process.argv.slice(2);
const token = process.env.QBTIME_DEVOPS_TOKEN ?? "";
try {
	const response = await fetch(url, {
		method,
		headers: { Authorization: `Bearer ${token}` },
		redirect: "manual",
		signal: AbortSignal.timeout(60_000),
	});
	const body = (await response.text()).slice(0, 1 << 20);
	process.stdout.write(JSON.stringify({ status: response.status, body }));
} catch (e) {
	const cause = e?.cause?.code ?? e?.cause?.message;
	process.stdout.write(JSON.stringify({ error: cause ? `${e.message} (${cause})` : String(e.message ?? e) }));
}
