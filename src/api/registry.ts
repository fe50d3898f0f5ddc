// Every kind and template form Skein accepts.
import { networkingKinds } from "./istio/networking.js";
import { KindRegistry } from "./kinds.js";
import type { Decoders, TemplateDecoder } from "./load.js";
import { skeinKinds } from "./skein.js";

export const kinds = new KindRegistry().register(skeinKinds).register(networkingKinds);

export const templateDecoders: TemplateDecoder[] = [];

export const decoders: Decoders = { kinds, templates: templateDecoders };
