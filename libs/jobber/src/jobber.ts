// The library's public face: one Jobber per state directory, and from it
// tenant-bound handles only. A Certificate reaches its own jobs and no
// other tenant's; the runtime behind it (runtime.ts), whose methods take
// any tenant's name, is held in a private field and never handed out.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Certificate, pemToDer } from "./certificate";
import type { CgroupDriver } from "./cgroup";
import { JobberError } from "./errors";
import { poolDir, readPool } from "./pool";
import { ensurePrivateDir } from "./private-dir";
import { type JobberOptions, type JobberStats, JobRuntime } from "./runtime";

export { JOBBER_DEFAULTS, type JobberOptions, type JobberStats, type JobEnded } from "./runtime";

export class Jobber {
  readonly #runtime: JobRuntime;
  readonly #pool: string;

  /** Use openJobber. */
  constructor(options: JobberOptions) {
    this.#runtime = new JobRuntime(options);
    this.#pool = poolDir(options.home);
  }

  get cgroupLayout(): CgroupDriver["layout"] {
    return this.#runtime.cgroupLayout;
  }

  /** The certificates in `<home>/pool/` (every one of a bundle); none when it does not exist. */
  async getClientCertificates(): Promise<Certificate[]> {
    return (await readPool(this.#pool)).map(
      ({ certificate }) => new Certificate(this.#runtime, Buffer.from(certificate.raw)),
    );
  }

  /** A tenant from a PEM certificate, saved into the pool as `<hash>.crt` (NewCertificate of the original API). */
  newCertificate(pem: string | Uint8Array): Certificate {
    const certificate = new Certificate(
      this.#runtime,
      pemToDer(typeof pem === "string" ? pem : Buffer.from(pem).toString("utf8")),
    );
    const pool = this.#pool;
    try {
      ensurePrivateDir(pool, "client pool");
      writeFileSync(join(pool, `${certificate.hash()}.crt`), certificate.bytes(), { mode: 0o644 });
    } catch (error) {
      throw new JobberError("INTERNAL", `cannot save the certificate into ${pool}: ${error}`);
    }
    return certificate;
  }

  /**
   * A tenant from the DER bytes a TLS peer presented. The tenant is the
   * hash of these bytes: a caller can only name a tenant by its certificate.
   */
  certificateFromDer(der: Uint8Array): Certificate {
    return new Certificate(this.#runtime, Buffer.from(der));
  }

  stats(): JobberStats {
    return this.#runtime.stats();
  }

  /** Resolves once the cgroups of every job that has ended are gone (they go a little after the job). */
  cgroupsRemoved(): Promise<void> {
    return this.#runtime.cgroupsRemoved();
  }

  /**
   * Lets go of every job and watcher. Jobs keep running; the next Jobber on
   * this state directory adopts them. Resolves once every fd held for them is closed.
   */
  close(): Promise<void> {
    return this.#runtime.close();
  }
}

/** Opens the job runtime on a state directory, adopting the jobs already running there. */
export function openJobber(options: JobberOptions): Jobber {
  return new Jobber(options);
}
