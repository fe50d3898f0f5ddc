// The one way Skein loads @peculiar/x509: its dependency-injection container (tsyringe) needs the Reflect
// metadata polyfill loaded first, and it should sign and verify with Node's own WebCrypto. Import it from here.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

// Node's webcrypto is the standard Crypto; its typings differ from the global ones in detail only, hence the cast.
// Set once here, so no call needs to pass a crypto provider.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export { x509 };
