import { createHash, X509Certificate } from "node:crypto";
import type { JobEnvironment } from "./environment";
import { JobberError } from "./errors";
import type { Job } from "./job";
import type { Limits } from "./limits";

/** What a tenant's certificate needs from the runtime; implemented by JobRuntime. */
export interface TenantHost {
  jobIds(tenant: string): number[];
  job(tenant: string, id: number): Job | undefined;
  /** Validates argv, limits and environment, then gives the job a fresh id. */
  newJob(tenant: string, argv: string[], limits: Limits, environment?: JobEnvironment): Job;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/;

/** The DER bytes of the first certificate in a PEM text. */
export function pemToDer(pem: string): Buffer {
  const body = PEM_CERTIFICATE.exec(pem)?.[1];
  if (!body) throw new JobberError("INVALID_ARGUMENT", "not a PEM certificate");
  const der = Buffer.from(body.replace(/\s+/g, ""), "base64");
  try {
    new X509Certificate(der);
  } catch (error) {
    throw new JobberError("INVALID_ARGUMENT", `not a valid X.509 certificate: ${error}`);
  }
  return der;
}

function derToPem(der: Uint8Array): string {
  const lines =
    Buffer.from(der)
      .toString("base64")
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

/**
 * A client certificate: a tenant. Its jobs are the jobs filed under its hash.
 * The runtime it holds takes any tenant's name, so it is a private field
 * (#, not TypeScript's `private`): nothing outside reaches it.
 */
export class Certificate {
  readonly #host: TenantHost;
  readonly #der: Buffer;
  readonly #tenant: string;

  constructor(host: TenantHost, der: Buffer) {
    this.#host = host;
    this.#der = der;
    this.#tenant = createHash("sha256").update(der).digest("hex");
  }

  /** The certificate as PEM. */
  bytes(): Uint8Array {
    return Buffer.from(derToPem(this.#der));
  }

  /** Lowercase hex sha256 of the DER: the tenant's identity. */
  hash(): string {
    return this.#tenant;
  }

  /** The tenant's jobs, oldest first. */
  async getJobs(): Promise<Job[]> {
    return this.#host.jobIds(this.#tenant).flatMap((id) => this.#host.job(this.#tenant, id) ?? []);
  }

  /** One of the tenant's jobs; another tenant's job is NOT_FOUND, like one that does not exist. */
  async getJob(id: number): Promise<Job> {
    const job = Number.isSafeInteger(id) && id > 0 ? this.#host.job(this.#tenant, id) : undefined;
    if (!job) throw new JobberError("NOT_FOUND", `job ${id} not found`);
    return job;
  }

  /** A job for argv with these limits (and environment, working directory), validated and ready to start. */
  newJob(argv: string[], limits: Limits = {}, environment: JobEnvironment = {}): Job {
    return this.#host.newJob(this.#tenant, argv, limits, environment);
  }
}
