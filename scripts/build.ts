// `bun run build`: single-file executables dist/jobberd and dist/jb (or into
// the directory given as the first argument).
//
// grpc-health-check and @grpc/reflection read their own .proto files at run
// time, from paths next to their sources (`${__dirname}/../../proto`). A
// compiled binary has no such directory, and Bun freezes `__dirname` to the
// build machine's path. So the .proto files are embedded as assets (they land
// under /$bunfs/root/proto/, the compiled binary's own file system) and the
// few modules that look for them are pointed there.
import { dirname, join, resolve } from "node:path";
import type { BunPlugin } from "bun";

const root = resolve(import.meta.dir, "..");
const outDir = resolve(process.argv[2] ?? join(root, "dist"));

/** Where Bun places embedded assets in a compiled binary. */
const EMBEDDED_ROOT = "/$bunfs/root";
/** A stand-in __dirname two levels below EMBEDDED_ROOT, so `../../proto` is the embedded proto directory. */
const EMBEDDED_DIRNAME = `${EMBEDDED_ROOT}/module/src`;

/** Modules that find their .proto files through __dirname. */
const PROTO_READERS =
  /(grpc-health-check\/build\/src\/health|@grpc\/reflection\/build\/src\/implementations\/reflection-v1(alpha)?)\.js$/;

const embeddedProtos: BunPlugin = {
  name: "embedded-grpc-protos",
  setup(build) {
    build.onLoad({ filter: PROTO_READERS }, async ({ path }) => {
      const source = await Bun.file(path).text();
      if (!source.includes("__dirname"))
        throw new Error(`${path} no longer uses __dirname: revisit scripts/build.ts`);
      return { contents: source.replaceAll("__dirname", JSON.stringify(EMBEDDED_DIRNAME)), loader: "js" };
    });
  },
};

/** The directories of .proto files those modules read, as embedded assets. */
function protoAssets(): string[] {
  const packageDir = (name: string) =>
    dirname(Bun.resolveSync(`${name}/package.json`, join(root, "apps/daemon")));
  return [
    join(packageDir("grpc-health-check"), "proto"),
    join(packageDir("@grpc/reflection"), "build/proto"),
  ];
}

const targets = [
  { entry: "apps/daemon/src/main.ts", name: "jobberd", assets: protoAssets() },
  { entry: "apps/jb/src/main.ts", name: "jb", assets: [] },
];

for (const { entry, name, assets } of targets) {
  const result = await Bun.build({
    entrypoints: [join(root, entry)],
    compile: { outfile: join(outDir, name), assets },
    bytecode: true,
    format: "esm",
    plugins: [embeddedProtos],
  });
  if (!result.success) {
    for (const message of result.logs) console.error(message);
    process.exit(1);
  }
  console.log(`built ${join(outDir, name)}`);
}
