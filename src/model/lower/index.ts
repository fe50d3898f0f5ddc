// Which lowering handles which kind (`group/Kind`), and the set lowerings run after them.
import { NETWORKING_GROUP } from "../../api/istio/networking.js";
import { SKEIN_GROUP } from "../../api/skein.js";
import { appMeshLowering } from "./appmesh.js";
import {
  lowerDestinationRule,
  lowerServiceEntry,
  lowerSidecar,
  lowerVirtualService,
} from "./istio-networking.js";
import { policyKindLowerings, policyScopes } from "./policy.js";
import { lowerSkeinRateLimit, lowerSkeinService, lowerSkeinWorkload } from "./skein.js";
import type { KindLowering, SetLowering } from "./types.js";

export const kindLowerings = new Map<string, KindLowering>([
  [`${SKEIN_GROUP}/Service`, lowerSkeinService],
  [`${SKEIN_GROUP}/Workload`, lowerSkeinWorkload],
  [`${SKEIN_GROUP}/RateLimit`, lowerSkeinRateLimit],
  [`${NETWORKING_GROUP}/VirtualService`, lowerVirtualService],
  [`${NETWORKING_GROUP}/DestinationRule`, lowerDestinationRule],
  [`${NETWORKING_GROUP}/ServiceEntry`, lowerServiceEntry],
  [`${NETWORKING_GROUP}/Sidecar`, lowerSidecar],
  ...policyKindLowerings,
]);

export const setLowerings: SetLowering[] = [policyScopes, appMeshLowering];
