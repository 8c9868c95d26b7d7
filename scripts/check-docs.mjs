// Checks the documentation as a reader meets it: every ```ts block of README.md and docs/*.md
// type-checks against the package's sources, and every relative link and #anchor resolves.
//
// Code blocks. Each block is written to its own module under node_modules/.cache (inside the
// repository, so the root package.json makes it ESM and the tsconfig `paths` map `session-guard`,
// `session-guard/grammy`, … to the sources: no build needed) and checked with the repository's
// compiler options. A block stands alone: it imports what it uses and declares the reader's own
// code (`declare const db: …`). Three stand-ins every page would otherwise repeat are declared
// once, in docs/code-context.d.ts (`agent`, `token`, `signingSecret`). A block that is
// deliberately not standalone says so in its info string: ```ts fragment. Keep those rare.
//
// Links. Inline links `[text](target)` outside code: a relative target must exist (file or
// folder), and an anchor must match a heading of the target page (GitHub's slugs). Web links are
// not fetched.
//
// Usage: node scripts/check-docs.mjs [--code] [--links]   (both when neither is given)
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..");
const docsDir = join(root, "docs");
const pages = [
  join(root, "README.md"),
  ...(existsSync(docsDir)
    ? readdirSync(docsDir)
        .filter((name) => name.endsWith(".md"))
        .sort()
        .map((name) => join(docsDir, name))
    : []),
];

const args = new Set(process.argv.slice(2));
const all = !args.has("--code") && !args.has("--links");
let failures = 0;
const fail = (where, message) => {
  failures++;
  console.error(`${where}: ${message}`);
};

/** The page's lines, with fenced blocks marked, so links and headings are read outside code. */
function parse(file) {
  const lines = readFileSync(file, "utf8").split("\n");
  const blocks = [];
  const prose = [];
  let open;
  lines.forEach((line, index) => {
    const fence = /^(\s*)(`{3,}|~{3,})(.*)$/.exec(line);
    if (open === undefined) {
      if (fence) {
        open = { indent: fence[1].length, marker: fence[2], info: fence[3].trim(), start: index };
        open.body = [];
      } else {
        prose.push({ line, number: index + 1 });
      }
      return;
    }
    if (fence?.[2].startsWith(open.marker) && fence[3].trim() === "") {
      blocks.push(open);
      open = undefined;
      return;
    }
    open.body.push(line.slice(Math.min(open.indent, line.length - line.trimStart().length)));
  });
  if (open !== undefined) fail(`${relative(root, file)}:${open.start + 1}`, "unclosed code fence");
  return { blocks, prose };
}

const parsed = new Map(pages.map((file) => [file, parse(file)]));

// === Code blocks

function checkCode() {
  const work = join(root, "node_modules", ".cache", "check-docs");
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  /** Module file → where its first line sits in the page. */
  const origin = new Map();
  let checked = 0;
  let fragments = 0;
  for (const [file, { blocks }] of parsed) {
    for (const block of blocks) {
      const [lang, ...flags] = block.info.split(/\s+/);
      if (lang !== "ts" && lang !== "typescript") continue;
      if (flags.includes("fragment")) {
        fragments++;
        continue;
      }
      const page = relative(root, file).replace(/[/.]/g, "_");
      const name = join(work, `${page}_${block.start + 1}.ts`);
      // `export {}` keeps each block a module of its own, so blocks never see each other's names.
      writeFileSync(name, `${block.body.join("\n")}\nexport {};\n`);
      origin.set(name, { page: relative(root, file), line: block.start + 2 });
      checked++;
    }
  }
  const config = ts.getParsedCommandLineOfConfigFile(join(root, "tsconfig.json"), undefined, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, "\n"));
    },
  });
  const files = [...origin.keys(), join(docsDir, "code-context.d.ts")];
  const program = ts.createProgram(files, { ...config.options, noEmit: true });
  const diagnostics = ts.getPreEmitDiagnostics(program);
  for (const d of diagnostics) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, "\n  ");
    const from = d.file === undefined ? undefined : origin.get(resolve(d.file.fileName));
    if (d.file === undefined || d.start === undefined) {
      fail("tsc", message);
    } else if (from === undefined) {
      const { line } = d.file.getLineAndCharacterOfPosition(d.start);
      fail(`${relative(root, d.file.fileName)}:${line + 1}`, message);
    } else {
      const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
      fail(`${from.page}:${from.line + line}:${character + 1}`, `TS${d.code}: ${message}`);
    }
  }
  console.log(
    `check-docs: ${checked} ts blocks type-checked (${fragments} marked fragment), ` +
      `${diagnostics.length} errors`,
  );
}

// === Links

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchorsOf(file) {
  const seen = new Map();
  const anchors = new Set();
  for (const { line } of parsed.get(file)?.prose ?? parse(file).prose) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1]
      .replace(/`([^`]*)`/g, "$1")
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/<[^>]+>/g, "");
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

function checkLinks() {
  let checked = 0;
  for (const [file, { prose }] of parsed) {
    const page = relative(root, file);
    // One text per run of prose lines, so a link whose text wraps onto the next line is read
    // whole; inline code may hold brackets that are not links.
    const lineOf = [];
    let text = "";
    for (const { line, number } of prose) {
      for (let i = 0; i <= line.length; i++) lineOf.push(number);
      text += `${line}\n`;
    }
    text = text.replace(/`[^`\n]*`/g, (code) => " ".repeat(code.length));
    for (const match of text.matchAll(/\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = match[1];
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      checked++;
      const [path, anchor] = target.split("#", 2);
      const into = path === "" ? file : resolve(dirname(file), decodeURIComponent(path));
      const where = `${page}:${lineOf[match.index + match[0].indexOf("](")]}`;
      if (!existsSync(into)) {
        fail(where, `link target ${target} does not exist`);
        continue;
      }
      if (anchor !== undefined && anchor !== "") {
        if (!into.endsWith(".md")) {
          if (!/^L\d+(-L\d+)?$/.test(anchor)) fail(where, `anchor #${anchor} on a non-page`);
        } else if (!anchorsOf(into).has(anchor)) {
          fail(where, `no heading for #${anchor} in ${relative(root, into)}`);
        }
      }
    }
  }
  console.log(`check-docs: ${checked} relative links checked in ${pages.length} pages`);
}

if (all || args.has("--code")) checkCode();
if (all || args.has("--links")) checkLinks();
if (failures > 0) {
  console.error(`check-docs: ${failures} problems`);
  process.exitCode = 1;
}
