// age encryption for backups, streamed between standard input and output.
//
// `cargo xtask` runs this with the pinned `age-encryption` package (typage,
// the age authors' TypeScript implementation, installed by `npm ci`), so the
// files it writes are ordinary age files: `age -d -i key.txt` or `rage`
// decrypts them. Keys never appear in argv: recipients are public, and the
// identity is read from a file.
//
//   node scripts/age.mjs encrypt -r age1... [-r age1...]  < plain > sealed
//   node scripts/age.mjs decrypt -i identity.txt          < sealed > plain
//   node scripts/age.mjs keygen                           (identity file on stdout)
//   node scripts/age.mjs recipient -i identity.txt        (its recipient)
//
// Errors go to standard error as one line, with exit code 1; a decryption
// that fails on what the file holds (a bad header or tag, a stream cut
// short: typage's and its cipher's own errors) exits 65 instead, so that
// only then is the file called damaged. A system error (reading the input,
// writing the plaintext: EIO, ENOMEM, EPIPE) and anything else is not the
// file's fault.

import { closeSync, constants, fstatSync, openSync, readFileSync } from "node:fs";
import { Readable, Writable } from "node:stream";
import {
  Decrypter,
  Encrypter,
  generateX25519Identity,
  identityToRecipient,
} from "age-encryption";

// No identity file is near this size; a larger one is not read.
const IDENTITY_LIMIT = 1 << 20;

// sysexits' EX_DATAERR: the input was wrong.
const FILE_AT_FAULT = 65;

function fail(message, code = 1) {
  process.stderr.write(`age: ${message}\n`);
  process.exit(code);
}

// Whether `e`, from decrypting, is the file's fault: a plain Error of the
// library (never a system error, which has a `code`, nor a TypeError or
// RangeError, a fault of the program or of memory), other than finding no
// identity that opens it.
function fileAtFault(e) {
  return (
    command === "decrypt" &&
    e?.constructor === Error &&
    e.code === undefined &&
    !String(e.message).includes("no identity matched")
  );
}

function values(args, flag) {
  const found = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== flag) fail(`unexpected argument ${JSON.stringify(args[i])}`);
    if (i + 1 >= args.length) fail(`${flag} needs a value`);
    found.push(args[++i]);
  }
  return found;
}

// Identity files as age-keygen writes them: comment lines, blank lines and
// one or more AGE-SECRET-KEY-... lines.
// It must be a regular file, opened without waiting: a FIFO or a device put
// in its place (between the xtask's check and this read) would block or
// never end.
function identities(path) {
  let text;
  let fd;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) fail(`the identity file ${path} is not a regular file`);
    if (stat.size > IDENTITY_LIMIT) fail(`the identity file ${path} is too large to be one`);
    text = readFileSync(fd, "utf8");
  } catch (e) {
    fail(`cannot read the identity file ${path}: ${e.code ?? e.message}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  const keys = text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  if (keys.length === 0 || keys.some((k) => !k.startsWith("AGE-SECRET-KEY-"))) {
    fail(`${path} is not an age identity file (it needs AGE-SECRET-KEY-... lines)`);
  }
  return keys;
}

async function pump(stream) {
  await stream.pipeTo(Writable.toWeb(process.stdout));
}

const [command, ...args] = process.argv.slice(2);
try {
  switch (command) {
    case "encrypt": {
      const recipients = values(args, "-r");
      if (recipients.length === 0) fail("encrypt needs at least one -r RECIPIENT");
      const e = new Encrypter();
      for (const r of recipients) e.addRecipient(r);
      await pump(await e.encrypt(Readable.toWeb(process.stdin)));
      break;
    }
    case "decrypt": {
      const files = values(args, "-i");
      if (files.length === 0) fail("decrypt needs -i IDENTITY_FILE");
      const d = new Decrypter();
      for (const file of files) for (const key of identities(file)) d.addIdentity(key);
      await pump(await d.decrypt(Readable.toWeb(process.stdin)));
      break;
    }
    case "keygen": {
      if (args.length !== 0) fail("keygen takes no arguments");
      const identity = await generateX25519Identity();
      const recipient = await identityToRecipient(identity);
      const created = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      process.stdout.write(`# created: ${created}\n# public key: ${recipient}\n${identity}\n`);
      break;
    }
    case "recipient": {
      const files = values(args, "-i");
      if (files.length !== 1) fail("recipient needs exactly one -i IDENTITY_FILE");
      for (const key of identities(files[0])) {
        process.stdout.write(`${await identityToRecipient(key)}\n`);
      }
      break;
    }
    default:
      fail(`unknown command ${JSON.stringify(command ?? "")}; use encrypt, decrypt, keygen or recipient`);
  }
} catch (e) {
  if (fileAtFault(e)) fail(e.message, FILE_AT_FAULT);
  if (typeof e?.code === "string") fail(`cannot read the input or write the output: ${e.message}`);
  fail(e?.message ?? String(e));
}
