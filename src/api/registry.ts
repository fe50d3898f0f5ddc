// Every kind and template form Skein accepts.
import { cloudFormationDecoder } from "./appmesh/cloudformation.js";
import { appMeshKinds } from "./appmesh/crds.js";
import { networkingKinds } from "./istio/networking.js";
import { KindRegistry } from "./kinds.js";
import type { Decoders, TemplateDecoder } from "./load.js";
import { policyKinds } from "./policy-kinds.js";
import { skeinKinds } from "./skein.js";

export const kinds = new KindRegistry().register(skeinKinds).register(networkingKinds).register(policyKinds);
kinds.register(appMeshKinds);

export const templateDecoders: TemplateDecoder[] = [cloudFormationDecoder];

export const decoders: Decoders = { kinds, templates: templateDecoders };
