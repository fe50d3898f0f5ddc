// Every kind and template form Skein accepts.
import { KindRegistry } from "./kinds.js";
import type { Decoders, TemplateDecoder } from "./load.js";
import { skeinKinds } from "./skein.js";

export const kinds = new KindRegistry().register(skeinKinds);

export const templateDecoders: TemplateDecoder[] = [];

export const decoders: Decoders = { kinds, templates: templateDecoders };
