#!/usr/bin/env node
// Writes a deterministic dump in D1's export format over qbtime's schema,
// for the benchmarks:
//
//   node scripts/bench/gen-dump.mjs SCHEMA.sql ROWS OUT.sql
//
// SCHEMA.sql is a schema-only backup (`cargo xtask backup local
// --schema-only`). The dump has its CREATE TABLEs, then ROWS rows (100
// companies, 100 accounts, then customers, audit_log and notifications in
// turn), then its indexes and triggers, as D1 exports them. The audit_log
// rows form a valid hash chain under the rule in migrations/0004, so that
// `cargo xtask verify` passes it.
import { createHash } from "node:crypto";
import { readFileSync, openSync, writeSync, closeSync } from "node:fs";

const [schemaPath, rowsArg, outPath] = process.argv.slice(2);
if (!schemaPath || !rowsArg || !outPath) {
	console.error("usage: gen-dump.mjs SCHEMA.sql ROWS OUT.sql");
	process.exit(2);
}
const rows = Number(rowsArg);
const schema = readFileSync(schemaPath, "utf8").split("\n");
const firstLate = schema.findIndex((l) => /^CREATE (UNIQUE INDEX|INDEX|TRIGGER|VIEW)/.test(l));
const out = openSync(outPath, "w");
let buffer = [];
const emit = (line) => {
	buffer.push(line);
	if (buffer.length >= 4096) flush();
};
const flush = () => {
	writeSync(out, buffer.join("\n") + "\n");
	buffer = [];
};
const q = (s) => `'${s.replaceAll("'", "''")}'`;
const ts = "2026-11-01T00:00:00.000Z";

schema.slice(0, firstLate).forEach((l) => l && emit(l));
for (let i = 1; i <= 100; i++) {
	emit(`INSERT INTO "companies" VALUES(${i},${q(`Company ${i}`)},${q(`qbt-${i}`)},'America/Denver','2026-01-01T00:00:00.000Z','2026-01-01T00:00:00.000Z');`);
	emit(`INSERT INTO "accounts" VALUES(${i},${q(`user${i}@example.com`)},${q(`User ${i}`)},'$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA','member','2026-01-01T00:00:00.000Z','2026-01-01T00:00:00.000Z',NULL,NULL,NULL);`);
}
let prev = "0".repeat(64);
for (let i = 1; i <= rows - 200; i++) {
	const c = 1 + (i % 100);
	switch (i % 3) {
		case 0:
			emit(`INSERT INTO "customers" VALUES(${i},${c},${q(`jc-${i}`)},${q(`Customer ${i}; the "quoted" one`)},${q(`c${i}@example.com`)},1,'${ts}');`);
			break;
		case 1: {
			const details = `{"rows":${i},"ok":true}`;
			const hash = createHash("sha256")
				.update(JSON.stringify([prev, i, ts, c, c, "report.run", "report_config", String(i), details]))
				.digest("hex");
			emit(`INSERT INTO "audit_log" VALUES(${i},'${ts}',${c},${c},'report.run','report_config',${q(String(i))},${q(details)},'${prev}','${hash}');`);
			prev = hash;
			break;
		}
		default:
			emit(`INSERT INTO "notifications" VALUES(${i},${c},${c},'report_ready',${q(`Report ${i} is ready`)},replace(${q(`Line one of ${i}\\nline two`)},'\\n',char(10)),NULL,'${ts}',NULL);`);
	}
}
schema.slice(firstLate).forEach((l) => l && emit(l));
flush();
closeSync(out);
