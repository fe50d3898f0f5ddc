// Which lowering handles which kind (`group/Kind`), and the set lowerings run after them.
import { SKEIN_GROUP } from "../../api/skein.js";
import { lowerSkeinService, lowerSkeinWorkload } from "./skein.js";
import type { KindLowering, SetLowering } from "./types.js";

export const kindLowerings = new Map<string, KindLowering>([
  [`${SKEIN_GROUP}/Service`, lowerSkeinService],
  [`${SKEIN_GROUP}/Workload`, lowerSkeinWorkload],
]);

export const setLowerings: SetLowering[] = [];
