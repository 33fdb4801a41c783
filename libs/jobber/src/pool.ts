// The client pool, `<home>/pool/`: the one reader of it, for the library's
// getClientCertificates and the daemon's authenticator alike. Every PEM
// certificate of every *.crt or *.pem file counts (a file may be a bundle):
// what the daemon lets in and what the library lists are the same tenants.
import { X509Certificate } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { errnoCode, JobberError } from "./errors";

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** One certificate of the pool, and the file it came from. */
export interface PoolCertificate {
  /** The file's name within the pool. */
  file: string;
  certificate: X509Certificate;
}

/** The pool directory of a jobber home. */
export function poolDir(home: string): string {
  return join(home, "pool");
}

/**
 * Every certificate in the pool, files in name order; none when the pool does
 * not exist. A file with no certificate, or one that does not parse, is
 * refused (FAILED_PRECONDITION): a pool half read would let in fewer clients
 * than the operator put there, silently.
 */
export async function readPool(pool: string): Promise<PoolCertificate[]> {
  let names: string[];
  try {
    names = (await readdir(pool)).filter((name) => /\.(crt|pem)$/.test(name)).sort();
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return [];
    throw new JobberError("INTERNAL", `cannot read the client pool ${pool}: ${errnoCode(error) ?? error}`);
  }
  const certificates: PoolCertificate[] = [];
  for (const name of names) {
    const path = join(pool, name);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      throw new JobberError("INTERNAL", `cannot read ${path}: ${errnoCode(error) ?? error}`);
    }
    const pems = text.match(PEM_CERTIFICATE) ?? [];
    if (pems.length === 0) {
      throw new JobberError("FAILED_PRECONDITION", `${path} holds no PEM certificate; fix or remove it`);
    }
    for (const pem of pems) {
      try {
        certificates.push({ file: name, certificate: new X509Certificate(pem) });
      } catch (error) {
        throw new JobberError(
          "FAILED_PRECONDITION",
          `${path}: not a valid certificate: ${error instanceof Error ? error.message : error}`,
        );
      }
    }
  }
  return certificates;
}
