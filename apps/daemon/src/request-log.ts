// One line per request: tenant (short hash), rpc, status, milliseconds.
import type { status } from "@grpc/grpc-js";
import type { Certificate } from "@jobber/jobber";
import type { ConsolaInstance } from "consola";
import { statusName } from "./status-codes";

export class RequestLog {
  constructor(private readonly logger: ConsolaInstance) {}

  request(
    tenant: Certificate | undefined,
    rpc: string,
    code: status,
    started: number,
    details?: string,
  ): void {
    const who = tenant ? tenant.hash().slice(0, 12) : "-";
    const ms = (performance.now() - started).toFixed(1);
    const line = `${who} ${rpc} ${statusName(code)} ${ms}ms${details ? ` — ${details}` : ""}`;
    if (code === 0) this.logger.info(line);
    else this.logger.warn(line);
  }
}
