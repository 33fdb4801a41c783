// The release, one number for jobberd and jb: the root package.json's version.
import rootPackage from "../../../package.json" with { type: "json" };

export const VERSION: string = rootPackage.version;
