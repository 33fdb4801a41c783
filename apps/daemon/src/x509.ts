// @peculiar/x509, loaded only after the Reflect metadata functions it needs
// are in place. A static import would not do: Bun evaluates CommonJS packages
// (@peculiar/x509 resolves to its CommonJS build) before the ES modules that
// import them, so tsyringe inside it would run before the shim.
import "./reflect-metadata";

export const x509: typeof import("@peculiar/x509") = await import("@peculiar/x509");
