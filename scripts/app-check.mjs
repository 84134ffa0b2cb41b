#!/usr/bin/env node
// One HTTP(S) call for `cargo xtask drill`'s app checks, made with Node's
// own fetch (Node is already required by wrangler, and this keeps a TLS
// stack out of the xtask's build):
//
//   QBTIME_APP_CHECK_URL=... QBTIME_DEVOPS_TOKEN=... node scripts/app-check.mjs METHOD
//
// The URL and the token are read from the environment, never from the
// command line, so neither shows in process lists. Prints one JSON object on stdout:
// {"status": 200, "body": "..."} (the body cut at 1 MiB, and read no
// further; then also "truncated": true, and the xtask fails the check), or
// {"error": "..."} when no response came (exit 0 either way: the xtask
// decides what passes).
const [method] = process.argv.slice(2);
const url = process.env.QBTIME_APP_CHECK_URL ?? "";
const token = process.env.QBTIME_DEVOPS_TOKEN ?? "";
try {
	const response = await fetch(url, {
		method,
		headers: { Authorization: `Bearer ${token}` },
		redirect: "manual",
		signal: AbortSignal.timeout(60_000),
	});
	// Read no further than the MiB kept: an app whose body does not end
	// would otherwise grow this process until the timeout (GBs).
	const limit = 1 << 20;
	const chunks = [];
	let kept = 0;
	let truncated = false;
	if (response.body) {
		const reader = response.body.getReader();
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			// A byte past the MiB: the body is cut, and read no further.
			if (kept + value.length > limit) {
				chunks.push(value.subarray(0, limit - kept));
				kept = limit;
				truncated = true;
				break;
			}
			chunks.push(value);
			kept += value.length;
		}
		await reader.cancel().catch(() => {});
	}
	const body = new TextDecoder().decode(Buffer.concat(chunks));
	process.stdout.write(JSON.stringify({ status: response.status, body, ...(truncated && { truncated }) }));
} catch (e) {
	const cause = e?.cause?.code ?? e?.cause?.message;
	process.stdout.write(JSON.stringify({ error: cause ? `${e.message} (${cause})` : String(e.message ?? e) }));
}
