// host:port as flags take it: 127.0.0.1:9090, [::1]:9090, localhost:0.

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseListenAddress(value: string, flag: string): ListenAddress {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(value) ?? /^([^:[\]]+):(\d+)$/.exec(value);
  const port = Number(match?.[2]);
  if (!match || !Number.isInteger(port) || port > 65535) {
    throw new Error(`${flag}: ${JSON.stringify(value)} is not host:port (e.g. 127.0.0.1:9090 or [::1]:9090)`);
  }
  return { host: match[1] as string, port };
}
