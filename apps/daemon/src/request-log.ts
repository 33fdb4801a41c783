// One line per request: rpc, status, tenant (short hash), milliseconds; and
// the hook metrics use to see every request once.
import { status } from "@grpc/grpc-js";
import type { Certificate } from "@jobber/jobber";
import type { ConsolaInstance } from "consola";
import { statusName } from "./status-codes";

/**
 * Statuses that say the daemon (not the caller) has a problem: only these are
 * warnings. A caller's mistake — an unknown id, a bad argument, a missing
 * certificate — is an ordinary event of a working server, logged at INFO.
 */
const SERVER_FAULTS = new Set<status>([
  status.INTERNAL,
  status.UNKNOWN,
  status.DATA_LOSS,
  status.UNIMPLEMENTED,
]);

export type RequestObserver = (rpc: string, code: status, seconds: number) => void;

export class RequestLog {
  constructor(
    private readonly logger: ConsolaInstance,
    private readonly observe?: RequestObserver,
  ) {}

  request(
    tenant: Certificate | undefined,
    rpc: string,
    code: status,
    started: number,
    details?: string,
  ): void {
    const ms = performance.now() - started;
    this.observe?.(rpc, code, ms / 1000);
    const line = `${rpc} ${statusName(code)}`;
    const fields = {
      tenant: tenant ? tenant.hash().slice(0, 12) : "-",
      ms: Number(ms.toFixed(1)),
      ...(details ? { error: details } : {}),
    };
    if (SERVER_FAULTS.has(code)) this.logger.warn(line, fields);
    else this.logger.info(line, fields);
  }
}
