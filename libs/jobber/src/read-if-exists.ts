import { readFileSync } from "node:fs";
import { errnoCode } from "./errors";

/** A file's text, or undefined when it does not exist (any other failure is thrown). */
export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if (errnoCode(error) === "ENOENT") return undefined;
    throw error;
  }
}
